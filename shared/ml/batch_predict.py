"""A batch prediction's model work: the rows read a chunk at a time (an upload's arrays from
their extracted files, never whole), each chunk predicted through the same code as
``POST /api/v1/jobs/{id}/predict`` with its bad rows set aside, and the chunks' outputs joined
into one ``.npz`` written member by member.

The result holds, for row i of the input, row i of every array: for a model with one output
``logits``, ``probabilities`` and ``classes`` (a classifier head) or ``values``; with several,
the same per output as ``<output>.logits`` ... A bad row (a NaN or an infinite value in its
inputs, or in its outputs) has NaN there and class -1, and its index is in ``bad_rows``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared import caches, storage
from shared.datasets import builtin, mapped, uploads
from shared.datasets.checks import NAME
from shared.ml import serving
from shared.ml.build import preprocess
from shared.settings import Settings

BAD_ROWS = "bad_rows"
NONFINITE_INPUT = "NaN or infinite value in input {name!r}"
NONFINITE_OUTPUT = "NaN or infinite value in output {name!r}"
# Member name -> (dtype, shape of one row).
Template = dict[str, tuple[np.dtype[Any], tuple[int, ...]]]


def load_model(settings: Settings, key: str, sha256: str) -> serving.Served:
    """The model file of a job, from the store through this host's cache, loaded."""
    import keras

    path = caches.Cache.of(settings, "models").fetch(storage.artifacts(settings), key, sha256)
    return serving.Served(keras.models.load_model(path), path.stat().st_size)


