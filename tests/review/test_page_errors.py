"""The item page and the queue word every refusal in the page's language (the issue: a Japanese-only reader must
never meet an English sentence): a refused phrasing, a refused decision, a blank field and a hand-edited filter.
The API keeps its English messages for programs, with the refusal's code in `detail`."""

from __future__ import annotations

import html
import re

import pytest

from service.auth.deps import COOKIE_NAME
from service.auth.service import csrf_token
from service.db import session_scope
from service.review.schemas import ReviewProblem
from service.web.i18n import TEXTS
from tests.review.helpers import TRAINING, ReviewApp, add_item

pytestmark = pytest.mark.timeout(900)

ANSWER = "研修は4月から、営業時間内に週2回です。"
PHRASING = "業務時間中に受けられるスキル研修って、何をどんな日程でやるの？"
NOTICE = re.compile(r'<div id="notice" class="rv-notice rv-notice-\w+" role="alert">(.*?)</div>', re.S)


def _sign_in(review: ReviewApp, headers: dict[str, str]) -> str:
    token = headers["Authorization"].removeprefix("Bearer ")
    assert review.client.post("/review/login", data={"token": token}, follow_redirects=False).status_code == 303
    return csrf_token(review.client.cookies[COOKIE_NAME])


def _notice(page: str) -> str:
    found = NOTICE.search(page)
    assert found, page[:2000]
    return html.unescape(found.group(1)).strip()


def _latin_words(text: str, *allowed: str) -> list[str]:
    """Words in Latin letters, besides names the test expects (a reviewer's name, the time zone)."""
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in allowed]


def _version(review: ReviewApp, item: int) -> int:
    return int(review.client.get(f"/review/items/{item}/state").json()["version"])


def test_a_refused_phrasing_is_worded_in_the_page_language_never_in_the_apis_english(review: ReviewApp) -> None:
    sato = review.user("sato")
    item = review.item_of(review.ask(TRAINING)["id"])
    assert review.decide(item, sato, action="edit", answer=ANSWER).status_code == 200
    csrf = _sign_in(review, sato)

    def post(lang: str, text: str, version: int | None = None) -> str:
        form = {"csrf": csrf, "version": version or _version(review, item), "back": "", "phrasing": text}
        response = review.client.post(f"/review/items/{item}/phrasings?lang={lang}", data=form)
        assert response.status_code in (409, 422), response.text[:500]
        assert f'<html lang="{lang}">' in response.text
        return _notice(response.text)

    wrong = post("ja", "Who runs the reskilling training?")
    assert wrong.startswith("言い換えは日本語で書いてください（承認済みの回答は同じ言語の質問にだけ使われます）")
    assert not _latin_words(wrong)
    duplicate = post("ja", TRAINING)
    assert "この言い換えはすでに登録されています" in duplicate and not _latin_words(duplicate)
    seen = _version(review, item)
    assert review.decide(item, review.user("suzuki"), action="assign", assignee="sato").status_code == 200
    stale = post("ja", PHRASING, seen)
    assert re.search(
        r"この項目は suzuki さんが \d{4}-\d\d-\d\d \d\d:\d\d JST に先に変更しました（現在のバージョン \d+）。"
        "再読み込みしてから、もう一度追加してください",
        stale,
    ), stale
    assert not _latin_words(stale, "suzuki", "JST")  # nor "item 2 changed since version 3", nor a UTC time
    assert "+00:00" not in stale

    assert post("en", "Who runs the reskilling training?").startswith("Write the phrasing in Japanese:")
    assert post("en", TRAINING).startswith("This phrasing is already listed")
    assert re.match(r"suzuki changed this item at \d{4}-\d\d-\d\d \d\d:\d\d JST", post("en", PHRASING, seen))

    pending = add_pending(review)
    refused = review.client.post(
        f"/review/items/{pending}/phrasings?lang=ja",
        data={"csrf": csrf, "version": _version(review, pending), "back": "", "phrasing": PHRASING},
    )
    notice = _notice(refused.text)
    assert refused.status_code == 422 and "承認済みの回答がありません" in notice and not _latin_words(notice)


def add_pending(review: ReviewApp, **fields: object) -> int:
    with session_scope(review.sessions) as session:
        return add_item(session, "研修はいつ？", **fields).id  # type: ignore[arg-type]


