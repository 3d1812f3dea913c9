"""A large uploaded dataset's arrays read from disk, not loaded: its .npz members extracted once
into this host's cache as .npy files, each then read a batch of rows at a time (``Rows``), so
that training holds the batches it needs and no more.

Rows are read with ``os.pread`` rather than through a memory map: a shuffled batch touches rows
all over the file, and a mapping counts every page (with the kernel's fault-around, whole large
folios) it touches as the process's memory until it is dropped."""

from __future__ import annotations

import os
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from shared.settings import Settings

DONE = ".extracted"


def folder(settings: Settings) -> Path:
    """Where this host keeps the extracted members of the datasets it trains on."""
    return settings.var_dir.resolve() / "cache" / "datasets-mapped"


def arrays(settings: Settings, path: Path) -> dict[str, Any]:
    """The arrays of an uploaded .npz, each the rows of its extracted member, read on demand."""
    stat = path.stat()
    where = folder(settings) / f"{path.stem}-{stat.st_size}"
    if not (where / DONE).is_file():
        tmp = where.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{where.name}")
        tmp.mkdir(parents=True)
        try:
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    with archive.open(member) as src, (tmp / member.filename).open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            (tmp / DONE).touch()
            try:
                os.rename(tmp, where)
            except OSError:  # another process extracted it meanwhile
                if not (where / DONE).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    os.utime(where / DONE)  # recently used
    found = {p.name.removesuffix(".npy"): Rows.of(p) for p in sorted(where.glob("*.npy"))}
    evict(folder(settings), settings.cache_mb * 1024 * 1024, keep=where)
    return found


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def evict(root: Path, max_bytes: int, keep: Path) -> None:
    """Remove the least recently used extracted datasets while they hold more than
    ``max_bytes`` (TRAINQ_CACHE_MB), never ``keep``. A job reading one that goes keeps its
    open files (``Rows`` opens them as it is made): only the next job extracts it again."""
    done = []
    for where in root.iterdir():
        try:
            done.append(((where / DONE).stat().st_mtime, _size(where), where))
        except (FileNotFoundError, NotADirectoryError):  # being extracted, or gone meanwhile
            continue
    total = sum(size for _, size, _ in done)
    for _, size, where in sorted(done):
        if total <= max_bytes:
            break
        if where != keep:
            shutil.rmtree(where, ignore_errors=True)
            total -= size


class Rows:
    """The rows of a C-ordered .npy file, read on demand: ``rows[i:j]`` is another ``Rows``,
    ``rows[indices]`` and ``np.asarray(rows)`` read them."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, ...], dtype: np.dtype[Any],
                 start: int = 0, stop: int | None = None) -> None:  # fmt: skip
        self.path, self.offset, self.dtype = path, offset, dtype
        self.start, self.stop = start, shape[0] if stop is None else stop
        self.row_shape = shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * dtype.itemsize
        self._file: _File | None = None

    @classmethod
    def of(cls, path: Path) -> Rows | np.ndarray:
        """A .npy file's rows (a Fortran-ordered one, rare from np.savez, is loaded)."""
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = (
                np.lib.format.read_array_header_1_0(f)
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0(f)
            )
            offset = f.tell()
        if fortran or not shape:
            return np.load(path, allow_pickle=False)
        rows = cls(path, offset, tuple(shape), dtype)
        rows._file = _File(path)  # open now: the file may be evicted from the cache later
        return rows

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.stop - self.start, *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    def __len__(self) -> int:
        return self.stop - self.start

    def _read(self, first: int, count: int) -> bytes:
        if self._file is None:
            self._file = _File(self.path)
        want = count * self.row_bytes
        data = os.pread(self._file.fd, want, self.offset + (self.start + first) * self.row_bytes)
        if len(data) != want:
            raise OSError(f"{self.path} is shorter than its header says")
        return data

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            first, last, step = index.indices(len(self))
            if step != 1:
                return np.asarray(self)[index]
            part = Rows(self.path, self.offset, (self.stop, *self.row_shape), self.dtype,
                        self.start + first, self.start + max(first, last))  # fmt: skip
            part._file = self._file  # the same open file
            return part
        wanted = np.asarray(index, dtype=np.int64).reshape(-1)
        out = np.empty((len(wanted), *self.row_shape), self.dtype)
        flat = out.reshape(len(wanted), -1).view(np.uint8)
        order = np.argsort(wanted, kind="stable")
        i = 0
        while i < len(order):  # a run of consecutive rows is one read
            j = i + 1
            while j < len(order) and wanted[order[j]] == wanted[order[j - 1]] + 1:
                j += 1
            data = np.frombuffer(self._read(int(wanted[order[i]]), j - i), np.uint8)
            flat[order[i:j]] = data.reshape(j - i, -1)
            i = j
        return out if np.ndim(index) else out[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.frombuffer(self._read(0, len(self)), self.dtype).reshape(self.shape)
        return whole if dtype is None else whole.astype(dtype)

    def __getstate__(self) -> dict[str, Any]:  # to a PyDataset's worker process: no fd
        return {**self.__dict__, "_file": None}


class _File:
    """An open file shared by a ``Rows`` and its slices, closed when the last goes."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY)

    def __del__(self) -> None:
        os.close(self.fd)
