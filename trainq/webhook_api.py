"""The SDK's webhooks: register a URL for your jobs' and sweeps' state changes, list, delete,
the delivery log, a test ping, a redelivery (``Client`` has these methods)."""

from __future__ import annotations

import builtins
from typing import Any
from urllib.parse import quote

import requests


def _path(*parts: str) -> str:
    return "/".join(["/api/v1/webhooks", *(quote(p, safe="") for p in parts)])


class Webhooks:
    """The webhooks' calls, mixed into ``trainq.Client``."""

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        raise NotImplementedError  # the Client's

    def add_webhook(
        self, url: str, events: builtins.list[str] | None = None, description: str = ""
    ) -> dict[str, Any]:
        """Register a webhook; the answer's ``secret`` (``whsec_...``) is shown this once."""
        body: dict[str, Any] = {"url": url, "description": description}
        if events:
            body["events"] = events
        return self._call("POST", _path(), json=body).json()

    def webhooks(self) -> builtins.list[dict[str, Any]]:
        """Your webhooks, oldest first."""
        return self._call("GET", _path()).json()["webhooks"]

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook and its delivery log."""
        self._call("DELETE", _path(webhook_id))

    def webhook_deliveries(self, webhook_id: str) -> builtins.list[dict[str, Any]]:
        """A webhook's delivery log, newest first: each event, its status, attempts, error."""
        response = self._call("GET", _path(webhook_id, "deliveries"))
        return response.json()["deliveries"]

    def ping_webhook(self, webhook_id: str) -> dict[str, Any]:
        """Send the webhook a test event (``webhook.ping``); its delivery, pending."""
        return self._call("POST", _path(webhook_id, "ping")).json()

    def redeliver(self, webhook_id: str, delivery_id: str) -> dict[str, Any]:
        """Send a delivery's event again, with the same ``webhook-id``; the new delivery."""
        path = _path(webhook_id, "deliveries", delivery_id, "redeliver")
        return self._call("POST", path).json()
