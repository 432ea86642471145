"""An asker's follow-up link shows what reviewers decided: corrected, rejected, answered by the team."""

from __future__ import annotations

from typing import Any

from service.triage.drafting import ABSTAIN_TEXT
from service.triage.models import Question
from tests.followups.conftest import token_of
from tests.review.helpers import ReviewApp

DRAFTED = "リスキリング研修はいつ始まりますか？"
OFF_TOPIC = "パスワードの有効期限が切れてログインできません"  # verbatim from knowledge/off_topic.yaml: abstains


def followup(app: ReviewApp, url: str) -> dict[str, Any]:
    response = app.client.get(url)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def drafted(app: ReviewApp, question: str = DRAFTED) -> dict[str, Any]:
    asked = app.ask(question)
    assert asked["mode"] in ("llm", "extractive"), asked["mode"]
    return asked


def test_ask_returns_a_followup_link_that_shows_the_draft_until_reviewed(asker_app: ReviewApp) -> None:
    asked = drafted(asker_app)
    assert asked["followup_url"].startswith("/v1/followups/")
    assert len(token_of(asked["followup_url"])) >= 43  # 256 random bits, URL-safe

    shown = followup(asker_app, asked["followup_url"])

    assert shown["state"] == "draft"
    assert shown["question"] == DRAFTED
    assert shown["answer"] == asked["draft"]
    assert [c["url"] for c in shown["citations"]] == [c["url"] for c in asked["citations"]]
    assert shown["changed"] is False and shown["changed_at"] is None and shown["notice"] is None


def test_only_the_hash_of_the_token_is_stored(asker_app: ReviewApp) -> None:
    asked = drafted(asker_app)
    with asker_app.sessions() as session:
        stored = session.query(Question).filter_by(public_id=asked["id"]).one().followup_hash
    assert stored and token_of(asked["followup_url"]) not in stored and len(stored) == 64


def test_an_edited_and_approved_answer_shows_as_corrected_with_the_new_text(asker_app: ReviewApp) -> None:
    asked = drafted(asker_app)
    reviewer = asker_app.user("tanaka")
    item = asker_app.item_of(asked["id"])
    edited = "研修は4月1日に始まります。詳しくは人事部の案内をご覧ください。"

    assert asker_app.decide(item, reviewer, action="edit", answer=edited).status_code == 200
    shown = followup(asker_app, asked["followup_url"])

    assert shown["state"] == "corrected"
    assert shown["answer"] == edited
    assert shown["changed"] is True and shown["changed_at"] is not None
    assert shown["notice"].startswith("回答が更新されました")
    assert "tanaka" not in str(shown)  # no reviewer names for askers


def test_an_approved_draft_as_drafted_shows_as_approved(asker_app: ReviewApp) -> None:
    asked = drafted(asker_app)
    item = asker_app.item_of(asked["id"])

    assert asker_app.decide(item, asker_app.user("sato"), action="approve").status_code == 200
    shown = followup(asker_app, asked["followup_url"])

    assert (shown["state"], shown["answer"], shown["changed"]) == ("approved", asked["draft"], True)


def test_a_rejected_draft_shows_rejected_with_the_public_reply_never_the_draft(asker_app: ReviewApp) -> None:
    asked, other = drafted(asker_app), drafted(asker_app, "リスキリング研修の内容を教えてください。")
    reviewer = asker_app.user("suzuki")
    reply = "この件は人事部から個別にご連絡します。"

    asker_app.decide(asker_app.item_of(asked["id"]), reviewer, action="reject", reason="古い資料", reply=reply)
    asker_app.decide(asker_app.item_of(other["id"]), reviewer, action="reject", reason="内部メモ: 古い資料")
    with_reply, without = followup(asker_app, asked["followup_url"]), followup(asker_app, other["followup_url"])

    assert (with_reply["state"], with_reply["answer"], with_reply["citations"]) == ("rejected", reply, [])
    assert without["state"] == "rejected"
    assert other["draft"] not in without["answer"] and "内部メモ" not in without["answer"]


