"""docker-compose.yml is valid by the Compose specification (no Docker engine runs here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import ROOT


def test_compose_file_matches_the_compose_schema() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_whole_service() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "web", "worker", "beat", "flower"} <= set(services)
    assert "flower" in services["flower"]["command"]
    assert services["web"]["environment"]["TRAINQ_DATABASE_URL"].startswith("postgresql+psycopg")
    assert "worker" in services["worker"]["command"] and "--beat" in services["beat"]["command"]
    assert (ROOT / "Dockerfile").is_file()


def test_compose_lets_training_go_first() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    default_weight = 1024
    assert services["web"]["cpu_shares"] < services["worker"].get("cpu_shares", default_weight)
