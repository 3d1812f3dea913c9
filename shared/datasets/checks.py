"""An uploaded .npz checked as it is read, never loaded whole: its zip members and their .npy
headers (shape, dtype) without pickle, then each array's bytes streamed in chunks.

Uncompressed bytes are counted as they are inflated, never taken from the archive's headers, so
a zip bomb stops at the limit; an array whose bytes are fewer or more than its header promises
(a truncated file) is refused, as is anything that is not numbers.
"""

from __future__ import annotations

import re
import struct
import zipfile
from typing import IO, Any

import numpy as np

from shared.errors import InvalidInput

NAME = re.compile(
    r"^(?:(?P<part>[xy]_(?:train|test))|(?P<w>sample_weight))(?:\.(?P<sub>\w{1,64}))?$"
)
ALLOWED = "x_train, y_train, x_test, y_test (each optionally .NAME) and sample_weight[.NAME]"
CHUNK = 1 << 20  # bytes inflated at a time

Info = dict[str, dict[str, Any]]


def bad(message: str, field: str = "file", **details: Any) -> InvalidInput:
    """The one refusal of an upload: 422 invalid_input naming the field."""
    return InvalidInput(message, details={"field": field, **details})


def declared_members(f: IO[bytes]) -> int | None:
    """How many members the zip directory's end record declares (None: no such record), read
    before the directory itself is."""
    size = f.seek(0, 2)
    start = max(0, size - 65557)
    f.seek(start)
    tail = f.read()
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 > len(tail):
        return None
    total: int = struct.unpack_from("<H", tail, end + 10)[0]
    return total  # a zip64 archive says 0xFFFF here, which no limit admits


class _Counter:
    """Uncompressed bytes read so far, held to the limit."""

    def __init__(self, limit: int) -> None:
        self.limit, self.total = limit, 0

    def add(self, n: int, field: str) -> None:
        self.total += n
        if self.total > self.limit:
            raise bad(
                f"the arrays take more than {self.limit} bytes uncompressed; at most {self.limit}",
                field=field,
                limit=self.limit,
            )


def _header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[Any]]:
    version = np.lib.format.read_magic(f)
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _fortran, dtype = read(f)
    return tuple(shape), dtype


def _dtype_checks(key: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
    if dtype.hasobject:
        raise bad(
            f"array {key!r} holds Python objects, which cannot be read without pickle; "
            "send numbers only",
            field=key,
        )
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise bad(f"array {key!r} has dtype {dtype}; only numbers", field=key)
    if not shape:
        raise bad(f"array {key!r} is a scalar; one row per sample", field=key)


def _stream(
    f: IO[bytes], key: str, dtype: np.dtype[Any], expected: int, counter: _Counter, weight: bool
) -> None:
    """Read an array's bytes in chunks: counted, checked finite (and >= 0 for a weight)."""
    got, rest = 0, b""
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        counter.add(len(chunk), key)
        got += len(chunk)
        if got > expected:
            raise bad(f"array {key!r} holds more bytes than its header says", field=key)
        data = rest + chunk
        usable = len(data) - len(data) % dtype.itemsize
        values, rest = np.frombuffer(data[:usable], dtype=dtype), data[usable:]
        if dtype.kind == "f" and not np.isfinite(values).all():
            raise bad(f"array {key!r} holds NaN or infinite values", field=key)
        if weight and (values < 0).any():
            raise bad(f"{key} must be one non-negative number per training sample", field=key)
    if got != expected:
        raise bad(
            f"array {key!r} is truncated: {got} of its {expected} bytes are in the file",
            field=key,
        )


def _members(f: IO[bytes], limit: int, max_arrays: int) -> Info:
    declared = declared_members(f)
    if declared is not None and declared > max_arrays:
        raise bad(
            f"the archive holds {declared} members; a dataset has at most {max_arrays} "
            f"arrays ({ALLOWED})",
            limit=max_arrays,
        )
    f.seek(0)
    try:
        archive = zipfile.ZipFile(f)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise bad("the file is not an .npz archive (np.savez / np.savez_compressed)") from exc
    if len(infos) > max_arrays:
        raise bad(
            f"the archive holds {len(infos)} members; a dataset has at most {max_arrays} arrays",
            limit=max_arrays,
        )
    # What the directory says only ever refuses early; what is inflated is counted anyway.
    if sum(i.file_size for i in infos) > limit:
        raise bad(f"the arrays take {sum(i.file_size for i in infos)} bytes uncompressed; "
                  f"at most {limit}")  # fmt: skip
    counter, promised, info = _Counter(limit), 0, {}
    for member in infos:
        key = member.filename.removesuffix(".npy")
        if NAME.match(key) is None:
            raise bad(f"unexpected array {key!r}; the names are {ALLOWED}", field=key)
        try:
            with archive.open(member) as m:
                try:
                    shape, dtype = _header(m)
                except Exception as exc:
                    raise bad(f"{member.filename!r} is not a NumPy array: {exc}",
                              field=key) from exc  # fmt: skip
                _dtype_checks(key, shape, dtype)
                expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                promised += expected
                if promised > limit:  # a header may promise more than the file holds
                    raise bad(f"the arrays take more than {limit} bytes; at most {limit}",
                              field=key)  # fmt: skip
                counter.add(m.tell() if m.seekable() else 0, key)
                weight = bool(NAME.match(key)["w"])  # type: ignore[index]
                _stream(m, key, dtype, expected, counter, weight)
        except InvalidInput:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise bad(f"array {key!r} cannot be read (a truncated or corrupt file): {exc}",
                      field=key) from exc  # fmt: skip
        info[key] = {"shape": list(shape), "dtype": str(dtype)}
    return info


def check_file(f: IO[bytes], limit: int, max_arrays: int = 32) -> tuple[Info, int, int | None]:
    """Check an upload read from a seekable file: per array its shape and dtype, the train and
    test sample counts. Nothing but headers and one chunk at a time is held in memory."""
    info = _members(f, limit, max_arrays)
    groups: dict[str, dict[str, int]] = {}
    for key, meta in info.items():
        m = NAME.match(key)
        assert m is not None
        if m["w"] and len(meta["shape"]) != 1:
            raise bad(f"{key} must be one non-negative number per training sample", field=key)
        groups.setdefault("weights" if m["w"] else m["part"], {})[m["sub"] or ""] = meta["shape"][0]
    for part in ("x_train", "y_train", "x_test", "y_test"):
        if part in groups and "" in groups[part] and len(groups[part]) > 1:
            raise bad(f"give {part} or named {part}.NAME arrays, not both", field=part)
    for part in ("x_train", "y_train"):
        if part not in groups:
            raise bad(f"the archive has no {part}; the names are {ALLOWED}", field=part)
    if ("x_test" in groups) != ("y_test" in groups):
        raise bad("give both x_test and y_test, or neither", field="x_test")
    counts: dict[str, int | None] = {}
    for split in ("train", "test"):
        sizes = {
            f"{part}{'.' + sub if sub else ''}": n
            for part in (f"x_{split}", f"y_{split}")
            for sub, n in groups.get(part, {}).items()
        }
        if split == "train":
            sizes.update({f"sample_weight{'.' + k if k else ''}": n
                          for k, n in groups.get("weights", {}).items()})  # fmt: skip
        if len(set(sizes.values())) > 1:
            raise bad(f"the {split} arrays have different lengths: {sizes}", field=f"x_{split}")
        counts[split] = next(iter(sizes.values()), None)
    if not counts["train"]:
        raise bad("the training arrays are empty", field="x_train")
    return info, int(counts["train"]), counts["test"]
