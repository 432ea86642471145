"""Reviewers answer the unanswerable from the item page, and the asker's follow-up link shows their reply."""

from __future__ import annotations

from typing import Any

from service.auth.deps import COOKIE_NAME
from service.auth.service import csrf_token
from tests.followups.test_routes import DRAFTED, OFF_TOPIC, followup
from tests.review.helpers import ReviewApp


def signed_in(app: ReviewApp, name: str = "sato") -> str:
    token = app.user(name)["Authorization"].removeprefix("Bearer ")
    assert app.client.post("/review/login", data={"token": token}, follow_redirects=False).status_code == 303
    return app.client.cookies[COOKIE_NAME]  # the session id the forms' CSRF value derives from


def send_form(app: ReviewApp, token: str, item: int, **fields: Any) -> str:
    state = app.client.get(f"/review/items/{item}/state").json()
    form = {"csrf": csrf_token(token), "version": state["version"], "back": "", **fields}
    response = app.client.post(f"/review/items/{item}", data=form)
    assert response.status_code == 200, response.text
    return response.text


def test_an_abstained_item_offers_reply_to_asker_in_japanese_and_english(asker_app: ReviewApp) -> None:
    item = asker_app.item_of(asker_app.ask(OFF_TOPIC)["id"])
    signed_in(asker_app)

    japanese = asker_app.client.get(f"/review/items/{item}").text
    english = asker_app.client.get(f"/review/items/{item}", params={"lang": "en"}).text

    assert 'id="reply-button"' in japanese and "回答を送る" in japanese and 'id="approve-form"' not in japanese
    assert "Reply to asker" in english and 'aria-describedby="reply-help"' in english


def test_a_drafted_item_keeps_edit_and_approve_instead(asker_app: ReviewApp) -> None:
    item = asker_app.item_of(asker_app.ask(DRAFTED)["id"])
    signed_in(asker_app)
    page = asker_app.client.get(f"/review/items/{item}").text
    assert 'id="reply-button"' not in page and 'id="approve-form"' in page


def test_a_reply_sent_from_the_page_reaches_the_askers_followup(asker_app: ReviewApp) -> None:
    asked = asker_app.ask(OFF_TOPIC)
    item = asker_app.item_of(asked["id"])
    token = signed_in(asker_app)
    reply = "パスワードの再設定は情報システム部のポータルから行えます。"

    send_form(asker_app, token, item, action="edit", answer=reply)
    shown = followup(asker_app, asked["followup_url"])

    assert (shown["state"], shown["answer"]) == ("answered_by_team", reply)
    assert shown["notice"].startswith("回答が更新されました")


def test_a_rejection_from_the_page_carries_its_public_reply_but_not_its_reason(asker_app: ReviewApp) -> None:
    asked = asker_app.ask(DRAFTED)
    token = signed_in(asker_app)

    item = asker_app.item_of(asked["id"])
    send_form(asker_app, token, item, action="reject", reason="内部: 資料が古い", reply="確認中です。")
    shown = followup(asker_app, asked["followup_url"])

    assert (shown["state"], shown["answer"]) == ("rejected", "確認中です。")
    assert "内部" not in str(shown)


def test_a_reply_to_an_abstained_question_stays_with_its_asker_unless_the_reviewer_publishes_it(
    asker_app: ReviewApp,
) -> None:
    token = signed_in(asker_app)
    reply = "パスワードの再設定は情報システム部のポータルから行えます。"
    first = asker_app.ask(OFF_TOPIC)
    item = asker_app.item_of(first["id"])
    send_form(asker_app, token, item, action="edit", answer=reply, reuse_choice="1")  # box left unticked

    assert followup(asker_app, first["followup_url"])["answer"] == reply  # the asker has it
    assert asker_app.ask(OFF_TOPIC)["mode"] != "approved"  # nobody else gets it word for word
    assert asker_app.client.get(f"/kb/approved-{item}").status_code == 404  # and it is no public FAQ page

    second = asker_app.item_of(asker_app.ask(OFF_TOPIC)["id"])
    send_form(asker_app, token, second, action="edit", answer=reply, reuse_choice="1", reuse="1")
    assert asker_app.ask(OFF_TOPIC)["mode"] == "approved"
    assert asker_app.client.get(f"/kb/approved-{second}").status_code == 200
