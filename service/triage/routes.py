"""HTTP: POST /v1/ask (JSON or Server-Sent Events) and POST /v1/feedback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import ServerSentEvent

from service.auth.deps import AskerDep, AskerEmailDep
from service.db import session_scope
from service.deps import SessionDep, SessionsDep
from service.errors import NemawashiError, error_responses
from service.retrieval.service import clean_query
from service.sse import KeepAliveEventSource
from service.triage import service
from service.triage.deps import TriageDep
from service.triage.followup import check_history
from service.triage.models import QuestionSource
from service.triage.schemas import AskRequest, AskResponse, FeedbackRequest, FeedbackResponse

router = APIRouter(tags=["ask"])


def _sse(events: Iterator[tuple[str, dict[str, object]]]) -> Iterator[ServerSentEvent]:
    try:
        for name, payload in events:
            yield ServerSentEvent(event=name, raw_data=json.dumps(payload, ensure_ascii=False))
    except NemawashiError as exc:
        yield ServerSentEvent(event="error", raw_data=json.dumps({"error": exc.message}, ensure_ascii=False))


@router.post(
    "/v1/ask",
    response_model=AskResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or events meta/delta/done"},
        **error_responses(413, 422, 429, 503),
    },
)
async def ask(
    body: AskRequest, request: Request, triage: TriageDep, sessions: SessionsDep, asker: AskerDep, email: AskerEmailDep
) -> object:
    """Answer a question with citations and a root cause; every draft goes to the review queue."""
    with session_scope(sessions) as session:  # a turn of another conversation is a 422, before any work
        check_history(session, conversation_id=body.conversation_id, history=body.history)
    asked: dict[str, Any] = {  # one question, the same for the stream and the JSON answer
        "question": body.question,
        "source": QuestionSource(body.source),
        "department": body.department,
        "asker": asker,
        "asker_email": email,
        "conversation_id": body.conversation_id,
        "history": body.history,
    }
    if body.stream or "text/event-stream" in request.headers.get("accept", ""):
        clean_query(body.question, max_chars=triage.settings.max_query_chars)  # a 422 before the stream starts
        return KeepAliveEventSource(_sse(service.ask_events(triage, sessions, **asked)))
    return await run_in_threadpool(service.ask, triage, sessions, **asked)


@router.post("/v1/feedback", response_model=FeedbackResponse, responses=error_responses(404, 413, 422))
def feedback(body: FeedbackRequest, session: SessionDep) -> FeedbackResponse:
    """Thumbs up or down on an answer, with an optional comment, kept for reviewers."""
    service.record_feedback(session, answer_id=body.id, helpful=body.helpful, comment=body.comment)
    return FeedbackResponse(id=body.id)
