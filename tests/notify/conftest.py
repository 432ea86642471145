"""Real receivers on loopback: an HTTP server counting webhook deliveries (and checking their signatures), and
aiosmtpd as the mail server. The app runs on the fake embedder, like tests/followups."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from service.config import Settings
from tests.conftest import free_port
from tests.fakes import HashedNgramEmbedder
from tests.followups.conftest import fake_indexed  # noqa: F401  (the session fixture, shared)
from tests.review.helpers import ReviewApp, review_app

SECRET = "test-webhook-secret"
LINK_KEY = "test-link-key-0123456789abcdef0123456789"
PUBLIC_URL = "https://nemawashi.example.co.jp"
PROXY = "10.0.0.5"


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    signed: bool  # X-Nemawashi-Signature is the HMAC of "{timestamp}.{body}" under SECRET


@dataclass
class Receiver:
    """A loopback HTTP endpoint: answers `status`, records every POST (also the refused ones, in `attempts`)."""

    port: int
    status: int = 200
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.attempts += 1
                if receiver.status == 200:
                    expected = hmac.new(
                        SECRET.encode(), self.headers.get("X-Nemawashi-Timestamp", "").encode() + b"." + raw,
                        hashlib.sha256,
                    ).hexdigest()  # fmt: skip
                    signed = hmac.compare_digest(self.headers.get("X-Nemawashi-Signature", ""), "sha256=" + expected)
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.deliveries.append(Delivery(self.path, headers, json.loads(raw), signed))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of(self, event: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.body.get("event") == event or d.path.endswith(event)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(free_port())
    running.start()
    yield running
    running.stop()


class Mailbox:
    """aiosmtpd's handler: every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, mailbox
    controller.stop()


def wait_until(condition: Callable[[], object], *, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def notify_settings(**overrides: Any) -> dict[str, Any]:
    """A fast loop and short backoff for tests, plus the link key and public URL the e-mail link needs."""
    return {
        "outbox_interval_s": 0.05,
        "outbox_backoff_s": 0.05,
        "outbox_max_attempts": 30,
        "webhook_secret": SECRET,
        "link_key": LINK_KEY,
        "public_url": PUBLIC_URL,
        "digest_hour": -1,  # the daily digest has its own test (test_digest.py); here receivers count events
        **overrides,
    }


@contextmanager
def notify_app(indexed: Settings, database_url: str, **overrides: Any) -> Iterator[ReviewApp]:
    """The whole service on the fake embedder with the given notification settings."""
    with review_app(indexed, database_url, embedder=HashedNgramEmbedder(), **notify_settings(**overrides)) as running:
        yield running
