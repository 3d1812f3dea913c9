"""The Open Inference Protocol (KServe v2) over REST: typed tensors in, typed tensors out, model
metadata, readiness and server health; with its binary tensor data extension for the inputs,
which the ``kserve`` client sends by default."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import InvalidInput
from shared.ml.serving import Head, Signature
from shared.protocols.tensors import arrays_of, outputs_of

# The numeric datatypes of the protocol, as little-endian numpy types (the byte order of its
# binary extension). BYTES (strings) has no meaning for these models.
DATATYPES: dict[str, str] = {
    "BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip
PLATFORM = "keras"
HEADER_LENGTH = "Inference-Header-Content-Length"
Parameters = dict[str, Any]


class InferInput(BaseModel):
    """One input tensor: its name, shape, datatype, and its data in row-major order (or as a
    ``binary_data_size`` parameter, its bytes after the JSON)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)
    shape: list[int] = Field(min_length=1, max_length=16)
    datatype: str = Field(max_length=16)
    parameters: Parameters | None = None
    data: Any = None


class RequestedOutput(BaseModel):
    """An output tensor the answer should hold (by name)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)
    parameters: Parameters | None = None


class InferBody(BaseModel):
    """An inference request: its inputs, and optionally an id, parameters and the outputs wanted."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, max_length=256)
    model_name: str | None = Field(default=None, max_length=256)  # the kserve client sends it
    parameters: Parameters | None = None
    inputs: list[InferInput] = Field(min_length=1, max_length=64)
    outputs: list[RequestedOutput] | None = Field(default=None, max_length=256)


@dataclass(frozen=True)
class InferRequest:
    """An inference request as the model's inputs by name, with its id and the outputs wanted."""

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[str] | None


def _tensor(tensor: InferInput, binary: memoryview, offset: int) -> tuple[np.ndarray, int]:
    """The tensor's array, and where the next binary input starts."""
    dtype = DATATYPES.get(tensor.datatype)
    field = f"inputs.{tensor.name}"
    if dtype is None:
        raise InvalidInput(
            f"input {tensor.name!r}: datatype {tensor.datatype!r} is not one of "
            f"{', '.join(DATATYPES)}", details={"field": f"{field}.datatype"},
        )  # fmt: skip
    if any(d < 0 for d in tensor.shape):
        raise InvalidInput(f"input {tensor.name!r}: shape {tensor.shape} has a negative size",
                           details={"field": f"{field}.shape"})  # fmt: skip
    size = math.prod(tensor.shape)
    nbytes = (tensor.parameters or {}).get("binary_data_size")
    try:
        if tensor.data is not None:
            array = np.asarray(tensor.data, dtype=dtype).reshape(-1)
        elif isinstance(nbytes, int) and 0 <= nbytes <= len(binary) - offset:
            array = np.frombuffer(binary[offset : offset + nbytes], dtype=dtype)
            offset += nbytes
        else:
            raise InvalidInput(
                f"input {tensor.name!r} has neither data nor binary_data_size within the body",
                details={"field": f"{field}.data"},
            )
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"input {tensor.name!r}: its data is not {tensor.datatype}: {exc}",
                           details={"field": f"{field}.data"}) from exc  # fmt: skip
    if array.size != size:
        raise InvalidInput(
            f"input {tensor.name!r}: shape {tensor.shape} holds {size} values; got {array.size}",
            details={"field": f"{field}.data"},
        )
    return array.reshape(tensor.shape), offset


def parse_infer(body: Any, signature: Signature, binary: bytes = b"") -> InferRequest:
    """An inference request read against the model's signature; ``binary``: the bytes after the
    JSON (the binary extension). InvalidInput says what is wrong."""
    try:
        parsed = InferBody.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"]))
        raise InvalidInput(f"{where}: {first['msg']}", details={"field": where}) from exc
    names = [t.name for t in signature.inputs]
    sent = [t.name for t in parsed.inputs]
    if len(set(sent)) != len(sent):
        raise InvalidInput("an input is given twice", details={"field": "inputs"})
    if len(names) == 1 and len(sent) == 1:
        sent = names  # one input: whatever the client calls it
    elif set(sent) != set(names):
        raise InvalidInput(f"the model's inputs are {names}; got {sorted(sent)}",
                           details={"field": "inputs", "inputs": names})  # fmt: skip
    inputs, offset, view = {}, 0, memoryview(binary)
    for name, tensor in zip(sent, parsed.inputs, strict=True):
        inputs[name], offset = _tensor(tensor, view, offset)
    wanted = None if parsed.outputs is None else [o.name for o in parsed.outputs]
    known = {o.name for o in outputs_of(signature)}
    unknown = sorted(set(wanted or ()) - known)
    if unknown:
        raise InvalidInput(f"unknown outputs {unknown}; the model answers {sorted(known)}",
                           details={"field": "outputs"})  # fmt: skip
    return InferRequest(parsed.id, inputs, wanted)


def infer_answer(
    name: str, version: int, request: InferRequest, heads: list[Head]
) -> dict[str, Any]:
    """The inference response: every output tensor (or those asked for), typed, row-major."""
    arrays = arrays_of(heads)
    wanted = request.outputs if request.outputs is not None else list(arrays)
    answer: dict[str, Any] = {"model_name": name, "model_version": str(version)}
    if request.id is not None:
        answer["id"] = request.id
    answer["outputs"] = [
        {
            "name": out,
            "datatype": "INT64" if arrays[out].dtype.kind in "iu" else "FP32",
            "shape": list(arrays[out].shape),
            "data": arrays[out].reshape(-1).tolist(),
        }
        for out in wanted
    ]
    return answer


def _shape(shape: tuple[int | None, ...]) -> list[int]:
    return [-1 if d is None else d for d in (None, *shape)]


def model_metadata(name: str, versions: list[int], signature: Signature) -> dict[str, Any]:
    """A model's metadata: its name, versions, platform and its tensors (-1: any size)."""
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": PLATFORM,
        "inputs": [
            {"name": t.name, "datatype": "FP32", "shape": _shape(t.shape)} for t in signature.inputs
        ],
        "outputs": [
            {"name": o.name, "datatype": "INT64" if o.classes else "FP32", "shape": _shape(o.shape)}
            for o in outputs_of(signature)
        ],
    }


def server_metadata(version: str) -> dict[str, Any]:
    """The server's metadata: its name, version and the protocol extensions it takes."""
    return {"name": "trainq", "version": version, "extensions": ["binary_tensor_data"]}
