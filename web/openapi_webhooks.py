"""Webhooks' part of the OpenAPI document (web.openapi joins it in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from web.webhook_schemas import (
    CreatedWebhook,
    CreateWebhook,
    Delivery,
    DeliveryList,
    Webhook,
    WebhookList,
)

WEBHOOK_ID = {"name": "webhook_id", "in": "path", "required": True,
              "schema": {"type": "string", "maxLength": 64}}  # fmt: skip
DELIVERY_ID = {"name": "delivery_id", "in": "path", "required": True,
               "schema": {"type": "string", "maxLength": 64}}  # fmt: skip


def paths(
    ref: Callable[[Any], dict[str, Any]],
    json: Callable[[Any, str], dict[str, Any]],
    errors: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    """The webhooks' routes."""
    base = "/api/v1/webhooks/{webhook_id}"
    body = {"required": True, "content": {"application/json": {"schema": ref(CreateWebhook)}}}
    return {
        "/api/v1/webhooks": {
            "post": {
                "summary": "Register a URL for your jobs' and sweeps' state changes "
                "(signed by the Standard Webhooks scheme; the secret shown once)",
                "operationId": "createWebhook",
                "requestBody": body,
                "responses": {
                    "201": json(CreatedWebhook, "registered, with its secret"),
                    **errors(400, 401, 422),
                },
            },
            "get": {
                "summary": "Your webhooks",
                "operationId": "listWebhooks",
                "responses": {"200": json(WebhookList, "your webhooks"), **errors(401)},
            },
        },
        base: {
            "get": {
                "summary": "One of your webhooks",
                "operationId": "getWebhook",
                "parameters": [WEBHOOK_ID],
                "responses": {"200": json(Webhook, "the webhook"), **errors(401, 404)},
            },
            "delete": {
                "summary": "Delete a webhook and its delivery log",
                "operationId": "deleteWebhook",
                "parameters": [WEBHOOK_ID],
                "responses": {"204": {"description": "deleted"}, **errors(401, 404)},
            },
        },
        f"{base}/deliveries": {
            "get": {
                "summary": "The webhook's delivery log, newest first",
                "operationId": "listWebhookDeliveries",
                "parameters": [WEBHOOK_ID],
                "responses": {"200": json(DeliveryList, "its deliveries"), **errors(401, 404)},
            }
        },
        f"{base}/ping": {
            "post": {
                "summary": "Send the webhook a test event (webhook.ping)",
                "operationId": "pingWebhook",
                "parameters": [WEBHOOK_ID],
                "responses": {
                    "202": json(Delivery, "the ping's delivery, pending"),
                    **errors(401, 404),
                },
            }
        },
        f"{base}/deliveries/{{delivery_id}}/redeliver": {
            "post": {
                "summary": "Send a delivery's event again (the same webhook-id)",
                "operationId": "redeliverWebhook",
                "parameters": [WEBHOOK_ID, DELIVERY_ID],
                "responses": {
                    "202": json(Delivery, "the new delivery, pending"),
                    **errors(401, 404),
                },
            }
        },
    }
