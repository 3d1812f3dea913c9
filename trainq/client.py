"""A small Python client for the trainq HTTP API."""

from __future__ import annotations

import builtins
import datetime
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from trainq import parts, sse
from trainq.batch_api import BatchPredictions
from trainq.errors import (
    ApiError,
    BadRequest,
    Conflict,
    DatasetUnavailable,
    InternalError,
    InvalidInput,
    InvalidSpec,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from trainq.registry import ModelRegistry
from trainq.webhook_api import Webhooks

DEFAULT_URL = "http://127.0.0.1:8000"
# A job's final statuses (pruned: a sweep's pruner stopped the trial; its model is kept).
FINISHED = ("succeeded", "failed", "cancelled", "pruned")
# A stream refused because the server has as many open as it keeps: when to try again at most.
MAX_BUSY_WAIT = 30.0
# Files above this go up in parts (trainq.parts), resumable; smaller ones in one request.
PARTS_ABOVE = 32 * 1024 * 1024

__all__ = [
    "DEFAULT_URL", "FINISHED", "ApiError", "BadRequest", "Client", "Conflict",
    "DatasetUnavailable", "InternalError", "InvalidInput", "InvalidSpec", "MethodNotAllowed",
    "NotFound", "PayloadTooLarge", "QuotaExceeded", "RateLimited", "TooManyRequests",
    "Unauthorized", "Unavailable", "default_token", "is_final",
]  # fmt: skip


def is_final(event: dict[str, Any]) -> bool:
    """True for the event that ends a job's stream."""
    return event.get("type") == "status" and event.get("status") in FINISHED


def _is_sweep_end(event: dict[str, Any]) -> bool:
    """True for the event that ends a sweep's stream (a trial's final status does not)."""
    return event.get("type") == "sweep"


def _job_event(event: sse.Event) -> dict[str, Any]:
    """A job's event as the API sends it (JSON data), with its type and id; a sweep's last
    event (type ``sweep``) as ``{"type", "id", "sweep": <the sweep's summary>}``."""
    data: dict[str, Any] = json.loads(event.data)
    body: dict[str, Any] = {"type": "sweep", "sweep": data} if event.type == "sweep" else data
    body.setdefault("type", event.type)
    if event.id is not None:
        body["id"] = int(event.id)
    return body


def default_token(var_dir: str | os.PathLike[str] | None = None) -> str | None:
    """TRAINQ_TOKEN, else the token the local launcher saved in var/token."""
    token = os.environ.get("TRAINQ_TOKEN")
    if token:
        return token
    path = Path(var_dir or os.environ.get("TRAINQ_VAR_DIR") or "var") / "token"
    return path.read_text().strip() if path.is_file() else None


class Client(ModelRegistry, Webhooks, BatchPredictions):
    """Talks to one trainq server as one user."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60):
        self.url = (url or os.environ.get("TRAINQ_URL") or DEFAULT_URL).rstrip("/")
        self.token = token or default_token()
        self.timeout = timeout
        self.http = requests.Session()
        if self.token:
            self.http.headers["Authorization"] = f"Bearer {self.token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        response = self.http.request(method, self.url + path, **kwargs)
        if response.status_code >= 400:
            try:
                err = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                err = {"code": "http_error", "message": response.text[:500], "details": {}}
            raise ApiError.of(
                response.status_code, err["code"], err["message"], err["details"],
                response.headers.get("Retry-After"),
            )  # fmt: skip
        return response

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Submit a job spec; returns the queued job."""
        return self._call("POST", "/api/v1/jobs", json=spec).json()

    def check(self, spec: dict[str, Any]) -> None:
        """Check a spec as submit would, without its data (POST /api/v1/jobs/check; ``dataset``
        may be left out): returns, or raises what submit would (InvalidSpec...)."""
        self._call("POST", "/api/v1/jobs/check", json=spec)

    def get(self, job_id: str) -> dict[str, Any]:
        """A job with its progress and per-epoch history."""
        return self._call("GET", f"/api/v1/jobs/{job_id}").json()

    def list(
        self,
        page: int = 1,
        per_page: int = 20,
        status: str | None = None,
        name: str | None = None,
        created_after: str | datetime.date | None = None,
        created_before: str | datetime.date | None = None,
    ) -> dict[str, Any]:
        """One page of the caller's jobs, newest first; by status, a part of the name (any
        case), and when created (a date, or a date and time: UTC; a ``datetime`` with a zone
        is turned to UTC)."""
        params: dict[str, Any] = {"page": page, "per_page": per_page}
        when = {"created_after": created_after, "created_before": created_before}
        for key, value in {"status": status, "name": name, **when}.items():
            if isinstance(value, datetime.datetime) and value.tzinfo is not None:
                value = value.astimezone(datetime.UTC).replace(tzinfo=None)
            if isinstance(value, datetime.date):
                value = value.isoformat()
            if value:
                params[key] = value
        return self._call("GET", "/api/v1/jobs", params=params).json()

    def wait(self, job_id: str, poll: float = 1.0, timeout: float | None = None) -> dict[str, Any]:
        """Poll until the job has finished; returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["status"] in FINISHED:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s")
            time.sleep(poll)

    def compare(self, *job_ids: str) -> dict[str, Any]:
        """Jobs side by side: their specs' paths (``differs`` on the ones that differ), each
        recorded metric's final and best value and curve (``GET /api/v1/compare``)."""
        return self._call("GET", "/api/v1/compare", params={"jobs": ",".join(job_ids)}).json()

    def rerun(self, job_id: str) -> dict[str, Any]:
        """Submit a job's work again (POST /api/v1/jobs/{id}/rerun): its spec, the seed it
        trained with, the same data by its SHA-256; returns the new, queued job."""
        return self._call("POST", f"/api/v1/jobs/{job_id}/rerun").json()

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job (POST /api/v1/jobs/{id}/cancel): queued at once, running after a batch."""
        return self._call("POST", f"/api/v1/jobs/{job_id}/cancel").json()

    def follow(
        self, job_id: str, last_event_id: int = 0, retry: float = 2.0
    ) -> Iterator[dict[str, Any]]:
        """The job's events as they happen (status changes, finished epochs) until it ends.

        A dropped connection is resumed from the last event received (``Last-Event-ID``),
        so no event is missed or repeated; a stream the server has no room for yet (503
        unavailable), or that is over the caller's share of its streams (429 rate_limited), is
        asked for again when it says (at most MAX_BUSY_WAIT seconds later).
        """

        def ended(last: int) -> builtins.list[dict[str, Any]] | None:
            return [] if self.get(job_id)["status"] in FINISHED else None

        path = f"/api/v1/jobs/{job_id}/events"
        return self._follow(path, last_event_id, retry, is_final, ended)

    def _follow(
        self,
        path: str,
        last_event_id: int,
        retry: float,
        final: Callable[[dict[str, Any]], bool],
        ended: Callable[[int], builtins.list[dict[str, Any]] | None],
    ) -> Iterator[dict[str, Any]]:
        """An event stream's events until its ``final`` one, resumed after drops and busy answers;
        ``ended(last id)``, asked when the server closes without a final event: the events that
        end it if what it streams has ended (then over), else None (asked for again)."""
        while True:
            headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last_event_id)}
            try:
                # The server sends a keep-alive comment every 15 s: a silent minute is a dead link.
                response = self._call("GET", path, headers=headers, stream=True, timeout=(10, 60))
                with response:
                    for event in sse.parse(response.iter_content(chunk_size=512)):
                        job_event = _job_event(event)
                        last_event_id = job_event.get("id", last_event_id)
                        yield job_event
                        if final(job_event):
                            return
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ):
                time.sleep(retry)
                continue
            except (Unavailable, RateLimited) as busy:  # no room on the server, or in the
                # caller's share of its streams (their other streams hold it): wait, ask again
                wait = retry if busy.retry_after is None else busy.retry_after
                time.sleep(min(wait, MAX_BUSY_WAIT))
                continue
            # The server closed the stream without a final event: over if the thing has ended.
            last = ended(last_event_id)
            if last is not None:
                yield from last
                return
            time.sleep(retry)

    def submit_sweep(self, body: dict[str, Any]) -> dict[str, Any]:
        """Submit a sweep (POST /api/v1/sweeps: base spec, space, objective...); returns it."""
        return self._call("POST", "/api/v1/sweeps", json=body).json()

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        """A sweep with its best trial so far and every trial tried (``tried``)."""
        return self._call("GET", f"/api/v1/sweeps/{sweep_id}").json()

    def list_sweeps(self) -> dict[str, Any]:
        """The caller's sweeps, newest first (``{"sweeps": [...]}``)."""
        return self._call("GET", "/api/v1/sweeps").json()

    def cancel_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Stop a sweep: no more trials, queued ones cancelled, running ones after a batch."""
        return self._call("POST", f"/api/v1/sweeps/{sweep_id}/cancel").json()

    def follow_sweep(
        self, sweep_id: str, last_event_id: int = 0, retry: float = 2.0
    ) -> Iterator[dict[str, Any]]:
        """Every trial's events (each with its ``trial`` and ``job_id``) until the sweep ends,
        then one ``{"type": "sweep", "id", "sweep": <summary>}``; resumed as ``follow`` is."""

        def ended(last: int) -> builtins.list[dict[str, Any]] | None:
            sweep = self.get_sweep(sweep_id)
            return None if sweep["status"] == "running" else [
                {"type": "sweep", "id": last, "sweep": sweep}
            ]  # fmt: skip

        path = f"/api/v1/sweeps/{sweep_id}/events"
        return self._follow(path, last_event_id, retry, _is_sweep_end, ended)

    def predict(self, job_id: str, instances: builtins.list[Any]) -> builtins.list[dict[str, Any]]:
        """Logits, probabilities and class for each raw instance."""
        body = {"instances": instances}
        result = self._call("POST", f"/api/v1/jobs/{job_id}/predict", json=body).json()
        return result["predictions"]

    def download_model(self, job_id: str, path: str | Path, fmt: str = "keras") -> Path:
        """Save the trained model (.keras or .h5) to path."""
        response = self._call(
            "GET", f"/api/v1/jobs/{job_id}/model", params={"format": fmt}, stream=True
        )
        path = Path(path)
        with path.open("wb") as f:
            for chunk in response.iter_content(1 << 16):
                f.write(chunk)
        return path

    def upload_dataset(
        self,
        path: str | Path,
        name: str | None = None,
        *,
        progress: bool = False,
        part_bytes: int | None = None,
        resume: str | None = None,
    ) -> dict[str, Any]:
        """Upload a .npz dataset; returns its record. A file over ``PARTS_ABOVE`` bytes (or
        any, with ``resume``: the id of an interrupted upload) goes in parts, each sent again
        after a dropped connection, with a progress bar if ``progress``; a smaller one in one
        request (POST /api/v1/datasets, multipart)."""
        path = Path(path)
        if resume is not None or path.stat().st_size > PARTS_ABOVE:
            return parts.upload(self._call, path, name or path.name, part_bytes=part_bytes,
                                resume=resume, progress=progress)  # fmt: skip
        with path.open("rb") as f:
            files = {"file": (path.name, f, "application/octet-stream")}
            data = {"name": name} if name else None
            return self._call("POST", "/api/v1/datasets", files=files, data=data).json()

    def list_datasets(self) -> dict[str, Any]:
        """The datasets the caller can use (GET /api/v1/datasets)."""
        return self._call("GET", "/api/v1/datasets").json()

    def find_dataset(self, sha256: str) -> dict[str, Any] | None:
        """The caller's newest dataset whose file has this SHA-256, if there is one."""
        found = self._call("GET", "/api/v1/datasets", params={"sha256": sha256}).json()
        return found["datasets"][0] if found["datasets"] else None

    def health(self) -> dict[str, Any]:
        """The server's health report."""
        return self.http.get(self.url + "/healthz", timeout=self.timeout).json()
