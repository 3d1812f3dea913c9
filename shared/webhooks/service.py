"""What the API does with webhooks, each in the caller's transaction (it commits): register,
list, get, delete, the delivery log, a test ping and a redelivery."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.errors import InvalidInput, NotFound
from shared.models import User, Webhook, WebhookDelivery, WebhookMessage, utcnow
from shared.webhooks import outbox, targets

MAX_WEBHOOKS = 20  # per user: each state change writes a delivery per webhook
MAX_DELIVERIES_LISTED = 100


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create(
    session: Session, owner: User, url: str, events: list[str] | None, description: str,
    allow_private: bool,
) -> Webhook:  # fmt: skip
    """Register a webhook (its secret is on the row, shown once by the caller)."""
    try:
        targets.check(url, allow_private)
    except targets.Refused as exc:
        raise InvalidInput(f"url: {exc}", details={"field": "url", "message": str(exc)}) from None
    count = len(list_webhooks(session, owner))
    if count >= MAX_WEBHOOKS:
        raise InvalidInput(f"at most {MAX_WEBHOOKS} webhooks per user; delete one first")
    row = Webhook(owner_id=owner.id, url=url, events=sorted(set(events)) if events else None,
                  description=description, secret=new_secret(), created_at=utcnow())  # fmt: skip
    session.add(row)
    session.flush()
    return row


def list_webhooks(session: Session, owner: User) -> list[Webhook]:
    """The user's webhooks, oldest first."""
    return list(session.scalars(
        select(Webhook).where(Webhook.owner_id == owner.id).order_by(Webhook.created_at)
    ))  # fmt: skip


def get(session: Session, owner: User, webhook_id: str) -> Webhook:
    """One of the user's webhooks; NotFound for another user's too."""
    row = session.get(Webhook, webhook_id[:64])
    if row is None or row.owner_id != owner.id:
        raise NotFound("no such webhook", details={"webhook_id": webhook_id})
    return row


def delete_webhook(session: Session, owner: User, webhook_id: str) -> None:
    """Delete a webhook and its delivery log (pending deliveries are not sent)."""
    row = get(session, owner, webhook_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == row.id))
    session.delete(row)


def deliveries(
    session: Session, owner: User, webhook_id: str, limit: int = MAX_DELIVERIES_LISTED
) -> list[tuple[WebhookDelivery, WebhookMessage]]:
    """The webhook's deliveries, newest first, each with its message."""
    row = get(session, owner, webhook_id)
    return [(d, m) for d, m in session.execute(
        select(WebhookDelivery, WebhookMessage)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookDelivery.webhook_id == row.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
    )]  # fmt: skip


def ping(session: Session, owner: User, webhook_id: str) -> tuple[WebhookDelivery, Any]:
    """Queue a test event (``webhook.ping``) to the webhook; its delivery and message."""
    row = get(session, owner, webhook_id)
    message = outbox.add(session, owner.id, outbox.PING, {"webhook_id": row.id}, [row])
    assert message is not None
    session.flush()
    delivery = session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.message_id == message.id)
    )
    assert delivery is not None
    return delivery, message


def redeliver(
    session: Session, owner: User, webhook_id: str, delivery_id: str
) -> tuple[WebhookDelivery, WebhookMessage]:
    """Send a delivery's message again, as a new delivery with the same ``webhook-id``."""
    row = get(session, owner, webhook_id)
    old = session.get(WebhookDelivery, delivery_id[:64])
    if old is None or old.webhook_id != row.id:
        raise NotFound("no such delivery", details={"delivery_id": delivery_id})
    message = session.get(WebhookMessage, old.message_id)
    assert message is not None
    now = utcnow()
    new = WebhookDelivery(webhook_id=row.id, message_id=message.id, next_attempt_at=now,
                          created_at=now)  # fmt: skip
    session.add(new)
    session.flush()
    return new, message
