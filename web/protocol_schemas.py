"""The answers of TF Serving's REST API and the Open Inference Protocol (KServe v2) as pydantic
models: what web.protocols sends and the OpenAPI document publishes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.protocols.tfserving import PredictBody
from shared.protocols.v2 import InferBody
from web.schemas import ProtocolError


class TFPredictResponse(BaseModel):
    """A row-form request's ``predictions`` (per instance) or a columnar one's ``outputs`` (per
    output tensor); the tensor's name is left out when the model answers only one."""

    predictions: Any = None
    outputs: Any = None


class TFStatusDetail(BaseModel):
    """A version's status code and message."""

    error_code: str
    error_message: str


class TFVersionStatus(BaseModel):
    """One version's state: AVAILABLE, a registered version being servable."""

    version: str
    state: str
    status: TFStatusDetail


class TFModelStatus(BaseModel):
    """GetModelStatusResponse: the versions asked for, or all of them."""

    model_version_status: list[TFVersionStatus]


class TFModelSpec(BaseModel):
    """Which model and version the metadata is of."""

    name: str
    signature_name: str
    version: str


class TFModelMetadata(BaseModel):
    """GetModelMetadataResponse: the ``serving_default`` signature's inputs and outputs."""

    model_spec: TFModelSpec
    metadata: dict[str, Any]


class V2Tensor(BaseModel):
    """An output tensor: its name, datatype (FP32, INT64), shape and data in row-major order."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class V2InferResponse(BaseModel):
    """An inference response: the model, its version, the request's id and the outputs."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[V2Tensor]


class V2TensorMetadata(BaseModel):
    """A tensor a model takes or answers: -1 is any size (the first, the batch)."""

    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    """A model's name, versions, platform and tensors."""

    name: str
    versions: list[str] = Field(default_factory=list)
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2ServerMetadata(BaseModel):
    """The server's name, version and the protocol extensions it takes."""

    name: str
    version: str
    extensions: list[str]


class V2Live(BaseModel):
    """Whether the server answers."""

    live: bool


class V2Ready(BaseModel):
    """Whether the server can serve (its database answers)."""

    ready: bool


class V2ModelReady(BaseModel):
    """Whether the model can answer."""

    name: str
    ready: bool


SCHEMAS: list[type[BaseModel]] = [
    ProtocolError, PredictBody, TFPredictResponse, TFModelStatus, TFModelMetadata, InferBody,
    V2InferResponse, V2ModelMetadata, V2ServerMetadata, V2Live, V2Ready, V2ModelReady,
]  # fmt: skip
REQUESTS: tuple[type[BaseModel], ...] = (PredictBody, InferBody)
