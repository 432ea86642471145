"""Publication of approved answers: the database is the truth, the vector store follows it (issue 19.1, 19.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from service.retrieval.approved import ApprovedAnswers
from service.retrieval.store import ChunkStore
from service.review.reconciler import reconcile
from tests.fakes import HashedNgramEmbedder
from tests.review.helpers import TRAINING, TRAINING_PARAPHRASE, ReviewApp

pytestmark = pytest.mark.timeout(900)


def _store_down(*_args: Any, **_kwargs: Any) -> Any:
    raise ConnectionError("chroma server unreachable")


def test_an_approval_the_store_could_not_take_is_reported_pending_and_published_by_the_reconciler(
    review: ReviewApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    sato = review.user("sato")
    item = review.item_of(review.ask(TRAINING)["id"])
    approved = review.app.state.triage.approved
    monkeypatch.setattr(approved, "publish", _store_down)
    decided = review.decide(item, sato, action="edit", answer="12月1日に始まります。")
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["published"] == [f"approved-{item}"] and body["publish_pending"] == [f"approved-{item}"]
    assert review.ask(TRAINING_PARAPHRASE)["mode"] != "approved"  # not in the store yet

    monkeypatch.undo()  # the store is back
    assert reconcile(review.sessions, approved).published == [f"approved-{item}"]
    again = review.ask(TRAINING_PARAPHRASE)
    assert (again["mode"], again["answer"]) == ("approved", "12月1日に始まります。")
    assert reconcile(review.sessions, approved).published == []  # nothing differs: nothing done


def test_a_withdrawal_the_store_missed_is_never_served_and_the_reconciler_removes_it(
    review: ReviewApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    sato = review.user("sato")
    item = review.item_of(review.ask(TRAINING)["id"])
    assert review.decide(item, sato, action="edit", answer="12月1日に始まります。").json()["publish_pending"] == []
    assert review.ask(TRAINING_PARAPHRASE)["mode"] == "approved"

    approved = review.app.state.triage.approved
    monkeypatch.setattr(approved, "withdraw", _store_down)
    withdrawn = review.decide(item, sato, action="withdraw", reason="日程が変わった")
    assert withdrawn.json()["publish_pending"] == [f"approved-{item}"]
    for _ in range(3):  # the store still matches it; the database says withdrawn
        answer = review.ask(TRAINING_PARAPHRASE)
        assert answer["mode"] != "approved" and "12月1日に始まります。" not in answer["answer"]

    monkeypatch.undo()
    assert reconcile(review.sessions, approved).withdrawn == [f"approved-{item}"]
    assert approved.version_of(f"approved-{item}") == -1


@pytest.fixture
def store(tmp_path: Path, fake_embedder: HashedNgramEmbedder) -> ApprovedAnswers:
    client = chromadb.PersistentClient(path=str(tmp_path), settings=ChromaSettings(anonymized_telemetry=False))
    return ApprovedAnswers(ChunkStore(client, "approved", fake_embedder))


def test_a_late_publication_of_an_older_version_never_overwrites_a_newer_one(store: ApprovedAnswers) -> None:
    assert store.publish(answer_id="approved-1", question="Q?", answer="version 3", lang="en", version=3)
    assert not store.publish(answer_id="approved-1", question="Q?", answer="version 2", lang="en", version=2)
    match = store.best_match("Q?")
    assert match is not None and (match.answer, match.version) == ("version 3", 3)
    assert not store.withdraw("approved-1", version=2)  # an older withdrawal: approved again since
    assert store.version_of("approved-1") == 3
    assert store.withdraw("approved-1", version=4)
    assert store.version_of("approved-1") == -1 and store.best_match("Q?") is None
