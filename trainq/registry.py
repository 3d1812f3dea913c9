"""The SDK's model registry: register a job's model as a version, move aliases, list, delete,
and predict by a model's name (``Client`` has these methods)."""

from __future__ import annotations

import builtins
from typing import Any
from urllib.parse import quote

import requests


def _path(name: str, *more: str | int) -> str:
    return "/api/v1/models/" + "/".join(quote(str(p), safe="") for p in (name, *more))


def _target(version: int | None, alias: str | None) -> tuple[str | int, ...]:
    if version is not None and alias is not None:
        raise ValueError("give a version or an alias, not both")
    if version is not None:
        return ("versions", version)
    return ("aliases", alias) if alias is not None else ()


class ModelRegistry:
    """The registry's calls, mixed into ``trainq.Client``."""

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        raise NotImplementedError  # the Client's

    def models(self) -> builtins.list[dict[str, Any]]:
        """Your registered models by name: versions, latest version, aliases."""
        return self._call("GET", "/api/v1/models").json()["models"]

    def model(self, name: str) -> dict[str, Any]:
        """A registered model: every version and its aliases."""
        return self._call("GET", _path(name)).json()

    def model_version(self, name: str, version: int) -> dict[str, Any]:
        """One version: its job, final metrics and aliases."""
        return self._call("GET", _path(name, "versions", version)).json()

    def register_model(self, name: str, job_id: str) -> dict[str, Any]:
        """Register a succeeded job's model as the model's next version (made on its first)."""
        body = {"job_id": job_id}
        return self._call("POST", _path(name, "versions"), json=body).json()

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """Point an alias at a version (made, or moved in one step)."""
        body = {"version": version}
        return self._call("PUT", _path(name, "aliases", alias), json=body).json()

    def delete_model(self, name: str, version: int | None = None, alias: str | None = None) -> None:
        """Delete a model (with its versions and aliases), one version, or one alias."""
        more = _target(version, alias)
        self._call("DELETE", _path(name, *more))

    def predict_model(
        self,
        name: str,
        instances: builtins.list[Any],
        version: int | None = None,
        alias: str | None = None,
    ) -> dict[str, Any]:
        """Predict by name: the latest version, a version or an alias's; the answer with the
        version's ``job_id`` and its ``predictions``."""
        more = _target(version, alias)
        body = {"instances": instances}
        return self._call("POST", _path(name, *more, "predict"), json=body).json()
