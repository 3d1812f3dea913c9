"""TF Serving's REST API and the Open Inference Protocol in the OpenAPI document (web.openapi
joins them in): their routes, bodies and answers, errors in their shape ``{"error": "..."}``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.protocols.tfserving import PredictBody
from shared.protocols.v2 import InferBody
from shared.registry.names import RULE
from web.protocol_schemas import (
    TFModelMetadata,
    TFModelStatus,
    TFPredictResponse,
    V2InferResponse,
    V2Live,
    V2ModelMetadata,
    V2ModelReady,
    V2Ready,
    V2ServerMetadata,
)
from web.schemas import ProtocolError

Json = Callable[[Any, str], dict[str, Any]]
_NAME = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
NAME = {"name": "name", "in": "path", "required": True, "description": f"the model's name: {RULE}",
        "schema": {"type": "string", "pattern": _NAME}}  # fmt: skip
VERSION = {"name": "version", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}  # fmt: skip
ALIAS = {"name": "alias", "in": "path", "required": True, "description": f"an alias: {RULE}",
         "schema": {"type": "string", "pattern": _NAME}}  # fmt: skip
_OPEN: list[dict[str, Any]] = []  # no token needed


def _errors(json: Json, *statuses: int) -> dict[str, Any]:
    return {str(s): json(ProtocolError, "an error, in the protocol's shape") for s in statuses}


def paths(ref: Callable[[Any], dict[str, Any]], json: Json) -> dict[str, Any]:
    """The protocols' routes."""
    errors = _errors(json, 400, 401, 404)

    def get(summary: str, op: str, params: list[Any], answer: Any, says: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "operationId": op, "parameters": params,
                        "responses": {"200": json(answer, says), **errors}}}  # fmt: skip

    def post(summary: str, says: str, op: str, params: list[Any], body: Any, answer: Any) -> Any:
        request = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
        responses = {"200": json(answer, "the answer"), **errors, **_errors(json, 413)}
        return {"post": {"summary": summary, "description": says, "operationId": op,
                         "parameters": params, "requestBody": request,
                         "responses": responses}}  # fmt: skip

    tf, v2 = "/v1/models/{name}", "/v2/models/{name}"
    out: dict[str, Any] = {}
    for path, params, which in [
        (tf, [NAME], ""),
        (f"{tf}/versions/{{version}}", [NAME, VERSION], " a version"),
        (f"{tf}/labels/{{alias}}", [NAME, ALIAS], " the version a label (alias) points at"),
    ]:
        key = "".join(str(p["name"]).title() for p in params[1:])
        out[f"{path}:predict"] = post(
            f"TF Serving predict with{which or ' the newest version'}",
            "Rows (`instances`) or columns (`inputs`), as TensorFlow Serving takes them, whatever "
            "the Content-Type; raw values, the job's scale applied.",
            f"tfPredict{key}", params, PredictBody, TFPredictResponse,
        )  # fmt: skip
        out[path] = get(f"TF Serving model status{which}", f"tfStatus{key}", params,
                        TFModelStatus, "the versions' state")  # fmt: skip
        out[f"{path}/metadata"] = get(f"TF Serving model metadata{which}", f"tfMetadata{key}",
                                      params, TFModelMetadata, "the signature")  # fmt: skip
    for path, params, key in [
        (v2, [NAME], ""),
        (f"{v2}/versions/{{version}}", [NAME, VERSION], "Version"),
    ]:
        out[f"{path}/infer"] = post(
            "Open Inference Protocol inference: typed tensors in and out",
            "JSON, or with the binary tensor data extension: the JSON's length in "
            "`Inference-Header-Content-Length`, the inputs' bytes after it.",
            f"v2Infer{key}", params, InferBody, V2InferResponse,
        )  # fmt: skip
        out[path] = get("Open Inference Protocol model metadata", f"v2Model{key}", params,
                        V2ModelMetadata, "the model")  # fmt: skip
        out[f"{path}/ready"] = get("Open Inference Protocol model readiness", f"v2ModelReady{key}",
                                   params, V2ModelReady, "ready")  # fmt: skip
    for path, summary, op, answers in [
        ("/v2", "server metadata", "v2Server", {"200": json(V2ServerMetadata, "the server")}),
        ("/v2/health/live", "liveness", "v2Live", {"200": json(V2Live, "live")}),
        ("/v2/health/ready", "readiness (the database answers)", "v2Ready",
         {"200": json(V2Ready, "ready"), "503": json(V2Ready, "not ready")}),
    ]:  # fmt: skip
        out[path] = {"get": {"summary": f"Open Inference Protocol {summary}", "operationId": op,
                             "security": _OPEN, "responses": answers}}  # fmt: skip
    return out
