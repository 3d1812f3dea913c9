"""Webhooks: register a URL for your jobs' and sweeps' state changes, list, get, delete, the
delivery log, a test ping and a redelivery (the sending is the periodic jobs')."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from shared.webhooks import service
from web import bodies, responses
from web.auth import current_user
from web.extensions import db, settings
from web.webhook_schemas import (
    CreateWebhook,
    DeliveryList,
    WebhookList,
    created_body,
    delivery_body,
    webhook_body,
)

bp = Blueprint("webhooks", __name__)


@bp.post("")
def create() -> ResponseReturnValue:
    """Register a webhook; the answer shows its signing secret, this once."""
    body = bodies.validated(CreateWebhook)
    session = db()
    row = service.create(session, current_user(), body.url, list(body.events or []) or None,
                         body.description, settings().webhooks_allow_private)  # fmt: skip
    session.commit()
    return responses.body(created_body(row)), 201


@bp.get("")
def list_webhooks() -> ResponseReturnValue:
    """Your webhooks, oldest first."""
    rows = service.list_webhooks(db(), current_user())
    return responses.body(WebhookList(webhooks=[webhook_body(r) for r in rows]))


@bp.get("/<webhook_id>")
def get(webhook_id: str) -> ResponseReturnValue:
    """One of your webhooks."""
    return responses.body(webhook_body(service.get(db(), current_user(), webhook_id)))


@bp.delete("/<webhook_id>")
def delete(webhook_id: str) -> ResponseReturnValue:
    """Delete a webhook and its delivery log."""
    session = db()
    service.delete_webhook(session, current_user(), webhook_id)
    session.commit()
    return "", 204


@bp.get("/<webhook_id>/deliveries")
def list_deliveries(webhook_id: str) -> ResponseReturnValue:
    """The webhook's delivery log, newest first."""
    rows = service.deliveries(db(), current_user(), webhook_id)
    return responses.body(DeliveryList(deliveries=[delivery_body(d, m) for d, m in rows]))


@bp.post("/<webhook_id>/ping")
def ping(webhook_id: str) -> ResponseReturnValue:
    """Send the webhook a test event (``webhook.ping``); its delivery, pending."""
    session = db()
    delivery, message = service.ping(session, current_user(), webhook_id)
    session.commit()
    return responses.body(delivery_body(delivery, message)), 202


@bp.post("/<webhook_id>/deliveries/<delivery_id>/redeliver")
def redeliver(webhook_id: str, delivery_id: str) -> ResponseReturnValue:
    """Send a delivery's event again (the same ``webhook-id``); the new delivery, pending."""
    session = db()
    delivery, message = service.redeliver(session, current_user(), webhook_id, delivery_id)
    session.commit()
    return responses.body(delivery_body(delivery, message)), 202
