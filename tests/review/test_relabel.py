"""Relabels teach the local classifier at once, without a restart."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.review.helpers import ReviewApp
from tests.test_api import wait_ready

# The first test of a session also pays for indexing the knowledge base (a session fixture).
pytestmark = pytest.mark.timeout(900)

COMMENT = "研修の時間って残業代出るの？"
SIMILAR = "研修時間に残業代はつきますか？"


def test_a_relabel_changes_the_local_classifiers_answer_for_a_similar_comment_without_restart(
    review: ReviewApp,
) -> None:
    local = review.app.state.triage.classifier.local
    assert local.classify(SIMILAR).primary == "job_fear"  # what the taxonomy examples alone teach
    asked = review.ask(COMMENT)
    assert asked["root_cause"]["primary"] == "job_fear"
    decided = review.decide(review.item_of(asked["id"]), review.user("sato"), action="relabel", root_cause="cost")
    assert decided.status_code == 200 and decided.json()["retrain"] is True
    # The retrain runs after the response; the test client returns once it has finished.
    assert review.app.state.triage.classifier.local is local
    assert review.ask(SIMILAR)["root_cause"]["primary"] == "cost"
    assert (COMMENT, "cost") in local.examples


def test_a_relabel_to_a_label_outside_the_taxonomy_is_refused(review: ReviewApp) -> None:
    asked = review.ask(COMMENT)
    refused = review.decide(review.item_of(asked["id"]), review.user("sato"), action="relabel", root_cause="morale")
    assert refused.status_code == 422 and "job_fear" in refused.json()["error"]


def test_relabels_still_apply_after_a_restart(review: ReviewApp) -> None:
    asked = review.ask(COMMENT)
    decided = review.decide(review.item_of(asked["id"]), review.user("sato"), action="relabel", root_cause="cost")
    assert decided.status_code == 200
    restarted = create_app(review.settings)
    with TestClient(restarted) as client:
        wait_ready(client)
        assert restarted.state.triage.classifier.local.classify(SIMILAR).primary == "cost"


def test_a_relabel_made_by_one_process_reaches_another_within_seconds_and_a_running_job_keeps_its_version(
    review: ReviewApp,
) -> None:
    other = create_app(review.settings.model_copy(update={"classifier_sync_interval_s": 0.5}))  # a second process
    with TestClient(other) as client:
        wait_ready(client)
        local = other.state.triage.classifier.local
        job_classifier = local.pinned()  # what a bulk job started now classifies with
        assert local.classify(SIMILAR).primary == "job_fear"
        asked = review.ask(COMMENT)
        decided = review.decide(review.item_of(asked["id"]), review.user("sato"), action="relabel", root_cause="cost")
        assert decided.status_code == 200
        deadline = time.monotonic() + 30
        while local.classify(SIMILAR).primary != "cost" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert local.classify(SIMILAR).primary == "cost" and local.version > 0
        assert job_classifier.classify(SIMILAR).primary == "job_fear" and job_classifier.version == 0
