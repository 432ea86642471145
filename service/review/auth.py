"""Who may do what: reviewers and admins by bearer token; askers anonymous or named by a trusted SSO proxy."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.config import Settings
from service.errors import BadInput, Conflict, NemawashiError, NotFound
from service.review.models import ROLES, ReviewerAccount
from service.triage.models import utcnow

TOKEN_PREFIX = "nmw_"
COOKIE_NAME = "nemawashi_review"
_MAX_NAME = 100


class Unauthorized(NemawashiError):
    status_code = 401


class SignInRequired(Unauthorized):
    """A page refused for lack of a login: browsers get the sign-in form (pages.sign_in_form), not JSON."""


class Forbidden(NemawashiError):
    status_code = 403


class KeepsChanges:
    """Mixin for errors whose session work must still be committed (a refused decision stays in the audit log)."""


@dataclass(frozen=True)
class Reviewer:
    """The person behind a request: their name (as the audit log shows it) and role."""

    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 of the token. Tokens carry 256 random bits, so unlike passwords they need no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The value forms on the reviewer pages must echo: derived from the login token, which other sites never see."""
    return hmac.new(token.encode(), b"nemawashi-review-form", hashlib.sha256).hexdigest()


def _clean_name(name: str) -> str:
    clean = unicodedata.normalize("NFKC", name).strip()
    if not clean or len(clean) > _MAX_NAME or any(unicodedata.category(c).startswith("C") for c in clean):
        raise BadInput(f"a user name is 1–{_MAX_NAME} printable characters, got {name!r}")
    return clean


def add_user(session: Session, *, name: str, role: str) -> tuple[ReviewerAccount, str]:
    """A new reviewer or admin (or a revoked one back with a fresh token); returns the account and its token."""
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}: use {' or '.join(ROLES)}")
    name = _clean_name(name)
    account = session.scalars(select(ReviewerAccount).where(ReviewerAccount.name == name)).one_or_none()
    if account is not None and account.revoked_at is None:
        raise Conflict(f"user {name!r} exists already: revoke it first or choose another name", detail={"name": name})
    token = new_token()
    account = account or ReviewerAccount(name=name)
    account.role, account.token_hash, account.revoked_at, account.created_at = role, hash_token(token), None, utcnow()
    session.add(account)
    session.flush()
    return account, token


def list_users(session: Session) -> list[ReviewerAccount]:
    return list(session.scalars(select(ReviewerAccount).order_by(ReviewerAccount.name)))


def revoke_user(session: Session, *, name: str) -> ReviewerAccount:
    """Stop a user's token working at once (every request looks the token up)."""
    account = session.scalars(select(ReviewerAccount).where(ReviewerAccount.name == name.strip())).one_or_none()
    if account is None:
        raise NotFound(f"no user named {name!r}", detail={"name": name})
    if account.revoked_at is None:
        account.revoked_at = utcnow()
        session.flush()
    return account


def active_names(session: Session) -> list[str]:
    stmt = select(ReviewerAccount.name).where(ReviewerAccount.revoked_at.is_(None)).order_by(ReviewerAccount.name)
    return list(session.scalars(stmt))


def authenticate(session: Session, token: str | None) -> Reviewer:
    """The reviewer a token belongs to; Unauthorized when it is missing, unknown or revoked."""
    if not token:
        raise Unauthorized(
            "a reviewer token is required: send `Authorization: Bearer <token>` "
            "(`nemawashi users add NAME --role reviewer` prints one)"
        )
    stmt = select(ReviewerAccount).where(ReviewerAccount.token_hash == hash_token(token))
    account = session.scalars(stmt).one_or_none()
    if account is None or account.revoked_at is not None:
        raise Unauthorized("the token is not valid: it is unknown or was revoked")
    return Reviewer(account.name, account.role)


def bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def signed_in(request: Request, session: Session) -> tuple[Reviewer, str] | None:
    """The reviewer of the UI's login cookie (or a bearer header), with the token; None when there is none valid."""
    token = request.cookies.get(COOKIE_NAME) or bearer_token(request)
    try:
        return (authenticate(session, token), token) if token else None
    except Unauthorized:
        return None


def require_admin(reviewer: Reviewer) -> Reviewer:
    if not reviewer.is_admin:
        raise Forbidden(f"this needs the admin role; {reviewer.name} is a {reviewer.role}", detail={"role": "admin"})
    return reviewer


def get_review_session(request: Request) -> Iterator[Session]:
    """One session per request, committed before the response is sent (so a client that reads right after a
    decision sees it) and rolled back on error, except for errors marked KeepsChanges."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException as exc:
        if isinstance(exc, KeepsChanges):
            session.commit()
        else:
            session.rollback()
        raise
    finally:
        session.close()


ReviewSessionDep = Annotated[Session, Depends(get_review_session, scope="function")]


def signed_in_reviewer(request: Request, session: ReviewSessionDep) -> Reviewer:
    """Who may read reports and run bulk jobs: a reviewer or admin, by bearer token or the reviewer UI's login cookie
    (SameSite=Strict, so no other site can send it). A page answers a browser without either with the sign-in form.
    Tests override this function, not the auth behind it."""
    who = signed_in(request, session)
    if who is None:
        refused = Unauthorized if request.url.path.startswith("/v1/") else SignInRequired
        raise refused("this is for reviewers: send `Authorization: Bearer <token>` or sign in at /review")
    return who[0]


ReaderDep = Annotated[Reviewer, Depends(signed_in_reviewer)]


def current_reviewer(request: Request, session: ReviewSessionDep) -> Reviewer:
    """The API authenticates by the Authorization header only, so no cookie can be replayed against it (no CSRF)."""
    return authenticate(session, bearer_token(request))


ReviewerDep = Annotated[Reviewer, Depends(current_reviewer)]


def current_admin(reviewer: ReviewerDep) -> Reviewer:
    return require_admin(reviewer)


AdminDep = Annotated[Reviewer, Depends(current_admin)]


def _trusted(peer: str, proxies: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    for proxy in proxies:
        try:
            if address in ipaddress.ip_network(proxy.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def asker_identity(request: Request, settings: Settings) -> str | None:
    """The asker's name from the SSO header, only when the request came through a configured proxy; else None
    (anonymous). A header from anyone else is ignored: any browser can send it."""
    if not settings.sso_header or not settings.trusted_proxies or request.client is None:
        return None
    if not _trusted(request.client.host, settings.trusted_proxies):
        return None
    value = request.headers.get(settings.sso_header, "")
    value = "".join(c for c in value if not unicodedata.category(c).startswith("C")).strip()
    return value[:200] or None


def get_asker(request: Request) -> str | None:
    # The settings come from the app directly: service.deps imports the pipeline, which imports this package.
    return asker_identity(request, request.app.state.settings)


AskerDep = Annotated[str | None, Depends(get_asker)]
