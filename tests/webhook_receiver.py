"""A webhook receiver for the tests: a threaded http.server on a free port that keeps what it
is sent, answers what the test asks (status, Retry-After, a delay), and can start late; and a
queued job to report on."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook as Verifier

from shared.db import session_scope
from shared.jobs.events import STATUS, add_event
from shared.models import Job
from tests.specs import quickstart


def queued_job(db_url: str, owner_id: int) -> str:
    """A queued job of the user's, as submit records it with its queued event (without
    submit's model check, which takes seconds)."""
    with session_scope(db_url) as s:
        job = Job(owner_id=owner_id, name="hooked", spec=quickstart(epochs=1), epochs_total=1)
        s.add(job)
        s.flush()
        add_event(s, job.id, STATUS, {"status": "queued"})
        return job.id


@dataclass
class Received:
    """One request: its headers (lower-cased) and body."""

    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str) -> dict[str, Any]:
        """The body, after standardwebhooks checked its signature (raises otherwise)."""
        return Verifier(secret).verify(self.body, self.headers)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@dataclass
class Receiver:
    """Answers ``answer(n)`` (status, headers) to its n-th request (from 0); keeps them all."""

    answer: Callable[[int], tuple[int, dict[str, str]]] = lambda n: (200, {})
    delay: float = 0.0
    host: str = "127.0.0.1"  # any of 127/8 (a loopback address), or ::1, on
    bind_port: int = 0  # a free port, or this one
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _serving: bool = False

    def __post_init__(self) -> None:
        # Bound now, on a port of its own, and listening only from start(): until then a
        # connection is refused (the receiver is down), and no other process can take the port.
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                n = len(receiver.received)
                receiver.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                status, headers = receiver.answer(n)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = _IPv6Server if ":" in self.host else ThreadingHTTPServer
        self._server = server((self.host, self.bind_port), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.server_bind()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        """Listen on the port (from now on; attempts before this find it closed)."""
        assert self._server is not None
        self._server.server_activate()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._serving = True
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        if self._serving:
            self._server.shutdown()
        self._server.server_close()

    def events(self, secret: str) -> dict[str, dict[str, Any]]:
        """Every verified event by its webhook-id (a repeat of one id counts once)."""
        return {r.headers["webhook-id"]: r.verified(secret) for r in self.received}

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.received]
