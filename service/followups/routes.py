"""HTTP: GET /v1/followups/{token} and POST /v1/followups/check — no credential but the link itself."""

from __future__ import annotations

import hashlib
import logging
import re

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from service.config import Settings
from service.deps import SessionDep, SettingsDep
from service.errors import error_responses
from service.followups import service
from service.followups.schemas import FollowupCheck, FollowupCheckResult, FollowupOut
from service.logging import get_logger
from service.ratelimit import Limiter, make_limiter
from service.triage.links import FOLLOWUP_PATH
from service.web.security import client_key

router = APIRouter(tags=["followups"])
log = get_logger("followups")
WINDOW_S = 60.0
# The link is the credential: whatever logs request paths must not keep it.
_TOKEN_IN_PATH = re.compile(re.escape(FOLLOWUP_PATH) + r"(?!check\b)[^\s?\"'/]+")
_HEADERS = {"Cache-Control": "private, no-cache", "Referrer-Policy": "no-referrer"}


class TokenRedactingFilter(logging.Filter):
    """Replaces follow-up tokens in access-log lines (uvicorn's, or any logger it is added to) with "…"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) if isinstance(a, str) else a for a in record.args)
        record.msg = _redacted(record.msg) if isinstance(record.msg, str) else record.msg
        return True


def _redacted(text: str) -> str:
    return _TOKEN_IN_PATH.sub(FOLLOWUP_PATH + "…", text)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the routes with their own per-client limit, and keep tokens out of the access log."""
    app.state.followup_limiter = make_limiter(  # the per-client limit on look-ups, shared through Redis if configured
        settings.redis_url, "followups", settings.followup_rate_limit_per_minute, window_s=WINDOW_S
    )
    app.include_router(router)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, TokenRedactingFilter) for f in access.filters):
        access.addFilter(TokenRedactingFilter())


def _too_many(request: Request) -> JSONResponse | None:
    """A 429 with Retry-After once this client passes its per-minute limit, like /v1/ask."""
    limiter: Limiter = request.app.state.followup_limiter
    wait = limiter.hit(client_key(request.scope))
    if wait is None:
        return None
    log.info("followup.rate_limited", retry_after=wait)
    return JSONResponse(
        {
            "error": f"Too many follow-up checks from this client: please wait {wait} seconds, then try again.",
            "detail": {"retry_after": wait, "limit_per_minute": limiter.limit},
        },
        status_code=429,
        headers={"Retry-After": str(wait)},
    )


def _conditional(request: Request, body: str) -> Response:
    """The JSON with a strong ETag; 304 without a body when the client already holds this version."""
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    headers = {**_HEADERS, "ETag": etag}
    held = {t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")}
    if etag in held or "*" in held:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.post(
    "/v1/followups/check",
    response_model=FollowupCheckResult,
    responses={
        304: {"description": "Nothing changed since the ETag sent in If-None-Match"},
        **error_responses(413, 422, 429),
    },
)
def check(body: FollowupCheck, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The current state of up to 50 of a browser's questions in one request; send the last ETag as If-None-Match."""
    if limited := _too_many(request):
        return limited
    results = service.check(session, tokens=body.tokens, immediate=settings.answer_policy == "immediate")
    return _conditional(request, FollowupCheckResult(results=results).model_dump_json())


@router.get(
    "/v1/followups/{token}",
    response_model=FollowupOut,
    responses={304: {"description": "Unchanged since If-None-Match"}, **error_responses(404, 422, 429)},
)
def followup(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """A question's current answer: reviewed, corrected, answered by the team, or still a draft."""
    if limited := _too_many(request):
        return limited
    found = service.followup(session, token=token, immediate=settings.answer_policy == "immediate")
    return _conditional(request, found.model_dump_json())
