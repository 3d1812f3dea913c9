"""A real S3-compatible server for tests: moto's server mode on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import dies_with_us, free_port, wait_until

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "trainq-test", "AWS_SECRET_ACCESS_KEY": "trainq-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


@dataclass
class MotoServer:
    """One moto_server process; ``stop()`` and ``start()`` take the store away and back."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        log = (self.workdir / "moto.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=dies_with_us(),
        )  # fmt: skip
        wait_until(self._up, 20, "moto_server")

    def _up(self) -> bool:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def fs(self) -> Any:
        """An s3fs client of the server (listings never cached: the service writes meanwhile)."""
        import s3fs

        return s3fs.S3FileSystem(
            endpoint_url=self.endpoint, key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], use_listings_cache=False,
        )  # fmt: skip

    def make_bucket(self, name: str) -> None:
        self.fs().mkdir(name)


@contextmanager
def moto_server(workdir: Path) -> Iterator[MotoServer]:
    """A moto_server of the caller's own, with the AWS credentials it accepts in the environment
    of this process (s3fs and botocore read them)."""
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server = MotoServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
