"""The import contracts in .importlinter hold, and breaking one fails `make lint`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT

LINT = str(ROOT / ".venv" / "bin" / "lint-imports")
PACKAGES = ("shared", "web", "worker", "trainq")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    lint = LINT if Path(LINT).exists() else shutil.which("lint-imports")
    assert lint, "lint-imports is installed with the dev extras"
    return subprocess.run(
        [lint, "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120
    )


def _copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_contracts_hold() -> None:
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


BREAKS = {
    "flask in the core": ("shared/errors.py", "import flask\n", "Flask nor Celery"),
    "celery in the lifecycle, lazily": (
        "shared/jobs/lifecycle.py",
        "def _later() -> None:\n    import celery  # noqa: F401\n",
        "Flask nor Celery",
    ),
    "keras outside its part": ("shared/jobs/queries.py", "import keras\n", "only by shared.ml"),
    "tensorflow in the web, lazily": (
        "web/health.py",
        "def _later() -> None:\n    import tensorflow  # noqa: F401\n",
        "only by shared.ml",
    ),
    "tensorflow in the Celery main process": (
        "worker/periodic.py",
        "from worker import training  # noqa: F401\n",
        "loads no TensorFlow",
    ),
    "web imports the worker": ("web/queue.py", "import worker.tasks  # noqa: F401\n", "each other"),
    "the client imports the core": ("trainq/cli.py", "import shared.errors\n", "server's packages"),
    "a cycle": (
        "shared/spec/allowlists.py",
        "from shared.spec import job  # noqa: F401\n",
        "cycles",
    ),
}


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_breaking_a_contract_fails_lint(tmp_path: Path, case: str) -> None:
    path, line, contract = BREAKS[case]
    tree = _copy(tmp_path)
    with (tree / path).open("a") as f:
        f.write("\n" + line)
    out = _lint(tree)
    assert out.returncode != 0, out.stdout
    broken = [ln for ln in out.stdout.splitlines() if "BROKEN" in ln]
    assert broken, out.stdout
    assert contract in " ".join(out.stdout.split()), out.stdout
