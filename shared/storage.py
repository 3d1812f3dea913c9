"""The one store for what a job keeps (models, checkpoints, TensorBoard logs, uploaded datasets),
chosen by URL: local folders by default, or an S3-compatible bucket, through fsspec.

Keys are paths relative to a store's root, the same in every kind of store: a model is
``<job id>/model.keras``, a dataset ``<dataset id>.npz``. With ``TRAINQ_STORAGE_URL`` empty the
two roots are ``TRAINQ_ARTIFACTS`` and ``TRAINQ_DATASETS_DIR`` as they always were; with
``s3://bucket/prefix`` they are ``prefix/artifacts`` and ``prefix/datasets`` in the bucket.

A put is atomic: a local file is written aside and renamed into place; an S3 object appears
whole or not at all. A call that meets a transient error (connection refused, a timeout, a
5xx) is tried again with a backoff for at most the store's ``wait`` seconds, then
:class:`StoreUnavailable` (503 ``unavailable``) is raised. What a host reads from a remote store
goes through its cache (``shared.caches``), keyed by the content's SHA-256.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import fsspec

from shared.errors import Unavailable
from shared.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

REQUEST_WAIT_SECONDS = 5.0  # what an API request waits for the store before answering 503
RETRY_AFTER_SECONDS = 5
_TRANSIENT_ERRNOS = {errno.EBUSY, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNREFUSED,
                     errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH}  # fmt: skip


class StoreUnavailable(Unavailable):
    """The store does not answer (unreachable, timing out, failing): nothing the caller did."""


def transient(exc: BaseException) -> bool:
    """Whether a store's error is worth trying again (a connection, a timeout, a busy or failing
    server), rather than a missing object or a refusal."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    try:  # only a remote store has these; a local one never loads them
        import aiohttp
        import botocore.exceptions as boto
    except ImportError:  # pragma: no cover - the server extra installs both
        return False
    return (
        isinstance(exc, (boto.ConnectionError, boto.HTTPClientError, aiohttp.ClientError))
        or "ServiceUnavailable" in str(exc)
        or "SlowDown" in str(exc)
    )


