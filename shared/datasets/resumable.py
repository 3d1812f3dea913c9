"""Uploads in parts, for files too big for one request: started with their size, sent as
numbered parts (each one kept whole or not at all, sent again at will), asked which parts
arrived after a dropped connection, completed into a dataset with the checks of any upload.

An upload's parts are kept on the API host under ``<var_dir>/uploads/parts/<id>/`` until it is
completed or deleted; one left untouched for ``TRAINQ_UPLOAD_EXPIRY_SECONDS`` is gone for its
owner at once, and its files are deleted when the next upload in parts starts on that host
(with any file a process that died mid-upload left spooled).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from shared.datasets import checks, spool
from shared.datasets.spool import Spool, Spooled
from shared.errors import BadRequest, Conflict, InvalidInput, NotFound, PayloadTooLarge
from shared.models import User
from shared.settings import Settings

MAX_PARTS = 10_000
_ID = re.compile(r"^[0-9a-f]{32}$")
_PART = re.compile(r"^part-(\d{6})$")


def root(settings: Settings) -> Path:
    """Where the uploads in parts of this host are kept."""
    return settings.var_dir.resolve() / "uploads" / "parts"


def _folder(settings: Settings, owner: User, upload_id: str) -> Path:
    """An upload of the caller's still open; anybody else's, or an expired one, is not found."""
    folder = root(settings) / upload_id
    meta = folder / "upload.json"
    try:
        if not _ID.match(upload_id) or json.loads(meta.read_text())["owner_id"] != owner.id:
            raise FileNotFoundError(upload_id)
        if meta.stat().st_mtime < time.time() - settings.upload_expiry_seconds:
            shutil.rmtree(folder, ignore_errors=True)
            raise FileNotFoundError(upload_id)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise NotFound(f"no upload {upload_id!r} (uploads expire when left unfinished)") from exc
    return folder


def start(settings: Settings, owner: User, name: str, size: int) -> dict[str, Any]:
    """Open an upload of ``size`` bytes; the caller has admitted it against the quotas."""
    limit = settings.max_dataset_bytes
    if size > limit:
        raise PayloadTooLarge(f"the file has {size} bytes; at most {limit}",
                              details={"limit": limit})  # fmt: skip
    if size < 1:
        raise InvalidInput("an upload has at least one byte", details={"field": "size"})
    expire(settings)  # on the host that keeps them: the API's, not a worker's
    spool.sweep(settings, older_than=settings.upload_expiry_seconds)
    upload_id = uuid.uuid4().hex
    folder = root(settings) / upload_id
    folder.mkdir(parents=True)
    meta = {"owner_id": owner.id, "name": name[:200] or "dataset", "size": size,
            "created_at": datetime.now(UTC).isoformat()}  # fmt: skip
    (folder / "upload.json").write_text(json.dumps(meta))
    return status(settings, owner, upload_id)


def _parts(folder: Path) -> dict[int, dict[str, Any]]:
    parts = {}
    for path in folder.iterdir():
        m = _PART.match(path.name)
        if m:
            with path.with_suffix(".json").open() as f:
                parts[int(m[1])] = json.load(f)
    return dict(sorted(parts.items()))


def status(settings: Settings, owner: User, upload_id: str) -> dict[str, Any]:
    """What arrived: each part's number, size and SHA-256, the bytes received of the size."""
    folder = _folder(settings, owner, upload_id)
    meta = json.loads((folder / "upload.json").read_text())
    parts = [{"n": n, **p} for n, p in _parts(folder).items()]
    touched = (folder / "upload.json").stat().st_mtime
    return {
        "id": upload_id,
        "name": meta["name"],
        "size": meta["size"],
        "received_bytes": sum(p["size"] for p in parts),
        "parts": parts,
        "max_part_bytes": settings.upload_part_bytes,
        "expires_at": datetime.fromtimestamp(touched + settings.upload_expiry_seconds, UTC),
    }


