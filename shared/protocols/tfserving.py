"""TensorFlow Serving's REST API: predict in the row (``instances``) and columnar (``inputs``)
forms, model status and metadata, as TF Serving answers them
(tensorflow.org/tfx/serving/api_rest)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import InvalidInput
from shared.ml.serving import Head, Signature, rows_to_inputs
from shared.protocols.tensors import arrays_of, outputs_of

SIGNATURE = "serving_default"
METHOD = "tensorflow/serving/predict"


class PredictBody(BaseModel):
    """``{"signature_name"?, "instances": [...]}`` (rows) or ``{"signature_name"?, "inputs": ...}``
    (columns: one tensor, or an object by input name)."""

    model_config = ConfigDict(extra="forbid")
    signature_name: str | None = None
    instances: list[Any] | None = None
    inputs: Any = None


@dataclass(frozen=True)
class PredictRequest:
    """A predict request as the model's inputs by name, and the form it came in."""

    inputs: dict[str, Any]
    rows: bool


def parse_predict(body: Any, signature: Signature) -> PredictRequest:
    """A predict body read against the model's signature; InvalidInput says what is wrong."""
    try:
        parsed = PredictBody.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput(
            'send {"instances": [...]} (rows) or {"inputs": ...} (columns), and optionally '
            '"signature_name"', details={"field": "instances"},
        ) from exc  # fmt: skip
    if parsed.signature_name not in (None, "", SIGNATURE):
        raise InvalidInput(
            f'Serving signature name: "{parsed.signature_name}" not found in signature def',
            details={"field": "signature_name"},
        )
    if (parsed.instances is None) == (parsed.inputs is None):
        raise InvalidInput(
            'send either "instances" (rows) or "inputs" (columns), not both and not neither',
            details={"field": "instances"},
        )
    if parsed.instances is not None:
        if not parsed.instances:
            raise InvalidInput("instances is empty", details={"field": "instances"})
        return PredictRequest(rows_to_inputs(signature, parsed.instances), rows=True)
    names = [t.name for t in signature.inputs]
    columns = parsed.inputs
    if isinstance(columns, Mapping) and set(columns) == set(names):
        return PredictRequest(dict(columns), rows=False)
    if len(names) == 1 and not isinstance(columns, Mapping):
        return PredictRequest({names[0]: columns}, rows=False)
    raise InvalidInput(
        f"inputs must be an object with the model's inputs {names}",
        details={"field": "inputs", "inputs": names},
    )


def predict_answer(heads: list[Head], rows: bool) -> dict[str, Any]:
    """``{"predictions": [...]}`` per row, or ``{"outputs": ...}`` per output tensor; the tensor's
    name is left out when there is only one."""
    arrays = {name: a.tolist() for name, a in arrays_of(heads).items()}
    if not rows:
        return {"outputs": next(iter(arrays.values())) if len(arrays) == 1 else arrays}
    if len(arrays) == 1:
        return {"predictions": next(iter(arrays.values()))}
    count = len(heads[0].values)
    return {"predictions": [{k: v[i] for k, v in arrays.items()} for i in range(count)]}


def status(versions: list[int]) -> dict[str, Any]:
    """GetModelStatusResponse as JSON: each version AVAILABLE (a registered version is served)."""
    return {
        "model_version_status": [
            {
                "version": str(v),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
            for v in versions
        ]
    }


def _tensor_info(name: str, dtype: str, shape: tuple[int | None, ...]) -> dict[str, Any]:
    dims = [{"size": str(-1 if d is None else d), "name": ""} for d in (None, *shape)]
    return {
        "dtype": dtype,
        "tensor_shape": {"dim": dims, "unknown_rank": False},
        "name": f"{SIGNATURE}_{name}:0",
    }


def metadata(name: str, version: int, signature: Signature) -> dict[str, Any]:
    """GetModelMetadataResponse as JSON: the one signature, ``serving_default``."""
    inputs = {t.name: _tensor_info(t.name, "DT_FLOAT", t.shape) for t in signature.inputs}
    outputs = {
        o.name: _tensor_info(o.name, "DT_INT64" if o.classes else "DT_FLOAT", o.shape)
        for o in outputs_of(signature)
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    SIGNATURE: {"inputs": inputs, "outputs": outputs, "method_name": METHOD}
                }
            }
        },
    }
