"""The light client (SDK and CLI) needs neither TensorFlow, Flask, SQLAlchemy nor Celery."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from tests.support import ROOT

HEAVY = ("tensorflow", "keras", "flask", "sqlalchemy", "celery", "numpy", "pydantic")


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_client_dependencies_are_light() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [_name(d) for d in project["dependencies"]]
    assert not set(names) & set(HEAVY), names
    assert project["scripts"]["trainq"] == "trainq.cli:main"


def test_the_package_gives_ranges_and_constraints_pin_every_dependency() -> None:
    """`pip install .` fits into any environment; `make install` and the image get the exact
    versions of constraints.txt."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [*project["dependencies"], *extras["server"], *extras["dev"]]
    assert not [d for d in wanted if "==" in d]
    assert all(re.search(r">=[\d.]+,<[\d.]+$", d) for d in project["dependencies"])
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line.strip() and not line.startswith("#"))
    assert {_name(d) for d in wanted} <= {_name(name) for name in pins}
    assert all(re.fullmatch(r"[\w.]+", version) for version in pins.values())


def test_cli_imports_nothing_heavy() -> None:
    code = (
        "import sys, trainq, trainq.cli; trainq.cli.parser().parse_args(['list']);"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_client_loads_no_server_package() -> None:
    code = (
        "import sys, trainq, trainq.cli, trainq.sse, trainq.progress;"
        "trainq.cli.parser().parse_args(['up']);"
        "print([m for m in sys.modules if m.split('.')[0] in ('shared', 'web', 'worker')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_server_commands_hand_over_or_say_they_need_the_server() -> None:
    from shared.commands import cli as server_cli
    from trainq import cli

    assert cli.SERVER_COMMANDS == server_cli.COMMANDS
    here = subprocess.run(
        [sys.executable, "-m", "trainq.cli", "users", "create", "--help"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert here.returncode == 0 and "--admin" in here.stdout, here.stderr
    # As with the client alone: no `shared` to import.
    code = (
        "import sys; sys.modules['shared'] = None; import trainq.cli; sys.exit(trainq.cli.main())"
    )
    for args in (["up"], ["users", "create", "ann", "--admin"], ["tokens", "list", "ann"]):
        alone = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT
        )
        assert alone.returncode == 2, alone.stderr
        assert f"`trainq {args[0]}` is a command of the trainq server" in alone.stderr
        assert "make install" in alone.stderr and "Traceback" not in alone.stderr
