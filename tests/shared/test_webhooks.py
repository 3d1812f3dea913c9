"""Webhooks' core without a service: which URLs are refused, the retry schedule, signatures
that standardwebhooks verifies, and the outbox written in the state change's transaction."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from shared.auth import create_user
from shared.commands.database import migrate
from shared.db import session_scope, sessions
from shared.jobs import lifecycle
from shared.jobs.events import STATUS, add_event
from shared.models import Job, Sweep, User, Webhook, WebhookDelivery, WebhookMessage
from shared.settings import Settings
from shared.sweeps import service as sweeps
from shared.sweeps.spec import SweepSpec
from shared.webhooks import delivery, outbox, service, targets
from tests.specs import quickstart
from tests.support import postgres_database
from tests.webhook_receiver import Receiver

REFUSED = [
    "ftp://example.com/hook", "file:///etc/passwd", "javascript:alert(1)", "example.com/hook",
    "http://", "http://exa mple.com/", "http://example.com:99999/",
    # Read as another host by the sender than by a URL parser: a backslash, a user part.
    "http://127.0.0.1:8080\\@93.184.215.14/", "http://user:pw@93.184.215.14/",
    "http://example.com/\x00",
]  # fmt: skip
PRIVATE = [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/", "http://10.1.2.3/",
    "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/", "http://[fd12:3456::1]/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
    "http://100.100.100.200/", "http://[2002:7f00:1::1]/",  # shared address space; 6to4
]  # fmt: skip


@pytest.mark.parametrize("url", REFUSED)
def test_not_an_http_url_is_refused_even_where_private_targets_are_allowed(url: str) -> None:
    with pytest.raises(targets.Refused):
        targets.check(url, allow_private=True)


@pytest.mark.parametrize("url", PRIVATE)
def test_loopback_private_and_link_local_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(targets.Refused, match="loopback, private or link-local"):
        targets.check(url, allow_private=False)
    assert targets.check(url, allow_private=True) == url


def test_a_public_address_is_accepted() -> None:
    assert targets.check("https://93.184.215.14/hook", allow_private=False)


def test_a_host_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(targets.Refused, match="does not resolve"):
        targets.check("http://no-such-host.invalid/hook", allow_private=False)


def test_retries_back_off_exponentially_honour_retry_after_and_stop_after_the_window() -> None:
    settings = Settings(webhooks_backoff_seconds=5, webhooks_retry_seconds=86400)
    assert [delivery.backoff(n, 5) for n in range(1, 12)] == [
        5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600,
    ]  # fmt: skip
    made = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    later = made + timedelta(hours=1)
    assert delivery.next_attempt(3, made, later, settings) == later + timedelta(seconds=20)
    assert delivery.next_attempt(3, made, later, settings, asked=120.0) == later + timedelta(
        seconds=120
    )
    assert delivery.next_attempt(3, made, made + timedelta(hours=24), settings) is None
    assert delivery.retry_after("7", made) == 7.0
    http_date = "Wed, 02 Dec 2026 12:01:30 GMT"
    assert delivery.retry_after(http_date, made) == 90.0
    assert delivery.retry_after("soon", made) is None
    assert delivery.retry_after("\u00b2", made) is None  # a digit to str.isdigit, not a number
    huge = delivery.retry_after("9" * 20, made)
    assert huge == delivery.MAX_RETRY_AFTER  # at most a week: past the window, so failed
    assert delivery.next_attempt(3, made, later, settings, asked=huge) is None
    # Over a day at the default settings: retries until the window closes, then failed.
    attempts, now = 0, made
    while (when := delivery.next_attempt(attempts + 1, made, now, settings)) is not None:
        attempts, now = attempts + 1, when
    assert attempts == 32 and now <= made + timedelta(days=1)  # 10 doublings, then hourly


def test_signed_headers_verify_with_standardwebhooks_and_a_changed_body_does_not() -> None:
    secret = service.new_secret()
    assert secret.startswith("whsec_")
    body = json.dumps({"type": "job.succeeded", "data": {"job_id": "j"}})
    headers = delivery.sign(secret, "msg_1", body, datetime.now(UTC))
    assert Verifier(secret).verify(body, headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Verifier(secret).verify(body.replace("succeeded", "failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Verifier(service.new_secret()).verify(body, headers)


def _job(url: str, owner_id: int) -> str:
    with session_scope(url) as s:
        job = Job(owner_id=owner_id, name="j", spec={}, epochs_total=1)
        s.add(job)
        s.flush()
        add_event(s, job.id, STATUS, {"status": "queued"})
        return job.id


def test_each_state_change_commits_its_deliveries_with_it_and_a_rollback_leaves_none(
    sqlite_url: str,
) -> None:
    with session_scope(sqlite_url) as s:
        owner = create_user(s, "carol")
        service.create(s, owner, "http://127.0.0.1:9/all", None, "", allow_private=True)
        service.create(s, owner, "http://127.0.0.1:9/ends", ["job.succeeded", "sweep.*"], "",
                       allow_private=True)  # fmt: skip
        owner_id = owner.id
    job_id = _job(sqlite_url, owner_id)
    db = sessions(sqlite_url)
    assert lifecycle.start(db, job_id, "w1")
    lifecycle.succeed(db, job_id, {"loss": 0.5}, {})
    with pytest.raises(RuntimeError), session_scope(sqlite_url) as s:
        add_event(s, job_id, STATUS, {"status": "failed", "error": "never committed"})
        raise RuntimeError("the transaction rolls back")
    with session_scope(sqlite_url) as s:
        rows = s.execute(
            select(WebhookMessage.type, WebhookDelivery.status)
            .join(WebhookDelivery, WebhookDelivery.message_id == WebhookMessage.id)
            .order_by(WebhookMessage.created_at)
        ).all()
    types = [t for t, _ in rows]
    assert sorted(types) == ["job.queued", "job.running", "job.succeeded", "job.succeeded"]
    assert {status for _, status in rows} == {"pending"}


def test_a_sweeps_start_and_end_are_events_too(sqlite_url: str, tmp_path: Any) -> None:
    settings = Settings(var_dir=tmp_path, database_url=sqlite_url)
    body = {"name": "hooked sweep", "spec": quickstart(epochs=1), "max_trials": 2,
            "max_concurrent": 1, "objective": {"metric": "val_loss", "direction": "minimize"},
            "space": {"fit.batch_size": {"type": "categorical", "choices": [16, 32]}}}  # fmt: skip
    with session_scope(sqlite_url) as s:
        owner = create_user(s, "sweeper")
        service.create(s, owner, "http://127.0.0.1:9/", ["sweep.*"], "", allow_private=True)
        sweep = sweeps.create(s, owner, SweepSpec.model_validate(body), settings)
    with session_scope(sqlite_url) as s:
        row = s.get(Sweep, sweep.id)
        assert row is not None
        sweeps.cancel(s, row)
    with session_scope(sqlite_url) as s:
        sent = [(m.type, m.payload["data"]) for m in s.scalars(
            select(WebhookMessage).order_by(WebhookMessage.created_at))]  # fmt: skip
    data = {"sweep_id": sweep.id, "name": "hooked sweep"}
    assert sent == [("sweep.running", data | {"status": "running"}),
                    ("sweep.cancelled", data | {"status": "cancelled"})]  # fmt: skip


def test_a_webhook_deleted_while_a_job_records_its_event_fails_neither() -> None:
    """PostgreSQL, two transactions: a job's status change has read the owner's webhooks and is
    about to add their deliveries when the owner deletes one. The deletion waits for the job's
    commit (which would otherwise break on the deleted webhook's key, failing the job's record)
    and then takes the delivery with it."""
    with postgres_database() as url:
        migrate(url)
        _race(url)


def _race(url: str) -> None:
    with session_scope(url) as s:
        owner = create_user(s, "dora")
        hook = service.create(s, owner, "http://127.0.0.1:9/h", None, "", allow_private=True)
        owner_id, hook_id = owner.id, hook.id
    job_id = _job(url, owner_id)
    deleted = threading.Event()

    def delete_it() -> None:
        with session_scope(url) as s:
            user = s.get(User, owner_id)
            assert user is not None
            service.delete_webhook(s, user, hook_id)
        deleted.set()

    with session_scope(url) as s:  # the job's transaction: it has read the owner's webhooks
        hooks = outbox.owners_webhooks(s, owner_id)
        other = threading.Thread(target=delete_it, daemon=True)
        other.start()
        assert not deleted.wait(1.0), "the deletion waits for the job's transaction"
        outbox.add(s, owner_id, "job.running", {"job_id": job_id}, hooks)
    other.join(timeout=30)
    assert deleted.is_set()
    with session_scope(url) as s:
        assert s.get(Webhook, hook_id) is None
        assert s.scalars(select(WebhookDelivery)).all() == []  # taken with the webhook
        assert s.scalars(select(WebhookMessage)).all() != []  # the job's event is kept


def _resolve(
    monkeypatch: pytest.MonkeyPatch, name: str, answer: Callable[[Any], tuple[int, tuple[Any, ...]]]
) -> None:
    """``name`` resolves to ``answer(port)`` (its family and address), looked up anew each time;
    every other host as it does."""
    real = socket.getaddrinfo

    def resolving(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            family, address = answer(port)
            return [(family, socket.SOCK_STREAM, 6, "", address)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolving)


def test_an_attempt_goes_to_the_address_checked_not_to_one_looked_up_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """DNS rebinding: hook.test resolves to a public address for the check and to a private one
    right after. The attempt connects to the address that was checked, with the URL's Host
    (here 127.0.0.2 stands for the public address: the check takes it as one)."""
    checked = Receiver(host="127.0.0.2").start()
    rebound = Receiver(bind_port=checked.port).start()  # 127.0.0.1, the same port
    answers = iter(["127.0.0.2", *["127.0.0.1"] * 10])
    _resolve(monkeypatch, "hook.test", lambda port: (socket.AF_INET, (next(answers), port)))
    monkeypatch.setattr(targets, "_private", lambda address: address != "127.0.0.2")
    secret = service.new_secret()
    message = WebhookMessage(id="msg_rebinding", payload={"type": "webhook.ping", "data": {}})
    settings = Settings(var_dir=tmp_path, webhooks_timeout_seconds=5)
    try:
        attempt = delivery.send(f"http://hook.test:{checked.port}/hook?x=1", secret, message,
                                settings)  # fmt: skip
    finally:
        checked.stop()
        rebound.stop()
    assert attempt.ok and attempt.status == 200, attempt
    assert rebound.received == []
    (got,) = checked.received
    assert got.headers["host"] == f"hook.test:{checked.port}"
    assert got.verified(secret)["type"] == "webhook.ping"


def test_an_ipv6_address_is_connected_to_as_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A host whose one address is IPv6 is sent to at that address with the URL's Host, and a
    URL with an IPv6 literal likewise (its Host in brackets). Here ::1 stands for a public
    address: the check takes it as one."""
    receiver = Receiver(host="::1").start()
    port = receiver.port
    _resolve(monkeypatch, "hook6.test", lambda port: (socket.AF_INET6, ("::1", port, 0, 0)))
    monkeypatch.setattr(targets, "_private", lambda address: address != "::1")
    secret = service.new_secret()
    message = WebhookMessage(id="msg_ipv6", payload={"type": "webhook.ping", "data": {}})
    settings = Settings(var_dir=tmp_path, webhooks_timeout_seconds=5)
    urls = [f"http://hook6.test:{port}/hook", f"http://[::1]:{port}/hook"]
    try:
        attempts = [delivery.send(url, secret, message, settings) for url in urls]
    finally:
        receiver.stop()
    assert [(a.ok, a.status) for a in attempts] == [(True, 200), (True, 200)], attempts
    assert [r.headers["host"] for r in receiver.received] == [f"hook6.test:{port}", f"[::1]:{port}"]
    assert all(r.verified(secret)["type"] == "webhook.ping" for r in receiver.received)


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_timeout(tmp_path: Any) -> None:
    """The timeout bounds the whole answer, not each read: a receiver that sends one byte of
    its headers every 0.2 s (each read answered in time) holds an attempt for 1 s, not 10."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def drip() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for _ in range(50):
                try:
                    conn.sendall(b"x")
                except OSError:
                    return  # cut off
                threading.Event().wait(0.2)

    threading.Thread(target=drip, daemon=True).start()
    message = WebhookMessage(id="msg_drip", payload={"type": "webhook.ping", "data": {}})
    settings = Settings(var_dir=tmp_path, webhooks_timeout_seconds=1, webhooks_allow_private=True)
    started = time.monotonic()
    try:
        attempt = delivery.send(f"http://127.0.0.1:{port}/hook", service.new_secret(), message,
                                settings)  # fmt: skip
    finally:
        server.close()
    took = time.monotonic() - started
    assert not attempt.ok and attempt.error == "no answer in 1 s", attempt
    assert took < 3, took


def test_deliveries_are_kept_for_the_days_set_then_deleted_with_their_events(
    sqlite_url: str, tmp_path: Any
) -> None:
    settings = Settings(var_dir=tmp_path, database_url=sqlite_url, webhooks_keep_days=30)
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    with session_scope(sqlite_url) as s:
        owner = create_user(s, "erin")
        hook = service.create(s, owner, "http://127.0.0.1:9/h", None, "", allow_private=True)
        ids = {}
        for name, created, status, finished in [
            ("old succeeded", old, "succeeded", old), ("old failed", old, "failed", old),
            ("old, ended lately", old, "failed", recent), ("old, pending", old, "pending", None),
            ("recent", recent, "succeeded", recent),
        ]:  # fmt: skip
            message = WebhookMessage(id=f"msg_{len(ids)}", owner_id=owner.id, type="job.queued",
                                     created_at=created, payload={"name": name})  # fmt: skip
            s.add(message)
            s.flush()
            row = WebhookDelivery(webhook_id=hook.id, message_id=message.id, status=status,
                                  created_at=created, finished_at=finished)  # fmt: skip
            s.add(row)
            s.flush()
            ids[name] = (row.id, message.id)
    assert delivery.prune(sessions(sqlite_url), settings, now) == 2
    with session_scope(sqlite_url) as s:
        left = set(s.scalars(select(WebhookDelivery.id)))
        messages = set(s.scalars(select(WebhookMessage.id)))
    kept = ["old, ended lately", "old, pending", "recent"]
    assert left == {ids[name][0] for name in kept}
    assert messages == {ids[name][1] for name in kept}  # an event goes with its last delivery
