"""The OpenAPI document: valid, generated from the schemas, covering every API route."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from shared.spec.job import JobSpec


def _doc(client: FlaskClient) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json  # type: ignore[return-value]


def test_document_is_valid_openapi(client: FlaskClient) -> None:
    doc = _doc(client)
    validate(doc)  # raises on any violation of the OpenAPI 3.1 specification
    assert doc["openapi"].startswith("3.1")


def test_job_spec_schema_is_the_pydantic_one(client: FlaskClient) -> None:
    doc = _doc(client)
    schemas = doc["components"]["schemas"]
    generated = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["JobSpec"] == {k: v for k, v in generated.items() if k != "$defs"}
    assert set(generated["$defs"]) <= set(schemas)
    assert schemas["FitSpec"]["properties"]["epochs"]["minimum"] == 1


def test_every_api_route_is_documented(app: Flask, client: FlaskClient) -> None:
    paths = _doc(client)["paths"]
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:  # type: ignore[operator]
            assert method.lower() in paths.get(path, {}), f"{method} {path} is not documented"


def test_docs_page_is_served_without_a_cdn(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.get_data()
