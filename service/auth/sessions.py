"""Browser sessions of the reviewer pages, and the same-origin rule for what a signed-in browser may post.

Signing in exchanges the bearer token for a random session id: the cookie carries that id (its hash is stored), so
a stolen cookie is not a token (the API refuses it) and ends when it expires or its reviewer signs out or is revoked.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy.orm import Session
from starlette.requests import Request

from service.auth import repository
from service.auth.models import ReviewerAccount, ReviewSession
from service.auth.service import Reviewer, active_account, hash_token
from service.config import Settings
from service.db import utcnow
from service.errors import Forbidden

SESSION_PREFIX = "nms_"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def start_session(session: Session, *, token: str, hours: float) -> str:
    """A new session for the token's reviewer (Unauthorized for a bad token); returns the cookie's value."""
    account = active_account(session, token)
    now = utcnow()
    repository.delete_sessions(session, expired_before=now)
    session_id = SESSION_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ReviewSession(
            id_hash=hash_token(session_id),
            reviewer_id=account.id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    session.flush()
    return session_id


def session_reviewer(session: Session, session_id: str) -> Reviewer | None:
    """The reviewer of a live session; None when it is unknown, expired, or its reviewer was revoked."""
    row = repository.session_with_hash(session, hash_token(session_id))
    if row is None or row.expires_at <= utcnow():
        return None
    account = session.get(ReviewerAccount, row.reviewer_id)
    if account is None or account.revoked_at is not None:
        return None
    return Reviewer(account.name, account.role)


def end_session(session: Session, session_id: str) -> None:
    """Sign out: the session stops working at once, wherever its cookie is."""
    repository.delete_sessions(session, id_hash=hash_token(session_id))
    session.flush()


def cookie_secure(request: Request, settings: Settings) -> bool:
    """Whether the cookie gets Secure: NEMAWASHI_COOKIE_SECURE, or (auto) the scheme the request came with."""
    if settings.cookie_secure != "auto":
        return settings.cookie_secure == "true"
    return request.url.scheme == "https"


def _our_origins(request: Request, settings: Settings) -> set[str]:
    """Hosts (host[:port]) this service answers on: the Host header, NEMAWASHI_PUBLIC_URL's, the allowed origins'."""
    urls = [settings.public_url, *settings.allowed_origins]
    return {request.headers.get("host", "").lower()} | {urlsplit(url).netloc.lower() for url in urls if url}


def require_same_origin(request: Request, settings: Settings) -> None:
    """Forbidden when a state-changing request says (Origin, else Referer) that it comes from another site. Neither
    header: allowed (the SameSite=Strict cookie already stays home); "null" (a sandbox, a redirect): refused."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get("origin") or request.headers.get("referer")
    if sent is None or (sent != "null" and urlsplit(sent).netloc.lower() in _our_origins(request, settings)):
        return
    raise Forbidden(
        f"refused: this request came from another site ({sent[:100]}), not from a page of this service. Open the "
        "page on this service and send it again; behind a proxy that changes the Host header, set "
        "NEMAWASHI_PUBLIC_URL. / 別のサイトから送信されたため拒否しました。"
        "このサービスのページを開いて送信し直してください。",
        detail={"origin": sent[:100]},
    )
