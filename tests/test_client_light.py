"""The light client (SDK and CLI) needs neither TensorFlow, Flask, SQLAlchemy nor Celery."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.support import ROOT

HEAVY = ("tensorflow", "keras", "flask", "sqlalchemy", "celery", "numpy", "pydantic")


def test_client_dependencies_are_light() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split("==")[0].split("[")[0].lower() for d in project["dependencies"]]
    assert not set(names) & set(HEAVY), names
    assert project["scripts"]["trainq"] == "trainq.cli:main"


def test_cli_imports_nothing_heavy() -> None:
    code = (
        "import sys, trainq, trainq.cli; trainq.cli.parser().parse_args(['list']);"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
