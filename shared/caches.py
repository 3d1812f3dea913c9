"""Each host's bounded caches of what it reads from a remote store, by content hash: the
API's models, a worker's datasets; each crosses the network once per host."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from shared.artifacts import sha256_of
from shared.settings import Settings
from shared.storage import RETRY_AFTER_SECONDS, Store, StoreUnavailable


class Cache:
    """A bounded folder of what this host read from the store, one file per content hash;
    the least recently used go first."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    @classmethod
    def of(cls, settings: Settings, kind: str) -> Cache:
        """This host's cache of one kind (``models``, ``datasets``) under the var dir."""
        return cls(settings.var_dir.resolve() / "cache" / kind, settings.cache_mb * 1024 * 1024)

    def fetch(self, store: Store, key: str, sha256: str) -> Path:
        """A local file with the object's content: the object itself in a local store, else
        this host's copy, fetched once and checked against ``sha256``."""
        if store.local is not None:
            return store.local / key
        path = self.folder / f"{sha256}{Path(key).suffix}"
        if path.is_file():
            os.utime(path)  # recently used
            return path
        tmp = self.folder / f".tmp-{uuid.uuid4().hex[:8]}-{path.name}"
        try:
            store.get(key, tmp)
            if sha256 and sha256_of(tmp) != sha256:
                raise StoreUnavailable(
                    f"the store's {key} is not the content recorded for it (SHA-256 differs)",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self._evict(keep=path)
        return path

    def _files(self) -> Iterator[tuple[float, int, Path]]:
        for path in self.folder.iterdir():
            try:
                stat = path.stat()
            except FileNotFoundError:  # evicted by another process meanwhile
                continue
            if path.is_file() and not path.name.startswith(".tmp-"):
                yield stat.st_mtime, stat.st_size, path

    def _evict(self, keep: Path) -> None:
        files = sorted(self._files())
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= self.max_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size
