"""The model servers' protocols on trainq's registered models: TensorFlow Serving's REST API
(/v1/models/...) and the Open Inference Protocol, KServe v2 (/v2/...). The codecs live in
``shared.protocols``; errors here leave in those protocols' shape, ``{"error": "..."}``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from werkzeug.routing import BaseConverter

from shared.protocols import tfserving, v2
from web import model_serving
from web import protocol_schemas as schemas
from web.extensions import db
from web.responses import body

tf_bp = Blueprint("tfserving", __name__)
v2_bp = Blueprint("v2", __name__)


class ModelName(BaseConverter):
    """A model's name or alias in a path: no '/' and no ':' (GET /v1/models/m:predict is a 405,
    not the status of a model named "m:predict")."""

    regex = "[^/:]+"


def _converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("model", ModelName)


for _bp in (tf_bp, v2_bp):  # bound before the routes that use it are added
    _bp.record_once(_converter)
VERSION = "1"  # of this server, as /v2 tells it


def _tf_predict(name: str, version: int | None, alias: str | None) -> ResponseReturnValue:
    model = model_serving.resolve(name, version, alias)
    parsed = tfserving.parse_predict(model_serving.body()[0], model.served.signature)
    answer = tfserving.predict_answer(model_serving.predict(model, parsed.inputs), parsed.rows)
    return body(schemas.TFPredictResponse.model_validate(answer))


@tf_bp.post("/v1/models/<model:name>:predict")
def tf_predict(name: str) -> ResponseReturnValue:
    """Predict with the newest version: rows (``instances``) or columns (``inputs``)."""
    return _tf_predict(name, None, None)


@tf_bp.post("/v1/models/<model:name>/versions/<int:version>:predict")
def tf_predict_version(name: str, version: int) -> ResponseReturnValue:
    """Predict with a version."""
    return _tf_predict(name, version, None)


@tf_bp.post("/v1/models/<model:name>/labels/<model:alias>:predict")
def tf_predict_label(name: str, alias: str) -> ResponseReturnValue:
    """Predict with the version an alias (TF Serving's label) points at."""
    return _tf_predict(name, None, alias)


@tf_bp.get("/v1/models/<model:name>")
@tf_bp.get("/v1/models/<model:name>/versions/<int:version>")
@tf_bp.get("/v1/models/<model:name>/labels/<model:alias>")
def tf_status(name: str, version: int | None = None, alias: str | None = None) -> dict[str, Any]:
    """The model's status: every version AVAILABLE, or the one asked for."""
    if version is None and alias is None:
        versions = model_serving.versions(name)
    else:
        versions = [model_serving.resolve(name, version, alias).version]
    return body(schemas.TFModelStatus.model_validate(tfserving.status(versions)))


@tf_bp.get("/v1/models/<model:name>/metadata")
@tf_bp.get("/v1/models/<model:name>/versions/<int:version>/metadata")
@tf_bp.get("/v1/models/<model:name>/labels/<model:alias>/metadata")
def tf_metadata(name: str, version: int | None = None, alias: str | None = None) -> dict[str, Any]:
    """The model's signature, ``serving_default``: its inputs and outputs."""
    model = model_serving.resolve(name, version, alias)
    answer = tfserving.metadata(name, model.version, model.served.signature)
    return body(schemas.TFModelMetadata.model_validate(answer))


@v2_bp.get("/v2")
def server_metadata() -> dict[str, Any]:
    """The server's name, version and protocol extensions."""
    return body(schemas.V2ServerMetadata.model_validate(v2.server_metadata(VERSION)))


@v2_bp.get("/v2/health/live")
def live() -> dict[str, Any]:
    """The server answers."""
    return body(schemas.V2Live(live=True))


@v2_bp.get("/v2/health/ready")
def ready() -> ResponseReturnValue:
    """The server can serve: its database answers."""
    try:
        db().execute(text("SELECT 1"))
    except Exception:  # reported, not raised: this endpoint must answer
        return body(schemas.V2Ready(ready=False)), 503
    return body(schemas.V2Ready(ready=True))


@v2_bp.get("/v2/models/<model:name>")
@v2_bp.get("/v2/models/<model:name>/versions/<int:version>")
def model_metadata(name: str, version: int | None = None) -> dict[str, Any]:
    """A model's name, versions, platform and tensors."""
    model = model_serving.resolve(name, version)
    versions = model_serving.versions(name) if version is None else [model.version]
    answer = v2.model_metadata(name, versions, model.served.signature)
    return body(schemas.V2ModelMetadata.model_validate(answer))


@v2_bp.get("/v2/models/<model:name>/ready")
@v2_bp.get("/v2/models/<model:name>/versions/<int:version>/ready")
def model_ready(name: str, version: int | None = None) -> dict[str, Any]:
    """200 once the model is loaded and can answer; 404 for a model the caller does not have."""
    model_serving.resolve(name, version)
    return body(schemas.V2ModelReady(name=name, ready=True))


@v2_bp.post("/v2/models/<model:name>/infer")
@v2_bp.post("/v2/models/<model:name>/versions/<int:version>/infer")
def infer(name: str, version: int | None = None) -> dict[str, Any]:
    """Typed tensors in, typed tensors out (JSON, or inputs in the binary extension)."""
    model = model_serving.resolve(name, version)
    raw, binary = model_serving.body()
    parsed = v2.parse_infer(raw, model.served.signature, binary)
    heads = model_serving.predict(model, parsed.inputs)
    return body(
        schemas.V2InferResponse.model_validate(v2.infer_answer(name, model.version, parsed, heads))
    )
