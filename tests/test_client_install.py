"""`pip install .` into an empty virtual environment installs the client alone, and it works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import api_alone
from tests.support import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
SERVER = ("shared", "web", "worker", "tests", "benchmarks", "migrations")
HEAVY = ("tensorflow", "keras", "flask", "sqlalchemy", "celery", "numpy", "pydantic", "gunicorn")


class Installed:
    """A fresh venv with the checkout pip-installed into it."""

    def __init__(self, root: Path) -> None:
        self.root, self.bin = root, root / "venv" / "bin"
        purelib = sysconfig.get_path("purelib", vars={"base": str(root / "venv")})
        self.site = Path(purelib)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINQ_", "PYTHON"))}
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]], cwd=self.root, env={**clean, **env},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("client-install")
    # A copy of the checkout, so that building writes nothing (build/, *.egg-info) into it.
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
    ))  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    done = subprocess.run(
        [str(root / "venv" / "bin" / "pip"), "install", "--quiet", "--no-input", str(source)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    yield Installed(root)


def test_only_the_client_is_installed(installed: Installed) -> None:
    site = installed.site
    assert (site / "trainq" / "cli.py").is_file()
    assert not [name for name in SERVER if (site / name).exists()]
    record = (site / "trainq-0.1.0.dist-info" / "RECORD").read_text().splitlines()
    files = {line.rsplit(",", 2)[0] for line in record}
    assert all(f.startswith(("trainq/", "trainq-0.1.0.dist-info/", "../../../bin/")) for f in files)
    assert (site / "trainq-0.1.0.dist-info" / "top_level.txt").read_text().split() == ["trainq"]
    # Its three dependencies (and theirs), nothing of the service.
    names = installed.run("python", "-m", "pip", "list", "--format=freeze").stdout.lower()
    packages = {line.split("==")[0] for line in names.split()}
    assert {"requests", "pyyaml", "rich"} <= packages
    assert not packages & set(HEAVY), packages
    alone = installed.run("python", "-c", "import trainq.cli, trainq.keras; import shared")
    assert "No module named 'shared'" in alone.stderr


def test_the_installed_command_works(installed: Installed) -> None:
    helped = installed.run("trainq", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "submit" in helped.stdout and "users" in helped.stdout

    spec = str(ROOT / "examples" / "quickstart.json")
    nobody = f"http://127.0.0.1:{free_port()}"
    refused = installed.run("trainq", "submit", spec, "--url", nobody, "--token", "tq_x")
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"error: cannot reach the trainq server at {nobody}")
    assert "Traceback" not in refused.stderr

    for args in (["up"], ["users", "create", "ann", "--admin"], ["tokens", "list", "ann"]):
        server = installed.run("trainq", *args)
        assert server.returncode == 2 and "Traceback" not in server.stderr, server.stderr
        assert f"`trainq {args[0]}` is a command of the trainq server" in server.stderr


def test_the_installed_client_submits_to_a_live_server(
    installed: Installed, tmp_path: Path, redis_url: str
) -> None:
    with api_alone(tmp_path, redis_url, 11, "carol") as (service, token):  # no worker: it waits
        env = {"TRAINQ_URL": service.url, "TRAINQ_TOKEN": token}
        submitted = installed.run("trainq", "submit", str(ROOT / "examples" / "quickstart.json"),
                                  **env)  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.strip()
        status = installed.run("trainq", "status", job_id, **env)
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith(f"{job_id}  ") and " queued " in status.stdout
