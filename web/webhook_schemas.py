"""Webhooks' request and response bodies (published by the OpenAPI document), and the
builders that turn the core's rows into them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import url_for
from pydantic import BaseModel, ConfigDict, Field

from shared.models import Webhook as WebhookRow
from shared.models import WebhookDelivery as DeliveryRow
from shared.models import WebhookMessage
from shared.webhooks.targets import MAX_URL

EventType = Literal[
    "job.queued", "job.running", "job.succeeded", "job.failed", "job.cancelled", "job.pruned",
    "sweep.running", "sweep.succeeded", "sweep.failed", "sweep.cancelled", "job.*", "sweep.*",
]  # fmt: skip


class CreateWebhook(BaseModel):
    """A URL to tell of your jobs' and sweeps' state changes."""

    model_config = ConfigDict(extra="forbid")
    # The pattern is for readers and generators; targets.check says what is wrong with a URL.
    url: str = Field(
        min_length=1, max_length=MAX_URL, description="http:// or https://, to a public host",
        json_schema_extra={"format": "uri", "pattern": "^https?://"},
    )  # fmt: skip
    events: list[EventType] | None = Field(
        default=None, min_length=1, max_length=12,
        description="the event types it is sent (`job.*`: every job event); all if left out",
    )  # fmt: skip
    description: str = Field(default="", max_length=500)


class Webhook(BaseModel):
    """A registered webhook."""

    id: str
    url: str
    events: list[str] | None = Field(description="the event types it is sent; null: all")
    description: str
    created_at: datetime
    deliveries_url: str


class CreatedWebhook(Webhook):
    """A webhook just registered, with its signing secret (shown this once)."""

    secret: str = Field(
        description="the Standard Webhooks signing secret (`whsec_...`): keep it, it is not "
        "shown again"
    )


class WebhookList(BaseModel):
    """Your webhooks, oldest first."""

    webhooks: list[Webhook]


class Delivery(BaseModel):
    """One event sent (or being sent) to a webhook."""

    id: str
    webhook_id: str
    message_id: str = Field(description="the `webhook-id` header: the same on a redelivery")
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    response_status: int | None = Field(description="the HTTP status of the last answer")
    error: str | None = Field(description="why the last attempt failed")
    created_at: datetime
    finished_at: datetime | None
    payload: dict[str, Any] = Field(description="the body sent: {type, timestamp, data}")


class DeliveryList(BaseModel):
    """A webhook's deliveries, newest first (the last 100)."""

    deliveries: list[Delivery]


REQUESTS: tuple[type[BaseModel], ...] = (CreateWebhook,)
SCHEMAS: list[type[BaseModel]] = [CreateWebhook, Webhook, CreatedWebhook, WebhookList,
                                  Delivery, DeliveryList]  # fmt: skip


def webhook_body(row: WebhookRow) -> Webhook:
    """A webhook row as its response body (no secret)."""
    return Webhook(id=row.id, url=row.url, events=row.events, description=row.description,
                   created_at=row.created_at, deliveries_url=url_for(
                       "webhooks.list_deliveries", webhook_id=row.id))  # fmt: skip


def created_body(row: WebhookRow) -> CreatedWebhook:
    """A webhook just registered, with its secret."""
    return CreatedWebhook(**webhook_body(row).model_dump(), secret=row.secret)


def delivery_body(row: DeliveryRow, message: WebhookMessage) -> Delivery:
    """A delivery with its message."""
    return Delivery(
        id=row.id, webhook_id=row.webhook_id, message_id=message.id, event_type=message.type,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts, next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at, response_status=row.response_status,
        error=row.error, created_at=row.created_at, finished_at=row.finished_at,
        payload=message.payload,
    )  # fmt: skip