class Store:
    """A folder or a bucket prefix holding objects by key."""

    def __init__(self, url: str, *, endpoint_url: str = "", wait: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.wait = wait
        protocol, _, rest = self.url.partition("://")
        if not rest:  # a plain path
            protocol, rest = "file", self.url
        self.protocol = protocol
        options: dict[str, Any] = {}
        if protocol == "s3":
            # Listings are never cached: another process may have just put or deleted a key.
            # One try per botocore call, short connects: the retries with backoff are ours.
            options = {
                "use_listings_cache": False,
                "config_kwargs": {
                    "connect_timeout": 5,
                    "read_timeout": 60,
                    "retries": {"max_attempts": 1},
                },
            }
            if endpoint_url:
                options["endpoint_url"] = endpoint_url
        self.fs: fsspec.AbstractFileSystem = fsspec.filesystem(protocol, **options)
        self.root = rest.rstrip("/") if protocol != "file" else str(Path(rest).resolve())
        #: The folder itself when the store is on this host's disk (no cache needed).
        self.local: Path | None = Path(self.root) if protocol == "file" else None
        #: Whether the last call through this store met a transient error it is still trying
        #: past (set and cleared by the calls themselves, from any thread).
        self.struggling = False

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def waiting(self, seconds: float) -> Store:
        """The same store, waiting at most ``seconds`` for a transient error to pass."""
        other = object.__new__(Store)
        other.__dict__.update(self.__dict__, wait=seconds)
        return other

    def _path(self, key: str) -> str:
        key = key.strip("/")
        if not key or ".." in key.split("/"):
            raise ValueError(f"not a store key: {key!r}")
        return f"{self.root}/{key}"

    def _retry(self, call: Callable[[], T], what: str) -> T:
        deadline = time.monotonic() + self.wait
        pause = 0.2
        while True:
            try:
                result = call()
            except Exception as exc:
                self.struggling = transient(exc)
                if isinstance(exc, PermissionError) and self.local is None:
                    raise StoreUnavailable(  # an operator's to fix, not the caller's
                        f"the store {self.url} refuses access ({what}): check its credentials "
                        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the bucket's policy",
                        retry_after=RETRY_AFTER_SECONDS,
                        details={"store": self.url},
                    ) from exc
                if not transient(exc):
                    raise
                if time.monotonic() + pause > deadline:
                    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                    log.error("store %s unreachable (%s) for %.0f s: %s", self.url, what,
                              self.wait, reason)  # fmt: skip
                    raise StoreUnavailable(
                        f"the store {self.url} cannot be reached ({what}: {reason[:300]}); "
                        "try again later",
                        retry_after=RETRY_AFTER_SECONDS,
                        details={"store": self.url},
                    ) from exc
                log.warning("store %s: %s failed (%s); trying again", self.url, what, exc)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
            else:
                self.struggling = False
                return result

    def put(self, src: Path, key: str, *, keep: bool = False) -> None:
        """Store a local file under ``key``, atomically; the file is moved unless ``keep``."""
        path = self._path(key)
        if self.local is not None:
            dest = Path(path)
            if dest == src:
                return
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{dest.name}")
            (shutil.copyfile if keep else shutil.move)(src, tmp)
            os.replace(tmp, dest)
            return
        self._put(lambda: self.fs.put_file(str(src), path), key)
        if not keep:
            src.unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store bytes under ``key``, atomically."""
        path = self._path(key)
        if self.local is not None:
            dest = Path(path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{dest.name}")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
            return
        self._put(lambda: self.fs.pipe_file(path, data), key)

    def _put(self, call: Callable[[], object], key: str) -> None:
        try:
            self._retry(call, f"put {key}")
        except FileNotFoundError as exc:  # a put finds no bucket, never no object
            raise StoreUnavailable(
                f"the store {self.url} has no such bucket: create it (trainq does not)",
                retry_after=RETRY_AFTER_SECONDS,
                details={"store": self.url},
            ) from exc

    def get(self, key: str, dest: Path) -> None:
        """Copy an object to a local file, which appears whole (FileNotFoundError if none)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{dest.name}")
        try:
            self._retry(lambda: self.fs.get_file(self._path(key), str(tmp)), f"get {key}")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def read_bytes(self, key: str) -> bytes:
        """An object's content (FileNotFoundError if there is none)."""
        data: bytes = self._retry(lambda: self.fs.cat_file(self._path(key)), f"read {key}")
        return data

    def open(self, key: str) -> IO[bytes]:
        """An object opened for reading."""
        f: IO[bytes] = self._retry(lambda: self.fs.open(self._path(key), "rb"), f"open {key}")
        return f

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        path = self._path(key)
        try:  # not fs.isfile, which answers False for any error, an unreachable store too
            info = self._retry(lambda: self.fs.info(path), f"look up {key}")
        except FileNotFoundError:
            return False
        return bool(info.get("type") == "file")

    def delete(self, key: str) -> None:
        """Delete an object; one that is not there is no error."""
        with contextlib.suppress(FileNotFoundError):
            self._retry(lambda: self.fs.rm_file(self._path(key)), f"delete {key}")

    def list(self, prefix: str) -> list[str]:
        """The keys under a prefix (a folder), recursively, sorted; none if there is no such
        prefix."""
        base = self._path(prefix) if prefix.strip("/") else self.root
        try:
            found = self._retry(lambda: self.fs.find(base), f"list {prefix}")
        except FileNotFoundError:
            return []
        root = self.root.rstrip("/") + "/"
        keys = (str(p).removeprefix(root) for p in found)
        return sorted(k for k in keys if not Path(k).name.startswith(".tmp-"))

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under a prefix."""
        base = self._path(prefix)
        if self.local is not None:
            shutil.rmtree(base, ignore_errors=True)
            return
        keys = [self._path(k) for k in self.list(prefix)]
        if keys:
            self._retry(lambda: self.fs.rm(keys), f"delete {prefix}/")

    def sync_up(self, folder: Path, prefix: str, seen: dict[str, tuple[int, int]]) -> int:
        """Put the files of a local folder that changed since the last sync (by size and
        modification time, remembered in ``seen``) under ``prefix``; how many were put."""
        if self.local is not None and folder.resolve() == Path(self._path(prefix)):
            return 0  # the folder is in the store already
        put = 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            stat = path.stat()
            rel = path.relative_to(folder).as_posix()
            if seen.get(rel) == (stat.st_size, stat.st_mtime_ns):
                continue
            self.put(path, f"{prefix}/{rel}", keep=True)
            seen[rel] = (stat.st_size, stat.st_mtime_ns)
            put += 1
        return put


def _roots(settings: Settings) -> tuple[str, str]:
    url = settings.storage_url.strip()
    if not url:
        return str(settings.artifacts), str(settings.datasets_dir)
    url = url.rstrip("/")
    return f"{url}/artifacts", f"{url}/datasets"


def artifacts(settings: Settings, *, wait: float | None = None) -> Store:
    """Where the jobs' files are kept: models, checkpoints, TensorBoard logs."""
    return Store(_roots(settings)[0], endpoint_url=settings.s3_endpoint_url,
                 wait=settings.storage_wait_seconds if wait is None else wait)  # fmt: skip


def datasets(settings: Settings, *, wait: float | None = None) -> Store:
    """Where uploaded datasets are kept, one .npz each."""
    return Store(_roots(settings)[1], endpoint_url=settings.s3_endpoint_url,
                 wait=settings.storage_wait_seconds if wait is None else wait)  # fmt: skip


def remote(settings: Settings) -> bool:
    """Whether what a job keeps lives off this host (the local folders then hold caches and
    the files of the jobs training here)."""
    return bool(settings.storage_url.strip()) and not settings.storage_url.startswith("file:")
