"""Large files uploaded in parts (POST /api/v1/uploads, PUT .../parts/{n}, POST .../complete),
each part sent again after a dropped connection, an interrupted upload resumed by its id."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import requests

from trainq.errors import ApiError, Unavailable

PART_BYTES = 16 * 1024 * 1024
RETRIES = 8  # tries of one part before the upload stops (resumable by its id)

Call = Callable[..., requests.Response]


class UploadInterrupted(Exception):
    """An upload in parts that stopped; ``Client.upload_dataset(..., resume=upload_id)`` goes
    on from the parts that arrived."""

    def __init__(self, upload_id: str, cause: BaseException) -> None:
        super().__init__(f"the upload stopped ({cause}); resume it with upload id {upload_id}")
        self.upload_id = upload_id


def _bar(total: int, label: str, show: bool) -> Any:
    if not show:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=False)  # fmt: skip


def upload(
    call: Call,
    path: Path,
    name: str,
    *,
    part_bytes: int | None = None,
    resume: str | None = None,
    progress: bool = False,
    pause: float = 1.0,
) -> dict[str, Any]:
    """Upload ``path`` in parts; the dataset's record."""
    size = path.stat().st_size
    if resume is None:
        upload_ = call("POST", "/api/v1/uploads", json={"size": size, "name": name}).json()
    else:
        upload_ = call("GET", f"/api/v1/uploads/{resume}").json()
    upload_id: str = upload_["id"]
    part = min(part_bytes or PART_BYTES, int(upload_["max_part_bytes"]))
    arrived = {p["n"]: (p["size"], p["sha256"]) for p in upload_["parts"]}
    whole = hashlib.sha256()
    with _bar(size, path.name, progress) as bar, path.open("rb") as f:
        task = bar.add_task(path.name, total=size) if bar is not None else None
        for n in range(1, -(-size // part) + 1):
            chunk = f.read(part)
            whole.update(chunk)
            mine = (len(chunk), hashlib.sha256(chunk).hexdigest())
            if arrived.get(n) != mine:
                _put(call, upload_id, n, chunk, mine, pause)
            if bar is not None:
                bar.update(task, advance=len(chunk))
    try:
        done = call("POST", f"/api/v1/uploads/{upload_id}/complete",
                    json={"sha256": whole.hexdigest()})  # fmt: skip
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise UploadInterrupted(upload_id, exc) from exc
    result: dict[str, Any] = done.json()
    return result


def _put(call: Call, upload_id: str, n: int, chunk: bytes, mine: tuple[int, str],
         pause: float) -> None:  # fmt: skip
    """Send one part until it arrives whole; after a failure, ask whether it did anyway."""
    url = f"/api/v1/uploads/{upload_id}"
    for attempt in range(RETRIES):
        try:
            kept = call("PUT", f"{url}/parts/{n}", data=chunk,
                        headers={"Content-Type": "application/octet-stream"}).json()  # fmt: skip
            if (kept["size"], kept["sha256"]) == mine:
                return
        except (requests.ConnectionError, requests.Timeout, Unavailable) as exc:
            if attempt == RETRIES - 1:
                raise UploadInterrupted(upload_id, exc) from exc
        except ApiError as exc:
            if exc.status != 400 or attempt == RETRIES - 1:  # 400: the part came short
                raise
        time.sleep(min(pause * 2**attempt, 30.0))
        try:
            parts = call("GET", url).json()["parts"]
        except (requests.ConnectionError, requests.Timeout, Unavailable):
            continue
        if any((p["n"], p["size"], p["sha256"]) == (n, *mine) for p in parts):
            return
    raise UploadInterrupted(upload_id, RuntimeError(f"part {n} never arrived whole"))
