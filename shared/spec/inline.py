"""Arrays a spec carries inline: ``fit.sample_weight`` and an inline ``fit.validation_data``
(``x``, ``y``, ``sample_weight``).

They are counted at submit (``count``: a spec may carry ``TRAINQ_MAX_INLINE_VALUES`` numbers;
more data is an upload), and a job's details show each as its shape and a note instead of the
numbers (``shown``): the job row keeps them for the worker, a status poll never carries them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

NOTE = "inline array, stored with the job and not repeated here"


def _arrays(spec: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Where the inline arrays of a spec (as stored) sit: (the object holding one, its key)."""
    fit = spec.get("fit")
    if not isinstance(fit, dict):
        return []
    found: list[tuple[dict[str, Any], str]] = []
    if isinstance(fit.get("sample_weight"), list):
        found.append((fit, "sample_weight"))
    validation = fit.get("validation_data")
    if isinstance(validation, dict):
        for key in ("x", "y", "sample_weight"):
            value = validation.get(key)
            if isinstance(value, dict):
                found.extend((value, name) for name, item in value.items() if _is_list(item))
            elif isinstance(value, list):
                found.append((validation, key))
    return found


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def numbers(value: Any, stop: int | None = None) -> int:
    """How many numbers a nested list holds (counting stops once past ``stop``)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            if (
                item
                and not isinstance(item[0], list)
                and not any(isinstance(v, list) for v in item)
            ):
                total += len(item)
            else:
                stack.extend(item)
        else:
            total += 1
        if stop is not None and total > stop:
            break
    return total


def count(spec: dict[str, Any], stop: int | None = None) -> int:
    """Numbers the spec's inline arrays hold together."""
    total = 0
    for holder, key in _arrays(spec):
        total += numbers(holder[key], None if stop is None else stop - total)
        if stop is not None and total > stop:
            break
    return total


def shape(value: Any) -> list[int]:
    """A nested list's shape, read along its first elements."""
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        value = value[0] if value else None
    return dims


def shown(spec: dict[str, Any], digest: bool = False) -> dict[str, Any]:
    """The spec as a job's details show it: each inline array as its shape and a note; with
    ``digest``, also the SHA-256 of its values (as canonical JSON), so that two specs whose
    arrays differ still differ as shown."""
    arrays = _arrays(spec)
    if not arrays:
        return spec
    spec = copy.deepcopy({k: v for k, v in spec.items() if k != "fit"}) | {
        "fit": _copy_fit(spec["fit"])
    }
    for holder, key in _arrays(spec):
        dims = shape(holder[key])
        summary: dict[str, Any] = {"shape": dims, "values": math.prod(dims), "note": NOTE}
        if digest:
            text = json.dumps(holder[key], separators=(",", ":"), sort_keys=True)
            summary["sha256"] = hashlib.sha256(text.encode()).hexdigest()
        holder[key] = summary
    return spec


def _copy_fit(fit: dict[str, Any]) -> dict[str, Any]:
    # Copies the containers down to the arrays, never the numbers themselves.
    out = dict(fit)
    validation = out.get("validation_data")
    if isinstance(validation, dict):
        out["validation_data"] = validation = dict(validation)
        for key in ("x", "y"):
            if isinstance(validation.get(key), dict):
                validation[key] = dict(validation[key])
    return out