def test_a_refused_decision_and_a_blank_field_are_worded_in_the_page_language(review: ReviewApp) -> None:
    csrf = _sign_in(review, review.user("sato"))
    pending, abstained = add_pending(review), add_pending(review, mode="abstain")

    def post(lang: str, item: int, **fields: object) -> str:
        form = {"csrf": csrf, "version": _version(review, item), "back": "", **fields}
        response = review.client.post(f"/review/items/{item}?lang={lang}", data=form)
        assert response.status_code == 422, response.text[:500]
        assert f'<html lang="{lang}">' in response.text
        return _notice(response.text)

    blank = post("ja", pending, action="edit", answer="   ")
    assert blank == "回答を入力してください。"  # not "answer: Value error, must not be blank"
    assert post("ja", pending, action="reject", reason="") == "理由を入力してください。"
    too_long = post("ja", pending, action="edit", answer="あ" * 8001)  # 72 KB urlencoded: still read, then named
    assert too_long == "回答は 8,000 文字以内で入力してください。"
    withdraw = post("ja", pending, action="withdraw", reason="古い")
    assert withdraw.startswith("この項目は「未対応」のため、「承認を取り消す」はできません")  # not "cannot withdraw…"
    no_draft = post("ja", abstained, action="approve")
    assert no_draft.startswith("この項目には承認できる下書きがありません") and "「編集して承認」" in no_draft
    unknown = post("ja", pending, action="assign", assignee="nobody")
    assert unknown.startswith("「nobody」という有効なレビュー担当者はいません")
    for notice in (blank, too_long, withdraw, no_draft):
        assert not _latin_words(notice), notice

    assert post("en", pending, action="edit", answer="   ") == "Write the answer."
    assert post("en", pending, action="withdraw", reason="old").startswith("This item is “pending”, so “Withdraw")
    assert post("en", abstained, action="approve").startswith("This item has no draft to approve")
    assert review.client.get(f"/review/items/{pending}/state").json()["status"] == "pending"


def test_the_api_keeps_its_english_messages_and_gives_the_code(review: ReviewApp) -> None:
    sato = review.user("sato")
    pending = add_pending(review)
    withdrawn = review.decide(pending, sato, action="withdraw", reason="old")
    assert withdrawn.status_code == 422
    body = withdrawn.json()
    assert body["error"] == f"cannot withdraw item {pending}: it is pending"
    assert body["detail"]["code"] == "not_allowed_from" and body["detail"]["status"] == "pending"
    assert body["detail"]["allowed_from"] == ["approved"]
    blank = review.decide(pending, sato, action="edit", answer="   ")
    assert blank.status_code == 422 and "must not be blank" in blank.text


def test_a_hand_edited_queue_filter_is_named_in_the_page_language_and_the_others_still_apply(
    review: ReviewApp,
) -> None:
    with session_scope(review.sessions) as session:
        add_item(session, "ウィジェットからの質問", source="widget", confidence=0.4)
        add_item(session, "APIからの質問", source="api", confidence=0.4)
    _sign_in(review, review.user("sato"))
    page = review.client.get("/review", params={"min_confidence": "abc", "source": "api", "lang": "ja"})
    assert page.status_code == 200 and '<html lang="ja">' in page.text
    notice = _notice(page.text)
    assert notice == "絞り込み条件（確信度）が正しくないため、その条件を外して表示しています。"
    assert "Input should be" not in page.text and "min_confidence:" not in page.text
    assert "APIからの質問" in page.text and "ウィジェットからの質問" not in page.text  # the source filter still applies
    both = review.client.get("/review", params={"since": "yesterday", "sort": "best", "lang": "ja"})
    assert _notice(both.text) == "絞り込み条件（開始日、並び順）が正しくないため、その条件を外して表示しています。"
    assert "ウィジェットからの質問" in both.text and "APIからの質問" in both.text
    english = review.client.get("/review", params={"max_confidence": "2", "lang": "en"})
    assert _notice(english.text) == "The filters (Confidence) could not be used, so the list is shown without them."


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_refusal_code_has_words_in_both_languages(lang: str) -> None:
    refusals = TEXTS[lang]["refusals"]
    assert {code.value for code in ReviewProblem} <= set(refusals)
    for key in ("blank", "too_long", "invalid", "form_stale", "stale", "unknown"):
        assert refusals[key]
