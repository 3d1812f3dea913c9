"""The arrays of a ``remote_fit``: checked as the service would check them, then written as an
.npz whose bytes depend on the arrays alone, so its SHA-256 finds the same arrays uploaded before.

NumPy only (imported by ``trainq.keras``): the light client does not load it.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from trainq.errors import CannotSend

# Every member's time in the archive: np.savez writes the current time, which would make the
# same arrays a different file (and hash) at each call.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def named(value: Any, names: list[str], what: str) -> dict[str, Any]:
    """``x`` or ``y`` by the model's input (output) names: one array for a model with one, else
    a dict keyed by those names or a list in their order ("" names the single array)."""
    if isinstance(value, dict):
        if set(value) != set(names):
            raise CannotSend(
                f"{what} is keyed {sorted(map(str, value))}; the model's names are {sorted(names)}"
            )
        return dict(value)
    if len(names) > 1:
        if not isinstance(value, list | tuple) or len(value) != len(names):
            raise CannotSend(
                f"the model has {len(names)} {what} ({', '.join(names)}): give {what} as a dict "
                "keyed by those names or a list in their order"
            )
        return dict(zip(names, value, strict=True))
    return {"": value}


def checked(value: Any, what: str) -> np.ndarray:
    """One array as the service takes it: numbers, finite, a row per sample (float64 sent as
    the float32 the service trains on anyway)."""
    if value is None:
        raise CannotSend(f"{what} is missing")
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise CannotSend(
            f"{what} holds Python objects (dtype object), which cannot be sent; "
            "give arrays of numbers of one shape"
        )
    if array.dtype.kind not in "biuf":
        raise CannotSend(f"{what} has dtype {array.dtype}; the service takes numbers only")
    if array.ndim == 0:
        raise CannotSend(f"{what} is a scalar; give one row per sample")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise CannotSend(f"{what} holds NaN or infinite values")
    return array.astype(np.float32) if array.dtype == np.float64 else array


def split_arrays(
    split: str, x: dict[str, Any], y: dict[str, Any], sample_weight: Any = None
) -> dict[str, np.ndarray]:
    """One split's arrays under the names of an upload (``x_train``, ``y_train.<name>``,
    ``sample_weight``), checked, all of one length."""
    arrays: dict[str, np.ndarray] = {}
    for part, parts in ((f"x_{split}", x), (f"y_{split}", y)):
        for key, value in parts.items():
            name = f"{part}.{key}" if key else part
            arrays[name] = checked(value, name)
    if isinstance(sample_weight, dict):
        raise CannotSend("sample_weight is one weight per sample, for every output together")
    if sample_weight is not None:
        weight = checked(sample_weight, "sample_weight")
        if weight.ndim != 1 or (weight < 0).any():
            raise CannotSend("sample_weight is one non-negative number per sample")
        arrays["sample_weight"] = weight
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise CannotSend(f"the arrays have different lengths: {lengths}")
    if not next(iter(lengths.values()), 0):
        raise CannotSend("the arrays are empty")
    return arrays


def write(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """Write the arrays as an .npz the service reads (no pickle); returns the file's SHA-256."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(
                    member, np.ascontiguousarray(arrays[name]), allow_pickle=False
                )
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
