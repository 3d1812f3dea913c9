"""The documentation: docs/settings.md is the settings object's, every relative link and anchor in
README.md and docs/*.md resolves, and the README stays short."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import settings_doc
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
README_LIMIT = 12 * 1024  # bytes

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def _prose(text: str) -> Iterator[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: the text without its Markdown, lowercase,
    punctuation dropped, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page (a repeated heading gets -1, -2, ... as on GitHub)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose(page.read_text()):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match[1])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> Iterator[str]:
    """The targets of a page's Markdown links, outside code."""
    for line in _prose(page.read_text()):
        # A code span may be a link's text ([`x.py`](x.py)), never a link itself.
        for match in _LINK.finditer(_CODE_SPAN.sub("code", line)):
            yield match[1]


def test_settings_doc_is_what_the_settings_object_gives() -> None:
    page = DOCS / "settings.md"
    current = page.read_text() if page.is_file() else ""
    assert current == settings_doc.render(), (
        "docs/settings.md differs from what the settings object gives; regenerate it with "
        f"`{settings_doc.COMMAND}`"
    )


def test_every_setting_has_a_description_and_a_row() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not missing, f"give these fields of shared/settings.py a description=: {missing}"
    page = settings_doc.render()
    for name in Settings.model_fields:
        assert f"| `TRAINQ_{name.upper()}` |" in page


def test_the_generator_loads_no_web_worker_or_keras() -> None:
    code = (
        "import sys; from shared import settings_doc; settings_doc.render(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'flask', 'celery', 'keras', 'tensorflow', 'web', 'worker'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("The two commands", "the-two-commands"),
        ("From Python: the SDK and `remote_fit`", "from-python-the-sdk-and-remote_fit"),
        ("The HTTP API (v1)", "the-http-api-v1"),
        ("Metrics, TensorBoard, Flower", "metrics-tensorboard-flower"),
        ("Errors: one shape, one code each", "errors-one-shape-one-code-each"),
        ("`GET /api/v1/jobs/{id}`", "get-apiv1jobsid"),
    ],
)
def test_slugs_follow_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in links(page):
            if _EXTERNAL.match(target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: ({target})"
            if not file.exists():
                broken.append(f"{where}: no file {path}")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{where}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_indexes_every_page_of_the_docs() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md")}
    unlisted = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not unlisted, f"README.md links no page docs/{unlisted}"


def test_the_readme_is_short() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, (
        f"README.md has {size} bytes, over {README_LIMIT}: move reference to docs/"
    )
