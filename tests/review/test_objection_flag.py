"""A reviewer's word on whether a comment objects or only asks (issue 16.9): the reports count only objections as
objections, the item page shows the word in the page's language, and the audit log records it."""

from __future__ import annotations

import re

import pytest

from service.auth.deps import COOKIE_NAME
from service.auth.service import csrf_token
from tests.review.helpers import ReviewApp

pytestmark = pytest.mark.timeout(900)

# A neutral question on a topic: the offline classifier gives it a root cause and so calls it an objection.
NEUTRAL = "CRMの入力ルールは誰が決めますか？"
WORRY = "外注したら私たちの仕事はなくなるんですか？"


def _objections(review: ReviewApp, headers: dict[str, str]) -> int:
    report = review.client.get("/v1/reports/objections", headers=headers)
    assert report.status_code == 200, report.text
    return int(report.json()["rates"]["objections"])


def test_a_question_a_reviewer_marks_as_not_an_objection_leaves_the_objection_count(review: ReviewApp) -> None:
    sato = review.user("sato")
    neutral = review.item_of(review.ask(NEUTRAL)["id"])
    review.ask(WORRY)
    assert _objections(review, sato) == 2  # the classifier's flag: both count

    decided = review.decide(neutral, sato, action="relabel", root_cause="process", is_objection=False)
    assert decided.status_code == 200, decided.text
    assert decided.json()["item"]["is_objection"] is False
    assert _objections(review, sato) == 1
    audit = review.detail(neutral, sato)["audit"][-1]
    assert audit["action"] == "relabel" and audit["after"]["is_objection"] is False

    # A relabel that says nothing about it keeps the reviewer's word.
    again = review.decide(neutral, sato, action="relabel", root_cause="other")
    assert again.status_code == 200 and again.json()["item"]["is_objection"] is False
    assert _objections(review, sato) == 1


def test_the_item_page_shows_and_sets_the_word_in_the_pages_language(review: ReviewApp) -> None:
    sato = review.user("sato")
    item = review.item_of(review.ask(NEUTRAL)["id"])
    token = sato["Authorization"].removeprefix("Bearer ")
    assert review.client.post("/review/login", data={"token": token}, follow_redirects=False).status_code == 303
    session_id = review.client.cookies[COOKIE_NAME]
    page = review.client.get(f"/review/items/{item}").text
    assert re.search(r'<span id="stance">異議・懸念</span>', page)
    version = review.client.get(f"/review/items/{item}/state").json()["version"]
    form = {"csrf": csrf_token(session_id), "version": version, "back": "", "action": "relabel"}

    saved = review.client.post(f"/review/items/{item}", data={**form, "root_cause": "process", "is_objection": "false"})
    assert saved.status_code == 200, saved.text
    assert re.search(r'<span id="stance">異議ではない質問</span>', saved.text)
    assert "False" not in saved.text  # the audit log says it in words, not as a developer's boolean
    assert _objections(review, sato) == 0
    english = review.client.get(f"/review/items/{item}?lang=en").text
    assert '<span id="stance">a question, not an objection</span>' in english

    bad = review.client.post(
        f"/review/items/{item}", data={**form, "version": version + 1, "root_cause": "process", "is_objection": "maybe"}
    )
    assert bad.status_code == 422 and "is_objection" in bad.text
