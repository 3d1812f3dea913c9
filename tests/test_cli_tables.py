"""The CLI's tables in terminals of several widths: one line a row; in a narrow one the id and
status columns stay whole and the others are cut short, never past the terminal's edge."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from trainq.tables import Fitted

ID = "e147ff2e7ed6460ba0dbd0796ce54996"


def _drawn(table: Fitted, width: int) -> list[list[str]]:
    out = Console(width=width, file=io.StringIO(), record=True)
    out.print(table)
    lines = out.export_text().splitlines()
    assert max(map(len, lines)) <= width, lines
    return [line.split("  ") for line in lines]


def _table() -> Fitted:
    table = Fitted(("ID", "STATUS", "PROGRESS", "NAME"), whole=("ID", "STATUS"))
    table.add_row(ID, "succeeded", "epoch 5/5", "quickstart sweep trial 11")
    table.add_row(ID, "running", "epoch 2/5, batch 100/1875", "resnet on my photos")
    return table


def test_a_table_that_fits_is_drawn_whole() -> None:
    table = _table()
    assert table.width == 32 + 9 + 25 + 25 + 2 * 4
    rows = [[cell.strip() for cell in row if cell.strip()] for row in _drawn(table, 120)]
    assert rows[0] == ["ID", "STATUS", "PROGRESS", "NAME"]
    assert rows[1] == [ID, "succeeded", "epoch 5/5", "quickstart sweep trial 11"]
    assert rows[2] == [ID, "running", "epoch 2/5, batch 100/1875", "resnet on my photos"]


@pytest.mark.parametrize("width", [80, 70, 60])
def test_in_a_narrow_terminal_only_the_other_columns_are_cut(width: int) -> None:
    rows = [[cell.strip() for cell in row if cell.strip()] for row in _drawn(_table(), width)]
    assert [row[:2] for row in rows] == [["ID", "STATUS"], [ID, "succeeded"], [ID, "running"]]
    progress, name = rows[2][2], rows[2][3]
    assert progress.endswith("…") and "epoch 2/5, batch 100/1875".startswith(progress[:-1])
    assert name.endswith("…") and "resnet on my photos".startswith(name[:-1])
    assert len(rows[0]) == 4  # every header is there
