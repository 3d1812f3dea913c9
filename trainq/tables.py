"""The CLI's tables: text, one line a row, fitted to the width they are drawn in.

A table wider than the terminal keeps its ``whole`` columns (ids, statuses: what a person
copies or reads first) at their full width; the other columns share what is left in proportion
to their widths, each cut short with an ellipsis but none below its header (or 4 characters,
where the headers do not fit).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.table import Table

PADDING = 2  # a space on either side of each column's cells (box=None, pad_edge)
NARROWEST = 4


def when(stamp: str | None) -> str:
    """An API timestamp as a table shows it: ``2026-12-07 23:16:24``."""
    return (stamp or "")[:19].replace("T", " ")


class Fitted:
    """A table of text cells; ``whole`` names the columns that are never cut."""

    def __init__(self, headers: Iterable[str], whole: Collection[str] = ()) -> None:
        self.headers = list(headers)
        self.whole = [h in whole for h in self.headers]
        self.rows: list[list[str]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def _natural(self) -> list[int]:
        return [
            max([cell_len(h), *(cell_len(row[i]) for row in self.rows)])
            for i, h in enumerate(self.headers)
        ]

    @property
    def width(self) -> int:
        """The columns it takes drawn whole."""
        return sum(self._natural()) + PADDING * len(self.headers)

    def limits(self, width: int) -> list[int | None]:
        """Each column's width at most, drawn in ``width`` columns (None: its own)."""
        natural = self._natural()
        if sum(natural) + PADDING * len(natural) <= width:
            return [None] * len(natural)
        cut = [i for i, whole in enumerate(self.whole) if not whole]
        fixed = sum(w for w, whole in zip(natural, self.whole, strict=True) if whole)
        left = width - PADDING * len(natural) - fixed
        least = {i: min(natural[i], max(cell_len(self.headers[i]), NARROWEST)) for i in cut}
        if sum(least.values()) > left:  # not even the headers fit: each cut to the least
            least = {i: min(natural[i], NARROWEST) for i in cut}
        spare = max(left - sum(least.values()), 0)
        wanted = sum(natural[i] - least[i] for i in cut) or 1
        limits: list[int | None] = [None] * len(natural)
        for i in cut:
            limits[i] = least[i] + spare * (natural[i] - least[i]) // wanted
        return limits

    def table(self, width: int) -> Table:
        """The rich table as drawn in ``width`` columns."""
        out = Table(box=None, header_style="bold")
        for header, limit in zip(self.headers, self.limits(width), strict=True):
            out.add_column(header, no_wrap=True, max_width=limit, overflow="ellipsis")
        for row in self.rows:
            out.add_row(*row)
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Any]:
        yield self.table(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        drawn = min(self.width, options.max_width)
        return Measurement(drawn, drawn)
