"""Reviewers add other phrasings of an approved answer (issue 12.2): /v1/ask reuses the answer for them, they follow
the answer when it is withdrawn, bad input is a 4xx that names the fix, and the item page has the form."""

from __future__ import annotations

import re

import pytest

from service.auth.deps import COOKIE_NAME
from service.auth.service import csrf_token
from tests.review.helpers import TRAINING, ReviewApp

pytestmark = pytest.mark.timeout(900)

# Asks what TRAINING asks in words it shares little with: e5 puts it near, the paraphrase check does not reuse it.
PHRASING = "業務時間中に受けられるスキル研修って、何をどんな日程でやるの？"


def _approved(review: ReviewApp) -> tuple[int, dict[str, str], str]:
    reviewer = review.user("sato")
    item = review.item_of(review.ask(TRAINING)["id"])
    decided = review.decide(item, reviewer, action="edit", answer="研修は4月から、営業時間内に週2回です。")
    assert decided.status_code == 200, decided.text
    return item, reviewer, decided.json()["item"]["published_answer"]


def _add(review: ReviewApp, item: int, headers: dict[str, str], text: str, version: int | None = None) -> object:
    if version is None:
        version = review.detail(item, headers)["item"]["version"]
    return review.client.post(
        f"/v1/review/items/{item}/phrasings", headers=headers, json={"text": text, "version": version}
    )


def test_an_added_phrasing_gets_the_approved_answer_and_leaves_with_it(review: ReviewApp) -> None:
    item, sato, answer = _approved(review)
    assert review.ask(PHRASING)["mode"] != "approved"  # not recognised on its own

    added = _add(review, item, sato, PHRASING)
    assert added.status_code == 201, added.text  # type: ignore[attr-defined]
    phrasing_item = added.json()["phrasing"]["item_id"]  # type: ignore[attr-defined]
    reply = review.ask(PHRASING)
    assert reply["mode"] == "approved" and reply["answer"] == answer
    detail = review.detail(item, sato)
    assert [p["text"] for p in detail["phrasings"]] == [PHRASING]
    assert detail["audit"][-1]["action"] == "phrasing" and detail["audit"][-1]["after"] == {"phrasing": PHRASING}
    # Not a question anyone asked: the reports do not count it.
    report = review.client.get("/v1/reports/objections", headers=sato).json()
    assert report["rates"]["questions"] == 3  # TRAINING once and PHRASING twice; the added phrasing is not one

    withdrawn = review.decide(item, sato, action="withdraw", reason="研修日程が変わった")
    assert withdrawn.status_code == 200 and phrasing_item in withdrawn.json()["applied_to"]
    assert review.ask(PHRASING)["mode"] != "approved"
    assert review.detail(phrasing_item, sato)["item"]["status"] == "withdrawn"


def test_a_phrasing_that_cannot_be_added_is_a_4xx_naming_the_fix(review: ReviewApp) -> None:
    item, sato, _ = _approved(review)
    version = review.detail(item, sato)["item"]["version"]
    cases = {
        "What does the reskilling training cover?": (422, "write the phrasing in ja"),
        TRAINING: (422, "already matched"),
        "   ": (422, "blank"),
        "あ" * 2001: (422, "2000"),
    }
    for text, (status, words) in cases.items():
        response = _add(review, item, sato, text, version)
        assert response.status_code == status and words in response.text, (text[:20], response.text)  # type: ignore[attr-defined]
    stale = _add(review, item, sato, PHRASING, version - 1)
    assert stale.status_code == 409 and "reload" in stale.text  # type: ignore[attr-defined]
    pending = review.item_of(review.ask("委託先のスタッフは何人ですか？")["id"])
    refused = _add(review, pending, sato, "委託先って何人体制？")
    assert refused.status_code == 422 and "approve it" in refused.text  # type: ignore[attr-defined]
    assert (
        review.client.post(f"/v1/review/items/{item}/phrasings", json={"text": PHRASING, "version": 1}).status_code
        == 401
    )
    assert review.detail(item, sato)["phrasings"] == []


def test_the_item_page_adds_a_phrasing_and_keeps_a_refused_one(review: ReviewApp) -> None:
    item, sato, _ = _approved(review)
    token = sato["Authorization"].removeprefix("Bearer ")
    assert review.client.post("/review/login", data={"token": token}, follow_redirects=False).status_code == 303
    session_id = review.client.cookies[COOKIE_NAME]
    page = review.client.get(f"/review/items/{item}").text
    assert 'id="phrasing-form"' in page and "この回答で答える言い換え" in page
    version = review.client.get(f"/review/items/{item}/state").json()["version"]
    form = {"csrf": csrf_token(session_id), "version": version, "back": ""}

    wrong = review.client.post(f"/review/items/{item}/phrasings", data={**form, "phrasing": "Who runs the training?"})
    assert wrong.status_code == 422 and 'value="Who runs the training?"' in wrong.text  # the typed text is kept
    forged = review.client.post(
        f"/review/items/{item}/phrasings", data={**form, "csrf": "0" * 64, "phrasing": PHRASING}
    )
    assert forged.status_code == 403

    added = review.client.post(f"/review/items/{item}/phrasings", data={**form, "phrasing": PHRASING})
    assert added.status_code == 200 and "言い換えを追加しました" in added.text
    listed = re.search(r'<ul id="phrasing-list">(.*?)</ul>', added.text, re.S)
    assert listed and PHRASING in listed.group(1)
    english = review.client.get(f"/review/items/{item}?lang=en").text
    assert "Other phrasings answered with this answer" in english
