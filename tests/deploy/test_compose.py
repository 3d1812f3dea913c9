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


def test_compose_keeps_what_jobs_keep_in_a_store_and_shares_no_volume() -> None:
    """Workers need no shared folder: everything a job keeps is in the S3-compatible store, so a
    worker may run on another machine."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "seaweedfs" in services["seaweedfs"]["image"]
    for name in ("web", "worker", "beat", "bucket"):
        env = services[name]["environment"]
        assert env["TRAINQ_STORAGE_URL"].startswith("s3://"), name
        assert env["TRAINQ_S3_ENDPOINT_URL"] == "http://seaweedfs:8333", name
        assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"], name
    for name in ("web", "worker", "beat"):
        assert not services[name].get("volumes"), f"{name} mounts a volume"
        assert services[name]["depends_on"]["bucket"]["condition"] == (
            "service_completed_successfully"
        )