def _splits(settings: Settings, ref: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The dataset's input arrays by split, then by input name ("" for a single one)."""
    if ref.get("name") is not None:
        data = builtin.load(str(ref["name"]))
        parts = {"train": data.x_train, "test": data.x_test}
        return {
            s: (x if isinstance(x, dict) else {"": x}) for s, x in parts.items() if x is not None
        }
    path = uploads.local_file(settings, str(ref["id"]))
    found: dict[str, dict[str, Any]] = {}
    for key, array in mapped.arrays(settings, path).items():  # rows read from disk on demand
        m = NAME.match(key)
        if m and m["part"] in ("x_train", "x_test"):
            found.setdefault(m["part"][2:], {})[m["sub"] or ""] = array
    return found


class Inputs:
    """The rows to predict: one split, or the training rows then the test rows, per input."""

    def __init__(self, settings: Settings, spec: dict[str, Any], inputs: list[str]) -> None:
        splits = _splits(settings, spec["dataset"])
        order = (
            [spec["split"]] if spec.get("split") else [s for s in ("train", "test") if s in splits]
        )
        self.parts: list[list[Any]] = []
        for split in order:
            arrays = splits[split]
            if len(inputs) == 1 and len(arrays) == 1:  # one array for one input, by any name
                arrays = {inputs[0]: next(iter(arrays.values()))}
            if set(arrays) != set(inputs):
                raise ValueError(
                    f"the dataset's inputs {sorted(arrays)} are not the model's {inputs}"
                )
            self.parts.append([arrays[name] for name in inputs])
        self.n = sum(len(part[0]) for part in self.parts)

    def read(self, first: int, count: int) -> list[np.ndarray]:
        """Rows first .. first + count - 1 of every input, raw as stored."""
        pieces: list[list[np.ndarray]] = []
        for part in self.parts:
            size = len(part[0])
            if first < size and count > 0:
                take = min(count, size - first)
                pieces.append([np.asarray(a[first : first + take]) for a in part])
                count -= take
                first = 0
            else:
                first -= size
        return [np.concatenate(p) if len(p) > 1 else p[0] for p in zip(*pieces, strict=True)]


def _members(heads: list[serving.Head]) -> dict[str, np.ndarray]:
    one = len(heads) == 1
    out: dict[str, np.ndarray] = {}
    for head in heads:
        prefix = "" if one else f"{head.name}."
        if head.classes is None:
            out[f"{prefix}values"] = np.asarray(head.values, np.float32)
            continue
        out[f"{prefix}logits"] = np.asarray(head.logits, np.float32)
        out[f"{prefix}probabilities"] = np.asarray(head.probabilities, np.float32)
        out[f"{prefix}classes"] = np.asarray(head.classes, np.int64)
    return out


@dataclass
class Chunk:
    """One chunk's outputs (every member, one row per input row) and its bad rows."""

    arrays: dict[str, np.ndarray]
    bad: list[tuple[int, str]]  # (row index in the whole input, reason)


class Predictor:
    """A model and its preprocessing, predicting chunks of rows, at most ``rows_per_call`` in
    one call of the model (its activations grow with the rows of a call, not of a chunk)."""

    def __init__(self, served: serving.Served, scale: float, rows_per_call: int = 256) -> None:
        self.served, self.scale, self.rows_per_call = served, scale, max(1, rows_per_call)
        self.inputs = [t.name for t in served.signature.inputs]
        self.template: Template = {}  # the outputs' shapes, from the data's first row

    def shaped_by(self, first: list[np.ndarray]) -> None:
        """The outputs' shapes from the data's own rows (``first``: its first raw row per
        input): a model whose inputs take any length (None) gives outputs of the rows' length,
        which no placeholder row could say."""
        found = self._predict([np.zeros_like(preprocess(x, self.scale), np.float32) for x in first])
        self.template = {k: (v.dtype, v.shape[1:]) for k, v in found.items()}

    def _predict(self, xs: list[np.ndarray]) -> dict[str, np.ndarray]:
        # scale 1: the inputs are preprocessed already, as predict would.
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, len(xs[0]), self.rows_per_call):
            rows = [x[start : start + self.rows_per_call] for x in xs]
            parts.append(_members(serving.predict(
                self.served, dict(zip(self.inputs, rows, strict=True)), 1.0
            )))  # fmt: skip
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}

    def chunk(self, raw: list[np.ndarray], first_row: int) -> Chunk:
        """Predict one chunk of raw rows (``first_row`` is its first row's index)."""
        if not self.template:
            self.shaped_by([x[:1] for x in raw])
        xs = [np.asarray(preprocess(x, self.scale), np.float32) for x in raw]
        n = len(xs[0])
        bad: dict[int, str] = {}
        for name, x in zip(self.inputs, xs, strict=True):
            finite = np.isfinite(x.reshape(n, -1)).all(axis=1)
            for row in np.flatnonzero(~finite).tolist():
                bad.setdefault(row, NONFINITE_INPUT.format(name=name))
        good = np.setdiff1d(np.arange(n), np.fromiter(bad, np.int64, len(bad)))
        arrays = {k: np.full((n, *shape), -1 if k.endswith("classes") else np.nan, dtype)
                  for k, (dtype, shape) in self.template.items()}  # fmt: skip
        if len(good):
            taken = [x[good] if len(good) < n else x for x in xs]
            for key, values in self._predict(taken).items():
                arrays[key][good] = values
                if values.dtype.kind == "f":
                    finite = np.isfinite(values.reshape(len(good), -1)).all(axis=1)
                    for row in good[~finite].tolist():
                        bad.setdefault(row, NONFINITE_OUTPUT.format(name=key))
        where = np.fromiter(bad, np.int64, len(bad))
        for key, array in arrays.items():  # a row bad in one output is bad in all of them
            array[where] = -1 if key.endswith("classes") else np.nan
        listed = sorted((first_row + i, reason) for i, reason in bad.items())
        arrays[BAD_ROWS] = np.asarray([i for i, _ in listed], np.int64)
        return Chunk(arrays, listed)


def write_chunk(path: Path, chunk: Chunk) -> None:
    """A chunk's arrays as an uncompressed .npz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, **chunk.arrays)  # type: ignore[arg-type]


def _write_member(
    archive: zipfile.ZipFile, name: str, dtype: np.dtype[Any], shape: tuple[int, ...],
    parts: Iterable[np.ndarray],
) -> None:  # fmt: skip
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": shape}  # fmt: skip
    with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_2_0(f, header)
        for part in parts:
            f.write(np.ascontiguousarray(part, dtype).tobytes())


def assemble(dest: Path, template: Template, n_rows: int, n_bad: int, chunks: list[Path]) -> None:
    """Join the chunks' files, in order, into one .npz at ``dest``, one member at a time: the
    memory of one chunk's member at most."""

    def parts(name: str) -> Iterable[np.ndarray]:
        for path in chunks:
            with np.load(path, allow_pickle=False) as data:
                yield data[name]

    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, (dtype, shape) in template.items():
            _write_member(archive, name, dtype, (n_rows, *shape), parts(name))
        _write_member(archive, BAD_ROWS, np.dtype(np.int64), (n_bad,), parts(BAD_ROWS))
