"""The SDK's batch predictions: predict every row of a dataset with a model as a queued job,
follow it, download its result, cancel, delete (``Client`` has these methods)."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

BASE = "/api/v1/batch-predictions"
ENDED = ("succeeded", "failed", "cancelled")


def _path(*parts: str) -> str:
    return "/".join([BASE, *(quote(p, safe="") for p in parts)])


class BatchPredictions:
    """The batch predictions' calls, mixed into ``trainq.Client``."""

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        raise NotImplementedError  # the Client's

    def _follow(
        self,
        path: str,
        last_event_id: int,
        retry: float,
        final: Callable[[dict[str, Any]], bool],
        ended: Callable[[int], builtins.list[dict[str, Any]] | None],
    ) -> Iterator[dict[str, Any]]:
        raise NotImplementedError  # the Client's

    def batch_predict(
        self,
        dataset: str | None = None,
        *,
        dataset_id: str | None = None,
        job_id: str | None = None,
        model: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        split: str | None = None,
        chunk_rows: int | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Queue a batch prediction: the model of ``job_id``, or the registered ``model``
        (its ``version`` or ``alias``, else the latest), over a built-in ``dataset`` by name or
        an uploaded one (``dataset_id``), one ``split`` (``"train"``, ``"test"``) or all."""
        if (dataset is None) == (dataset_id is None):
            raise ValueError("give either dataset (a built-in one's name) or dataset_id")
        body: dict[str, Any] = {
            "dataset": {"name": dataset} if dataset is not None else {"id": dataset_id}
        }
        given = {"job_id": job_id, "model": model, "version": version, "alias": alias,
                 "split": split, "chunk_rows": chunk_rows, "name": name}  # fmt: skip
        body |= {k: v for k, v in given.items() if v is not None}
        return self._call("POST", BASE, json=body).json()

    def batch_prediction(self, batch_id: str) -> dict[str, Any]:
        """A batch prediction: status, chunks done of all, the first bad rows."""
        return self._call("GET", _path(batch_id)).json()

    def batch_predictions(self) -> builtins.list[dict[str, Any]]:
        """Your newest batch predictions."""
        return self._call("GET", BASE).json()["batch_predictions"]

    def follow_batch_prediction(
        self, batch_id: str, last_event_id: int = 0, retry: float = 2.0
    ) -> Iterator[dict[str, Any]]:
        """Its events as they happen (status changes, a ``chunk`` event per finished chunk)
        until it ends; resumed after a dropped connection as ``follow`` is."""

        def final(event: dict[str, Any]) -> bool:
            return event.get("type") == "status" and event.get("status") in ENDED

        def ended(last: int) -> builtins.list[dict[str, Any]] | None:
            return [] if self.batch_prediction(batch_id)["status"] in ENDED else None

        return self._follow(_path(batch_id, "events"), last_event_id, retry, final, ended)

    def download_batch_result(self, batch_id: str, path: str | Path) -> Path:
        """Save a succeeded batch prediction's ``.npz`` (row i for input row i) to ``path``."""
        response = self._call("GET", _path(batch_id, "result"), stream=True)
        path = Path(path)
        tmp = path.with_name(f".{path.name}.part")
        with tmp.open("wb") as f:
            for chunk in response.iter_content(1 << 16):
                f.write(chunk)
        tmp.replace(path)
        return path

    def cancel_batch_prediction(self, batch_id: str) -> dict[str, Any]:
        """Cancel it: a queued one at once, a running one after its current chunk."""
        return self._call("POST", _path(batch_id, "cancel")).json()

    def delete_batch_prediction(self, batch_id: str) -> None:
        """Delete a finished batch prediction and its result."""
        self._call("DELETE", _path(batch_id))
