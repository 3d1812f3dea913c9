"""The outbox: each event for webhooks is written in the transaction of the change it reports.

A job's status change adds its event (``shared.jobs.events.add_event``), which calls
``job_changed`` here in the same session; a sweep's start and end call ``sweep_changed``. Each
adds one message and a pending delivery per webhook of the owner that takes its type, so a
change that commits has its deliveries committed with it, and one rolled back has none: the
periodic jobs send them later (``shared.webhooks.delivery``), whoever wrote them and whatever
happened to that process after its commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import Job, Sweep, Webhook, WebhookDelivery, WebhookMessage, utcnow

JOB_EVENTS = ("job.queued", "job.running", "job.succeeded", "job.failed", "job.cancelled",
              "job.pruned")  # fmt: skip
SWEEP_EVENTS = ("sweep.running", "sweep.succeeded", "sweep.failed", "sweep.cancelled")
PING = "webhook.ping"
EVENT_TYPES = (*JOB_EVENTS, *SWEEP_EVENTS, "job.*", "sweep.*")


def takes(webhook: Webhook, type: str) -> bool:
    """Whether the webhook is sent events of this type (a ping always is)."""
    if type == PING or webhook.events is None:
        return True
    return type in webhook.events or f"{type.split('.', 1)[0]}.*" in webhook.events


def new_message_id() -> str:
    """A message id, the ``webhook-id`` header (Standard Webhooks: unique per event)."""
    return f"msg_{uuid.uuid4().hex}"


def owners_webhooks(session: Session, owner_id: int) -> list[Webhook]:
    """The owner's webhooks, for a change to add its deliveries to: held (PostgreSQL's FOR KEY
    SHARE, as a delivery's foreign key would hold them) until the change commits, so that a
    webhook deleted meanwhile waits for it and takes the new delivery with it; otherwise the
    delivery's key would break the change's commit (a job's status, its epoch, its result)."""
    query = select(Webhook).where(Webhook.owner_id == owner_id)
    return list(session.scalars(query.with_for_update(read=True, key_share=True)))


def add(
    session: Session, owner_id: int, type: str, data: dict[str, Any],
    webhooks: list[Webhook] | None = None,
) -> WebhookMessage | None:  # fmt: skip
    """Add a message and a pending delivery per webhook that takes it (the owner's, or
    ``webhooks``) to the session's transaction; None (nothing written) if no webhook does."""
    if webhooks is None:
        webhooks = owners_webhooks(session, owner_id)
    targets = [w for w in webhooks if takes(w, type)]
    if not targets:
        return None
    now = utcnow()
    message = WebhookMessage(
        id=new_message_id(), owner_id=owner_id, type=type, created_at=now,
        payload={"type": type, "timestamp": now.isoformat(), "data": data},
    )  # fmt: skip
    session.add(message)
    session.flush()  # the message before its deliveries (no relationship orders them)
    for webhook in targets:
        session.add(WebhookDelivery(webhook_id=webhook.id, message_id=message.id,
                                    next_attempt_at=now, created_at=now))  # fmt: skip
    return message


def job_changed(session: Session, job_id: str, seq: int, data: dict[str, Any]) -> None:
    """Write the event of a job's status change (its event ``seq``, its ``data``)."""
    job = session.get(Job, job_id)
    if job is None:
        return
    status = str(data.get("status", job.status))
    body = {"job_id": job.id, "name": job.name, "kind": str(job.kind), "seq": seq, **data,
            "status": status}  # fmt: skip
    if job.sweep_id is not None:
        body |= {"sweep_id": job.sweep_id, "trial": job.trial}
    add(session, job.owner_id, f"job.{status}", body)


def sweep_changed(session: Session, sweep: Sweep) -> None:
    """Write the event of a sweep's start or end (its status as it is now)."""
    session.flush()
    add(session, sweep.owner_id, f"sweep.{sweep.status}",
        {"sweep_id": sweep.id, "name": sweep.name, "status": str(sweep.status)})  # fmt: skip
