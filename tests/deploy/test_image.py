"""The Dockerfile's /app runs the server from its sources (PYTHONPATH), its versions pinned.

No Docker engine runs here: the test lays out /app as the Dockerfile's COPY lines do and finds
what the compose services run in it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_the_image_installs_with_the_constraints_and_runs_from_app() -> None:
    assert re.search(r"^WORKDIR /app$", DOCKERFILE, re.M)
    assert re.search(r"\bPYTHONPATH=/app\b", DOCKERFILE)
    assert re.search(r"pip install -c constraints\.txt '\.\[server\]'", DOCKERFILE)


def test_what_the_services_run_is_found_in_app(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    for line in re.findall(r"^COPY (.+)$", DOCKERFILE, re.M):
        *sources, target = line.split()
        for source in sources:
            where = app / target if target != "./" else app / source
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, where, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(ROOT / source, where if target != "./" else app)
    assert (app / "constraints.txt").is_file() and (app / "alembic.ini").is_file()
    modules = ["web.wsgi", "worker.celery_app", "shared.commands.cli", "trainq.cli"]
    code = (
        "import importlib.util, json; "
        f"print(json.dumps([importlib.util.find_spec(m).origin for m in {modules!r}]))"
    )
    # PYTHONPATH comes before the venv's own path (where `make install` put the checkout).
    env = {**os.environ, "PYTHONPATH": str(app)}
    found = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert found.returncode == 0, found.stderr
    origins = json.loads(found.stdout)
    assert all(origin.startswith(str(app)) for origin in origins), origins
    assert (app / "shared" / "datasets" / "data").is_dir() and (app / "web" / "static").is_dir()