def put_part(
    settings: Settings,
    owner: User,
    upload_id: str,
    n: int,
    stream: IO[bytes],
    length: int | None = None,
) -> dict[str, Any]:
    """Keep part ``n`` (1, 2, ...), streamed to disk, if all its ``length`` bytes arrive; a part
    sent again replaces it whole."""
    folder = _folder(settings, owner, upload_id)
    if not 1 <= n <= MAX_PARTS:
        raise InvalidInput(f"parts are numbered 1 to {MAX_PARTS}", details={"field": "n"})
    size = json.loads((folder / "upload.json").read_text())["size"]
    others = sum(p["size"] for k, p in _parts(folder).items() if k != n)
    room = size - others  # what the size announced at start leaves for this part
    with Spool(folder, limit=min(settings.upload_part_bytes, room)) as part_file:
        try:
            spooled = part_file.fill(stream).done()
        except PayloadTooLarge:
            if room >= settings.upload_part_bytes:
                raise  # over the part limit: 413
            raise Conflict(
                f"part {n} does not fit: the upload was started for {size} bytes and the other "
                f"parts hold {others}, leaving {room}",
                details={"size": size, "received_bytes": others, "room": room},
            ) from None
        if spooled.size == 0:
            raise InvalidInput(
                f"part {n} is empty: send its bytes as the request body", details={"field": "n"}
            )
        if length is not None and spooled.size != length:
            raise BadRequest(
                f"part {n} ended after {spooled.size} of its {length} bytes (a dropped "
                "connection?); send it again",
                details={"received_bytes": spooled.size, "length": length},
            )
        part = {"size": spooled.size, "sha256": spooled.sha256}
        (folder / f".part-{n:06d}.json").write_text(json.dumps(part))
        os.replace(folder / f".part-{n:06d}.json", folder / f"part-{n:06d}.json")
        os.replace(spooled.path, folder / f"part-{n:06d}")  # whole, or the part before it
    os.utime(folder / "upload.json")  # it is alive: its expiry starts again
    return {"n": n, **part}


def assemble(settings: Settings, owner: User, upload_id: str) -> tuple[str, Spool]:
    """The upload's name and its parts joined, in order, into one spooled file (hashed on the
    way); 409 while a part is missing or the bytes are not the size announced."""
    folder = _folder(settings, owner, upload_id)
    meta = json.loads((folder / "upload.json").read_text())
    parts = _parts(folder)
    missing = [n for n in range(1, max(parts, default=0) + 1) if n not in parts]
    received = sum(p["size"] for p in parts.values())
    if missing or received != meta["size"]:
        raise Conflict(
            f"the upload has {received} of its {meta['size']} bytes"
            + (f"; parts {missing[:20]} are missing" if missing else ""),
            details={"received_bytes": received, "size": meta["size"], "missing": missing[:100]},
        )
    joined = Spool(folder)
    try:
        for n in parts:
            with (folder / f"part-{n:06d}").open("rb") as f:
                joined.fill(f)
    except BaseException:
        joined.close()
        raise
    return meta["name"], joined


def discard(settings: Settings, upload_id: str) -> None:
    """Delete an upload's parts."""
    if _ID.match(upload_id):
        shutil.rmtree(root(settings) / upload_id, ignore_errors=True)


def delete(settings: Settings, owner: User, upload_id: str) -> None:
    """The caller gives an upload up."""
    _folder(settings, owner, upload_id)
    discard(settings, upload_id)


def expire(settings: Settings) -> int:
    """Delete the uploads left untouched past their expiry; how many."""
    cutoff, removed = time.time() - settings.upload_expiry_seconds, 0
    folders = root(settings).iterdir() if root(settings).is_dir() else iter(())
    for folder in folders:
        meta = folder / "upload.json"
        try:
            stale = meta.stat().st_mtime < cutoff
        except FileNotFoundError:  # half-made or half-deleted: judge by the folder
            stale = folder.stat().st_mtime < cutoff
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def completed(settings: Settings, spooled: Spooled, expected: str | None) -> None:
    """Refuse a joined upload whose SHA-256 is not the one its client computed."""
    if expected and expected.lower() != spooled.sha256:
        raise checks.bad(
            f"the parts joined have SHA-256 {spooled.sha256}, not {expected}: send the parts "
            "whose sizes or hashes differ from yours again",
            field="sha256",
        )
