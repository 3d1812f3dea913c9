"""An upload's bytes written to a file on disk as they arrive, hashed and counted on the way:
never held whole in memory, and removed when closed unless the store took it."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shared.errors import PayloadTooLarge
from shared.settings import Settings

CHUNK = 1 << 20


@dataclass(frozen=True)
class Spooled:
    """A complete upload on disk: where, how many bytes, their SHA-256."""

    path: Path
    size: int
    sha256: str


def folder(settings: Settings) -> Path:
    """Where uploads are spooled on this host."""
    return settings.var_dir.resolve() / "uploads" / "spool"


class Spool:
    """A file being written: each write hashed and counted; ``close`` removes what is left."""

    def __init__(self, where: Path, limit: int | None = None) -> None:
        where.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=where, prefix=".spool-", suffix=".npz")
        self.path = Path(name)
        self.limit = limit
        self.size = 0
        self._file: IO[bytes] = os.fdopen(fd, "w+b")
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        """Append bytes (refused 413 past the limit)."""
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            raise PayloadTooLarge(
                f"the upload is larger than {self.limit} bytes", details={"limit": self.limit}
            )
        self._hash.update(data)
        return self._file.write(data)

    def fill(self, stream: IO[bytes]) -> Spool:
        """Copy a stream in chunks."""
        while chunk := stream.read(CHUNK):
            self.write(chunk)
        return self

    def done(self) -> Spooled:
        """What was written, flushed to disk."""
        self._file.flush()
        return Spooled(self.path, self.size, self._hash.hexdigest())

    # What werkzeug's form parser asks of the file it writes a part to.
    def read(self, n: int = -1) -> bytes:
        return self._file.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        """Close and remove the file (gone already if the store took it)."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def sweep(settings: Settings, older_than: float) -> int:
    """Remove spooled files left by a process that died mid-upload; how many."""
    removed, cutoff = 0, time.time() - older_than
    where = folder(settings)
    for path in where.glob(".spool-*") if where.is_dir() else ():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed
