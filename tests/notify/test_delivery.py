"""Decisions reach receivers through the outbox: once, signed, after outages, dead after too many failures, and
after a crash between the commit and the delivery."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.db import session_scope
from service.notify import repository
from service.notify.models import Channel, OutboxStatus
from service.notify.service import backoff_s
from tests.followups.test_routes import DRAFTED, OFF_TOPIC
from tests.notify.conftest import PROXY, Receiver, notify_app, wait_until
from tests.review.helpers import ReviewApp

CORRECTED = "リスキリング研修は4月に始まり、営業支援ツールと提案書作成を学びます。[1]"


def corrected(app: ReviewApp, client: TestClient | None = None) -> dict[str, Any]:
    """Ask the drafted question, then a reviewer edits and approves the draft."""
    response = (client or app.client).post("/v1/ask", json={"question": DRAFTED})
    assert response.status_code == 200, response.text
    asked: dict[str, Any] = response.json()
    decided = app.decide(app.item_of(asked["id"]), app.user("sato"), action="edit", answer=CORRECTED)
    assert decided.status_code == 200, decided.text
    return asked


def rows(app: ReviewApp, channel: Channel) -> list[Any]:
    with session_scope(app.sessions) as session:
        return list(repository.for_channel(session, channel))


def settle(app: ReviewApp) -> None:
    """Nothing left to send, then ten more rounds of the loop: anything it would send twice, it would have by now."""
    wait_until(lambda: all(r.status != OutboxStatus.pending for r in rows(app, Channel.webhook)))
    time.sleep(10 * app.settings.outbox_interval_s)


def test_a_correction_reaches_the_webhook_exactly_once_with_a_valid_signature(
    fake_indexed: Settings, database_url: str, receiver: Receiver
) -> None:
    with notify_app(fake_indexed, database_url, webhook_url=receiver.url + "/hook") as app:
        asked = corrected(app)
        wait_until(lambda: receiver.of("answer.updated"))
        settle(app)

    [delivery] = receiver.of("answer.updated")
    assert delivery.signed
    assert delivery.body["id"] == asked["id"] and delivery.body["state"] == "corrected"
    assert delivery.body["answer"] == CORRECTED and delivery.body["question"] == DRAFTED
    assert "sato" not in str(delivery.body)  # no reviewer names
    assert delivery.headers["idempotency-key"].startswith("answer.updated.item")


def test_a_receiver_that_is_down_gets_the_notification_once_it_is_back(
    fake_indexed: Settings, database_url: str
) -> None:
    from tests.conftest import free_port

    down = Receiver(free_port())  # nothing listens on its port yet: connection refused
    with notify_app(fake_indexed, database_url, webhook_url=down.url) as app:
        corrected(app)
        wait_until(lambda: any(r.attempts >= 3 for r in rows(app, Channel.webhook)))
        [row] = [r for r in rows(app, Channel.webhook) if r.kind == "answer.updated"]
        assert row.status == OutboxStatus.pending and row.last_error and row.sent_at is None
        down.start()
        try:
            wait_until(lambda: down.of("answer.updated"))
            settle(app)
        finally:
            down.stop()
        [row] = [r for r in rows(app, Channel.webhook) if r.kind == "answer.updated"]

    assert len(down.of("answer.updated")) == 1
    assert row.status == OutboxStatus.sent and row.attempts >= 4 and row.last_error is None


def test_backoff_doubles_with_each_attempt_and_jitters_within_half_of_it() -> None:
    assert backoff_s(1, base_s=30, jitter=lambda: 1.0) == 30
    assert backoff_s(4, base_s=30, jitter=lambda: 1.0) == 240
    assert backoff_s(4, base_s=30, jitter=lambda: 0.0) == 120
    assert backoff_s(40, base_s=30, jitter=lambda: 1.0) == 6 * 3600  # capped


def test_an_always_failing_receiver_ends_dead_listed_for_admins_and_an_admin_can_retry_it(
    fake_indexed: Settings, database_url: str, receiver: Receiver
) -> None:
    receiver.status = 503
    with notify_app(fake_indexed, database_url, webhook_url=receiver.url, outbox_max_attempts=3) as app:
        corrected(app)
        wait_until(lambda: any(r.status == OutboxStatus.dead for r in rows(app, Channel.webhook)))
        admin, reviewer = app.user("admin", role="admin"), app.user("suzuki")

        listed = app.client.get("/v1/admin/outbox", params={"status": "dead"}, headers=admin)
        refused = app.client.get("/v1/admin/outbox", params={"status": "dead"}, headers=reviewer)
        assert listed.status_code == 200 and refused.status_code == 403
        [dead] = [r for r in listed.json() if r["kind"] == "answer.updated"]
        assert dead["attempts"] == 3 and dead["last_error"].startswith("HTTP 503") and dead["sent_at"] is None

        receiver.status = 200
        retried = app.client.post(f"/v1/admin/outbox/{dead['id']}/retry", headers=admin)
        assert retried.status_code == 200 and retried.json()["status"] == "pending"
        wait_until(lambda: receiver.of("answer.updated"))
        settle(app)
        again = app.client.post(f"/v1/admin/outbox/{dead['id']}/retry", headers=admin)

    assert len(receiver.of("answer.updated")) == 1
    assert again.status_code == 422  # sent already: nothing to retry


def test_a_notification_committed_before_a_crash_is_delivered_exactly_once_by_the_next_process(
    fake_indexed: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    class Crashed:  # the process dies after the decision commits, before its loop sends anything
        def __init__(self, *args: object) -> None: ...
        def start(self) -> None: ...
        def stop(self) -> None: ...

    with monkeypatch.context() as crashed:
        crashed.setattr("service.main.DeliveryLoop", Crashed)
        with notify_app(fake_indexed, database_url, webhook_url=receiver.url) as first:
            corrected(first)
            assert [r.status for r in rows(first, Channel.webhook) if r.kind == "answer.updated"] == ["pending"]
    assert receiver.deliveries == []

    with notify_app(fake_indexed, database_url, webhook_url=receiver.url) as restarted:
        wait_until(lambda: receiver.of("answer.updated"))
        settle(restarted)

    assert len(receiver.of("answer.updated")) == 1


def test_new_abstentions_reach_the_teams_and_slack_channels_in_their_formats(
    fake_indexed: Settings, database_url: str, receiver: Receiver
) -> None:
    channels = {"teams_webhook_url": receiver.url + "/teams", "slack_webhook_url": receiver.url + "/slack"}
    with notify_app(fake_indexed, database_url, **channels) as app:
        asked = app.ask(OFF_TOPIC)
        assert asked["mode"] == "abstain"
        wait_until(lambda: len(receiver.deliveries) >= 2)
        item = app.item_of(asked["id"])

    [teams] = receiver.of("/teams")
    [slack] = receiver.of("/slack")
    assert teams.body["@type"] == "MessageCard" and teams.body["text"] == OFF_TOPIC
    assert teams.body["potentialAction"][0]["targets"][0]["uri"].endswith(f"/review/items/{item}")
    assert OFF_TOPIC in slack.body["text"] and slack.body["blocks"][0]["type"] == "header"


def test_an_asker_email_from_a_client_that_is_not_the_proxy_is_ignored(
    fake_indexed: Settings, database_url: str
) -> None:
    from service.triage.models import Question

    proxy = {"sso_email_header": "X-Forwarded-Email", "trusted_proxies": [PROXY]}
    with notify_app(fake_indexed, database_url, **proxy) as app:
        spoofed = app.client.post(
            "/v1/ask", json={"question": DRAFTED}, headers={"X-Forwarded-Email": "mallory@example.com"}
        ).json()
        with session_scope(app.sessions) as session:
            stored = session.query(Question).filter_by(public_id=spoofed["id"]).one()
            assert stored.asker_email is None and stored.followup_sealed is None


def test_a_crash_between_send_and_mark_resends_with_the_same_idempotency_key_after_the_lease(
    fake_indexed: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    from service.db import utcnow
    from service.notify.channels import send
    from service.notify.service import claim, deliver_due

    class Stopped:  # no loop: this test drives the rounds itself
        def __init__(self, *args: object) -> None: ...
        def start(self) -> None: ...
        def stop(self) -> None: ...

    monkeypatch.setattr("service.main.DeliveryLoop", Stopped)
    with notify_app(fake_indexed, database_url, webhook_url=receiver.url) as app:
        corrected(app)
        [leased] = [o for o in claim(app.sessions, app.settings) if o.payload.get("event") == "answer.updated"]
        send(leased, app.settings)  # ... and the process dies before marking the row sent
        assert deliver_due(app.sessions, app.settings).sent == []  # still leased: no other loop takes it
        with session_scope(app.sessions) as session:
            row = repository.get(session, leased.id)
            assert row is not None
            row.next_attempt_at = utcnow()  # the lease ran out
        assert leased.id in deliver_due(app.sessions, app.settings).sent

    first, second = receiver.of("answer.updated")
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == leased.key
    assert first.body == second.body  # a receiver that remembers keys drops the second
