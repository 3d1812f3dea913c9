"""Reading a job's server-sent event stream, resuming with Last-Event-ID after a drop."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from trainq.client import Client

# A stream refused because the server has as many open as it keeps: when to try again at most.
MAX_BUSY_WAIT = 30.0

FINISHED = ("succeeded", "failed", "cancelled")


def parse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Events of a text/event-stream body (comments and retry lines are skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            continue
        if line:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[key] = fields[key] + "\n" + value if key == "data" and key in fields else value
            continue
        if "data" in fields:
            event = json.loads(fields["data"])
            event.setdefault("type", fields.get("event", "message"))
            if "id" in fields:
                event["id"] = int(fields["id"])
            yield event
        fields = {}


def is_final(event: dict[str, Any]) -> bool:
    """True for the event that ends a job's stream."""
    return event.get("type") == "status" and event.get("status") in FINISHED


def follow_events(
    client: Client, job_id: str, last_event_id: int = 0, retry: float = 2.0
) -> Iterator[dict[str, Any]]:
    """A job's events until it ends; dropped connections resume after the last event seen, and a
    stream the server has no room for (503) is asked for again when it says."""
    from trainq.client import Unavailable

    url = f"{client.url}/api/v1/jobs/{job_id}/events"
    while True:
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last_event_id)}
        try:
            # The server sends a keep-alive comment every 15 s, so a silent minute is a dead link.
            response = client._call("GET", url.removeprefix(client.url), headers=headers,
                                    stream=True, timeout=(10, 60))  # fmt: skip
            with response:
                for event in parse(response.iter_lines(decode_unicode=True)):
                    last_event_id = event.get("id", last_event_id)
                    yield event
                    if is_final(event):
                        return
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ):
            time.sleep(retry)
            continue
        except Unavailable as busy:
            time.sleep(min(float(busy.details.get("retry_after", retry)), MAX_BUSY_WAIT))
            continue
        # The server closed the stream without a final event: over if the job has ended.
        if client.get(job_id)["status"] in FINISHED:
            return
        time.sleep(retry)
