"""The daily digest for the project team's channels: the last 24 hours in counts, once a day whoever writes it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.bootstrap import open_database
from service.config import Settings
from service.db import make_sessionmaker, session_scope
from service.notify.channels import slack_message, teams_card
from service.notify.models import OutboxRow
from service.notify.service import Outbox
from service.review.notices import daily_digest
from tests.conftest import make_settings
from tests.review.helpers import add_item

TEN_IN_TOKYO = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 JST


@pytest.fixture
def team(tmp_path: Path, database_url: str) -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        teams_webhook_url="http://127.0.0.1:9/teams",
        slack_webhook_url="http://127.0.0.1:9/slack",
    )
    engine = open_database(settings)
    yield settings, make_sessionmaker(engine)
    engine.dispose()


def test_the_digest_counts_the_last_day_once_a_day_from_its_hour(team: tuple[Settings, sessionmaker[Session]]) -> None:
    settings, sessions = team
    with session_scope(sessions) as session:
        add_item(session, "外注したら私の仕事はなくなりますか？", at=TEN_IN_TOKYO - timedelta(hours=2))
        add_item(session, "今日の天気は？", mode="abstain", urgent=True, at=TEN_IN_TOKYO - timedelta(hours=3))
        add_item(session, "引き継ぎの期限は？", urgent=True, at=TEN_IN_TOKYO - timedelta(hours=1))
        add_item(session, "先月の質問", at=TEN_IN_TOKYO - timedelta(days=3))  # outside the day, still waiting
    outbox = Outbox.from_settings(settings)

    assert not daily_digest(sessions, outbox, settings, now=TEN_IN_TOKYO - timedelta(hours=2))  # 08:00: not yet
    assert daily_digest(sessions, outbox, settings, now=TEN_IN_TOKYO)
    assert daily_digest(sessions, outbox, settings, now=TEN_IN_TOKYO + timedelta(hours=3))  # a second process
    with session_scope(sessions) as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.channel)).all()
        assert sorted(r.channel for r in rows) == ["slack", "teams"]  # one per channel, not one per call
        payload = rows[0].payload
    assert payload["date"] == "2026-12-01"
    counts = {k: payload[k] for k in ("questions", "abstained", "flagged", "approved", "waiting")}
    assert counts == {"questions": 3, "abstained": 1, "flagged": 1, "approved": 0, "waiting": 4}
    card, message = (
        teams_card(payload, "https://nemawashi.example"),
        slack_message(payload, "https://nemawashi.example"),
    )
    assert "日次サマリー" in card["title"] and "未回答 / not answered: 1" in card["text"]
    assert "質問 / questions: 3" in message["text"] and "https://nemawashi.example/review" in str(message["blocks"])


def test_no_digest_without_a_team_channel_or_when_switched_off(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", digest_hour=-1)
    engine = open_database(settings)
    sessions = make_sessionmaker(engine)
    assert not daily_digest(sessions, Outbox.from_settings(settings), settings, now=TEN_IN_TOKYO)
    engine.dispose()
