"""The model registry's part of the OpenAPI document (web.openapi joins it in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.registry.names import RULE
from web.registry_schemas import (
    MAX_VERSION,
    ModelAlias,
    ModelList,
    ModelVersion,
    MoveAlias,
    RegisteredModelDetail,
    RegisterVersion,
)

_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
NAME = {"name": "name", "in": "path", "required": True, "description": f"the model's name: {RULE}",
        "schema": {"type": "string", "pattern": _PATTERN}}  # fmt: skip
VERSION = {"name": "version", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION}}  # fmt: skip
# An alias that reads as a version (all digits, or "latest" in any case) is refused.
_VERSION_LIKE = {"anyOf": [{"pattern": "^[0-9]+$"}, {"pattern": "^[Ll][Aa][Tt][Ee][Ss][Tt]$"}]}
ALIAS = {"name": "alias", "in": "path", "required": True,
         "description": f"{RULE}; not a number, not 'latest'",
         "schema": {"type": "string", "pattern": _PATTERN, "not": _VERSION_LIKE}}  # fmt: skip
DELETED = {"204": {"description": "deleted"}}


def paths(
    ref: Callable[[Any], dict[str, Any]],
    json: Callable[[Any, str], dict[str, Any]],
    errors: Callable[..., dict[str, Any]],
    predict: dict[str, Any],
) -> dict[str, Any]:
    """The registry's routes; ``predict`` is the job predict's operation, which the predict
    routes by name answer as."""

    def body(model: Any) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": ref(model)}}}

    def predicting(op: str, summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
        return {"post": {**predict, "summary": summary, "operationId": op, "parameters": params}}

    base = "/api/v1/models/{name}"
    return {
        "/api/v1/models": {"get": {
            "summary": "Your registered models, by name: versions, the latest, aliases",
            "operationId": "listModels",
            "responses": {"200": json(ModelList, "your models"), **errors(401)},
        }},
        base: {
            "get": {"summary": "A registered model: its versions and aliases",
                    "operationId": "getModel", "parameters": [NAME],
                    "responses": {"200": json(RegisteredModelDetail, "the model"),
                                  **errors(401, 404, 422)}},
            "delete": {"summary": "Delete a model with its versions and aliases (jobs stay)",
                       "operationId": "deleteModel", "parameters": [NAME],
                       "responses": {**DELETED, **errors(401, 404, 422)}},
        },
        f"{base}/versions": {"post": {
            "summary": "Register a succeeded job's model as the next version (the model is "
                       "made on its first)",
            "operationId": "registerModelVersion", "parameters": [NAME],
            "requestBody": body(RegisterVersion),
            "responses": {"201": json(ModelVersion, "the new version"),
                          **errors(400, 401, 404, 409, 413, 422)},
        }},
        f"{base}/versions/{{version}}": {
            "get": {"summary": "One version: its job, final metrics and aliases",
                    "operationId": "getModelVersion", "parameters": [NAME, VERSION],
                    "responses": {"200": json(ModelVersion, "the version"),
                                  **errors(401, 404, 422)}},
            "delete": {"summary": "Delete a version no alias points at",
                       "operationId": "deleteModelVersion", "parameters": [NAME, VERSION],
                       "responses": {**DELETED, **errors(401, 404, 409, 422)}},
        },
        f"{base}/aliases/{{alias}}": {
            "put": {"summary": "Point an alias at a version: made, or moved in one step",
                    "operationId": "setModelAlias", "parameters": [NAME, ALIAS],
                    "requestBody": body(MoveAlias),
                    "responses": {"200": json(ModelAlias, "the alias"),
                                  **errors(400, 401, 404, 413, 422)}},
            "delete": {"summary": "Remove an alias (its version stays)",
                       "operationId": "deleteModelAlias", "parameters": [NAME, ALIAS],
                       "responses": {**DELETED, **errors(401, 404, 422)}},
        },
        f"{base}/predict": predicting(
            "predictModel", "Predict with the model's latest version", [NAME]),
        f"{base}/versions/{{version}}/predict": predicting(
            "predictModelVersion", "Predict with one version of the model", [NAME, VERSION]),
        f"{base}/aliases/{{alias}}/predict": predicting(
            "predictModelAlias", "Predict with the version the alias points at now",
            [NAME, ALIAS]),
    }  # fmt: skip