def test_a_withdrawn_answer_is_no_longer_shown(asker_app: ReviewApp) -> None:
    asked = drafted(asker_app)
    reviewer, item = asker_app.user("ito"), asker_app.item_of(asked["id"])
    asker_app.decide(item, reviewer, action="edit", answer="研修は4月に始まります。")

    asker_app.decide(item, reviewer, action="withdraw", reason="日程が変わった")
    shown = followup(asker_app, asked["followup_url"])

    assert shown["state"] == "rejected" and "4月" not in shown["answer"]


def test_an_abstained_question_answered_by_a_reviewer_shows_the_teams_reply(asker_app: ReviewApp) -> None:
    asked = asker_app.ask(OFF_TOPIC)
    assert asked["mode"] == "abstain"
    assert followup(asker_app, asked["followup_url"])["state"] == "sent_to_team"
    item = asker_app.item_of(asked["id"])
    reviewer = asker_app.user("kato")
    reply = "来月のメニューは総務部のポータルに掲載されます。"

    assert asker_app.decide(item, reviewer, action="approve").status_code == 422  # nothing to approve as drafted
    assert asker_app.decide(item, reviewer, action="edit", answer=reply).status_code == 200
    shown = followup(asker_app, asked["followup_url"])

    assert (shown["state"], shown["answer"], shown["changed"]) == ("answered_by_team", reply, True)
    assert shown["answer"] != ABSTAIN_TEXT["ja"]


def test_a_wrong_token_is_404_exactly_like_a_missing_one(asker_app: ReviewApp) -> None:
    asked = drafted(asker_app)
    token = token_of(asked["followup_url"])
    tampered = ("A" if token[0] != "A" else "B") + token[1:]

    responses = [asker_app.client.get(f"/v1/followups/{t}") for t in (tampered, "x", "a" * 500)]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert len({r.text for r in responses}) == 1


def test_check_returns_every_state_in_one_request_and_304_when_unchanged(asker_app: ReviewApp) -> None:
    first, second = drafted(asker_app), asker_app.ask(OFF_TOPIC)
    tokens = [token_of(first["followup_url"]), "not-a-token", token_of(second["followup_url"])]

    checked = asker_app.client.post("/v1/followups/check", json={"tokens": tokens})
    again = asker_app.client.post(
        "/v1/followups/check", json={"tokens": tokens}, headers={"If-None-Match": checked.headers["etag"]}
    )
    asker_app.decide(asker_app.item_of(first["id"]), asker_app.user("mori"), action="edit", answer="新しい回答です。")
    after = asker_app.client.post(
        "/v1/followups/check", json={"tokens": tokens}, headers={"If-None-Match": checked.headers["etag"]}
    )

    results = checked.json()["results"]
    assert [r and r["state"] for r in results] == ["draft", None, "sent_to_team"]
    assert again.status_code == 304 and again.content == b""
    assert after.status_code == 200 and after.json()["results"][0]["state"] == "corrected"


def test_check_takes_at_most_fifty_tokens(asker_app: ReviewApp) -> None:
    response = asker_app.client.post("/v1/followups/check", json={"tokens": ["t"] * 51})
    assert response.status_code == 422 and "50" in response.json()["error"]


def test_followup_lookups_are_rate_limited_per_client(asker_app: ReviewApp) -> None:
    limit = asker_app.settings.followup_rate_limit_per_minute
    codes = [asker_app.client.get("/v1/followups/nothing").status_code for _ in range(limit + 1)]
    assert codes[:limit] == [404] * limit
    limited = asker_app.client.get("/v1/followups/nothing")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_the_sse_done_event_carries_the_followup_link(asker_app: ReviewApp) -> None:
    with asker_app.client.stream("POST", "/v1/ask", json={"question": DRAFTED, "stream": True}) as response:
        body = "".join(response.iter_text())
    done = body.split("event: done", 1)[1]
    assert '"followup_url": "/v1/followups/' in done or '"followup_url":"/v1/followups/' in done


def test_an_answer_id_is_not_a_followup_token(asker_app: ReviewApp) -> None:
    """The answer id travels in feedback and history; knowing it must show nothing."""
    asked = drafted(asker_app)
    assert asker_app.client.get(f"/v1/followups/{asked['id']}").status_code == 404
