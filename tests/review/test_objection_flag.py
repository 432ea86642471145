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

    decided = review.decide(neutral, sato, action="relabel", is_objection=False)  # the word alone, no label
    assert decided.status_code == 200, decided.text
    assert decided.json()["item"]["is_objection"] is False and decided.json()["item"]["root_cause"] is None
    assert decided.json()["retrain"] is False  # the classifier learns nothing from it
    assert _objections(review, sato) == 1
    audit = review.detail(neutral, sato)["audit"][-1]
    assert audit["action"] == "relabel" and audit["after"] == {"is_objection": False}
    nothing = review.decide(neutral, sato, action="relabel")
    assert nothing.status_code == 422 and "is_objection" in nothing.text

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

    shown = {"root_cause": "process", "shown_root_cause": "process", "shown_is_objection": "true"}
    unchanged = review.client.post(f"/review/items/{item}", data={**form, **shown, "is_objection": "true"})
    assert unchanged.status_code == 422 and "根本原因か「異議かどうか」を変えてから" in unchanged.text
    saved = review.client.post(f"/review/items/{item}", data={**form, **shown, "is_objection": "false"})
    assert saved.status_code == 200, saved.text
    assert review.detail(item, sato)["item"]["root_cause"] is None  # the label shown was not a correction
    assert re.search(r'<span id="stance">異議ではない質問</span>', saved.text)
    assert "False" not in saved.text  # the audit log says it in words, not as a developer's boolean
    assert _objections(review, sato) == 0
    english = review.client.get(f"/review/items/{item}?lang=en").text
    assert '<span id="stance">a question, not an objection</span>' in english

    bad = review.client.post(
        f"/review/items/{item}", data={**form, "version": version + 1, "root_cause": "process", "is_objection": "maybe"}
    )
    assert bad.status_code == 422 and "is_objection" in bad.text
