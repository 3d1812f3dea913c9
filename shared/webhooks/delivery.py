"""Sending due webhook deliveries: signed (Standard Webhooks), at least once, with retries.

A round (``deliver_due``, the periodic jobs' task) claims due deliveries with a conditional
UPDATE that moves their ``next_attempt_at`` past the round's end (a lease: if the
process dies mid-send, the delivery is due again after it), sends them in parallel, and
records each answer: a 2xx ends it succeeded; anything else (an error, a timeout, a redirect,
which is not followed) schedules a retry after the backoff or the receiver's ``Retry-After``,
until ``webhooks_retry_seconds`` after the delivery was made, when it is kept as failed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import certifi
import urllib3
import urllib3.connection
from sqlalchemy import delete, select, update
from standardwebhooks.webhooks import Webhook as Signer

from shared.db import Sessions, transaction
from shared.models import Webhook, WebhookDelivery, WebhookMessage, utcnow
from shared.settings import Settings
from shared.webhooks import targets

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 3600.0
ROUND_SIZE = 32
PARALLEL = 8
MAX_ERROR_CHARS = 500
# A Retry-After beyond a week is taken as a week (past any retry window: the delivery fails).
MAX_RETRY_AFTER = 7 * 86400.0


def backoff(attempts: int, base: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: base, 2 base, 4 base, ...,
    at most an hour."""
    return float(min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header as seconds from now (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to str.isdigit, not to float
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


def next_attempt(
    attempts: int, created_at: datetime, now: datetime, settings: Settings,
    asked: float | None = None,
) -> datetime | None:  # fmt: skip
    """When to try again after ``attempts`` failed attempts (the receiver's ``Retry-After``
    if it asked, the backoff otherwise); None once that is past the retry window."""
    wait = asked if asked is not None else backoff(attempts, settings.webhooks_backoff_seconds)
    when = now + timedelta(seconds=wait)
    if when > created_at + timedelta(seconds=settings.webhooks_retry_seconds):
        return None
    return when


@dataclass(frozen=True)
class Attempt:
    """What one attempt answered: ok, the HTTP status (None if none came), an error."""

    ok: bool
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None


def sign(secret: str, message_id: str, body: str, when: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of a message sent at ``when``."""
    signature = Signer(secret).sign(msg_id=message_id, timestamp=when, data=body)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature}  # fmt: skip


class _Late(urllib3.exceptions.TimeoutError):
    """The whole answer did not come within the attempt's timeout."""


def _post(
    url: str, addresses: list[str], body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int, str | None]:
    """POST to the URL through the first of ``addresses`` that takes the connection (TLS
    verified against the URL's host name), never to an address looked up anew; the answer's
    status and ``Retry-After``. ``timeout`` bounds the whole attempt, from the connection to
    the answer's last header: a receiver that drips its answer a byte at a time is cut off
    then (its connection shut from a timer). The answer's body is never read."""
    parts = urlsplit(url)
    https, host = parts.scheme == "https", parts.hostname or ""
    port = parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {**headers, "host": parts.netloc}
    deadline = time.monotonic() + timeout
    failed: Exception | None = None
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        conn: urllib3.connection.HTTPConnection
        if https:
            conn = urllib3.connection.HTTPSConnection(
                address, port, timeout=left, server_hostname=host, assert_hostname=host,
                cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
            )  # fmt: skip
        else:
            conn = urllib3.connection.HTTPConnection(address, port, timeout=left)
        cut = threading.Timer(left, _shut, (conn,))
        cut.start()
        try:
            conn.request("POST", target, body=body, headers=headers, preload_content=False)
            answer = conn.getresponse()
            if time.monotonic() >= deadline:  # cut off mid-answer: what came is not the answer
                raise _Late("the answer did not end in time")
            return answer.status, answer.headers.get("retry-after")
        except urllib3.exceptions.NewConnectionError as exc:  # the next address, if any
            failed = exc
        except _Late:
            raise
        except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                raise _Late(str(exc)) from exc
            raise
        finally:
            cut.cancel()
            conn.close()
    raise failed or _Late("no address took the connection in time")


def _shut(conn: urllib3.connection.HTTPConnection) -> None:
    """End a connection past its attempt's time from another thread: the read it waits in
    returns at once."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def send(url: str, secret: str, message: WebhookMessage, settings: Settings) -> Attempt:
    """One attempt: POST the signed message to ``url`` (checked again first, and sent to the
    addresses checked), no redirects."""
    try:
        addresses = targets.addresses(url, settings.webhooks_allow_private)
    except targets.Refused as exc:
        return Attempt(False, error=f"refused: {exc}")
    body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True)
    now = utcnow()
    headers = {"content-type": "application/json", "user-agent": "trainq-webhooks",
               **sign(secret, message.id, body, now)}  # fmt: skip
    timeout = settings.webhooks_timeout_seconds
    try:
        status, wait = _post(url, addresses, body.encode(), headers, timeout)
    # Refused or unreachable; caught before the timeouts, of which urllib3 makes it a kind.
    except urllib3.exceptions.NewConnectionError as exc:
        return Attempt(False, error=f"ConnectionError: {exc}"[:MAX_ERROR_CHARS])
    except urllib3.exceptions.TimeoutError:
        return Attempt(False, error=f"no answer in {timeout:g} s")
    # Anything else: TLS (a certificate for another name is a ValueError), a malformed answer.
    except (urllib3.exceptions.HTTPError, OSError, ValueError, http.client.HTTPException) as exc:
        return Attempt(False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    if 200 <= status < 300:
        return Attempt(True, status)
    error = f"HTTP {status}"
    if 300 <= status < 400:
        error += " (a redirect: not followed; register the URL it points at)"
    return Attempt(False, status, error, retry_after(wait, utcnow()))


def round_seconds(settings: Settings) -> float:
    """The longest a round may take: its waves of parallel attempts, each within the timeout,
    and a margin. A delivery is leased for this long, and the round's lock held."""
    waves = -(-ROUND_SIZE // PARALLEL)
    return waves * settings.webhooks_timeout_seconds + 30.0


def claim(db: Sessions, settings: Settings, limit: int = ROUND_SIZE) -> list[str]:
    """Take up to ``limit`` due deliveries for this round (each leased for the round)."""
    now = utcnow()
    lease = now + timedelta(seconds=round_seconds(settings))
    taken = []
    with transaction(db) as s:
        due = list(s.execute(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at)
            .limit(limit)
        ))  # fmt: skip
        for (delivery_id,) in due:
            done = s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                       WebhookDelivery.next_attempt_at <= now)
                .values(next_attempt_at=lease)
            )  # fmt: skip
            if done.rowcount == 1:  # type: ignore[attr-defined]
                taken.append(delivery_id)
    return taken


def attempt_one(db: Sessions, settings: Settings, delivery_id: str) -> str:
    """Send one claimed delivery and record the answer; its status afterwards."""
    with transaction(db) as s:
        row = s.get(WebhookDelivery, delivery_id)
        webhook = s.get(Webhook, row.webhook_id) if row is not None else None
        message = s.get(WebhookMessage, row.message_id) if row is not None else None
        if row is None or webhook is None or message is None or row.status != "pending":
            return "gone"
        url, secret = webhook.url, webhook.secret
        created_at, attempts = row.created_at, row.attempts
        s.expunge(message)
    try:
        result = send(url, secret, message, settings)
    except Exception as exc:  # an answer nothing here foresaw counts as a failed attempt
        log.exception("webhook delivery %s: the attempt raised", delivery_id)
        result = Attempt(False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    now = utcnow()
    values: dict[str, object] = {
        "attempts": attempts + 1,
        "last_attempt_at": now,
        "response_status": result.status,
        "error": result.error,
    }
    if result.ok:
        values |= {"status": "succeeded", "next_attempt_at": None, "finished_at": now}
    else:
        when = next_attempt(attempts + 1, created_at, now, settings, result.retry_after)
        values |= (
            {"next_attempt_at": when}
            if when is not None
            else {"status": "failed", "next_attempt_at": None, "finished_at": now}
        )
    with transaction(db) as s:
        s.execute(update(WebhookDelivery)
                  .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending")
                  .values(**values))  # fmt: skip
    status = str(values.get("status", "pending"))
    level = logging.INFO if result.ok else logging.WARNING
    log.log(level, "webhook delivery_id=%s message_id=%s attempt=%d state=%s %s", delivery_id,
            message.id, attempts + 1, status, result.error or result.status)  # fmt: skip
    return status


def deliver_due(db: Sessions, settings: Settings) -> dict[str, int]:
    """One round: send every due delivery (up to a round's worth), in parallel; counts by
    the status each ended the round in."""
    taken = claim(db, settings)
    counts: dict[str, int] = {}
    if not taken:
        return counts
    with ThreadPoolExecutor(min(PARALLEL, len(taken)), "webhook") as pool:
        for status in pool.map(lambda d: attempt_one(db, settings, d), taken):
            counts[status] = counts.get(status, 0) + 1
    return counts


PRUNE_BATCH = 1000


def prune(db: Sessions, settings: Settings, now: datetime | None = None) -> int:
    """Delete the deliveries that ended more than ``webhooks_keep_days`` ago, then the events
    older than that with no delivery left (a pending one keeps its event); in batches, each its
    own short transaction. How many deliveries went."""
    cutoff = (now or utcnow()) - timedelta(days=settings.webhooks_keep_days)
    gone = 0
    while True:
        with transaction(db) as s:
            ids = list(s.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status != "pending", WebhookDelivery.finished_at < cutoff)
                .limit(PRUNE_BATCH)
            ))  # fmt: skip
            if ids:
                s.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
        gone += len(ids)
        if len(ids) < PRUNE_BATCH:
            break
    while True:
        with transaction(db) as s:
            left = select(WebhookDelivery.id).where(WebhookDelivery.message_id == WebhookMessage.id)
            ids = list(s.scalars(
                select(WebhookMessage.id)
                .where(WebhookMessage.created_at < cutoff, ~left.exists())
                .limit(PRUNE_BATCH)
            ))  # fmt: skip
            if ids:
                s.execute(delete(WebhookMessage).where(WebhookMessage.id.in_(ids)))
        if len(ids) < PRUNE_BATCH:
            break
    return gone
