"""Accounts and tokens: add, list and revoke reviewers and admins; who a token or a proxy's header names."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.auth import repository
from service.auth.models import ROLES, ReviewerAccount, Role
from service.config import Settings
from service.db import utcnow
from service.errors import BadInput, Conflict, Forbidden, NotFound, Unauthorized

TOKEN_PREFIX = "nmw_"
MAX_NAME = 100


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


def csrf_token(session_id: str) -> str:
    """The value forms on the reviewer pages must echo: derived from the browser's session id (or a bearer token),
    which other sites never see."""
    return hmac.new(session_id.encode(), b"nemawashi-review-form", hashlib.sha256).hexdigest()


def csrf_matches(sent: str, session_id: str) -> bool:
    """Whether a form's CSRF value belongs to the session (compared in constant time)."""
    return hmac.compare_digest(sent.encode(), csrf_token(session_id).encode())


def clean_name(name: str) -> str:
    """The name as stored: NFKC, stripped, 1–MAX_NAME printable characters; BadInput otherwise."""
    clean = unicodedata.normalize("NFKC", name).strip()
    if not clean or len(clean) > MAX_NAME or any(unicodedata.category(c).startswith("C") for c in clean):
        raise BadInput(f"a user name is 1–{MAX_NAME} printable characters, got {name!r}")
    return clean


def add_user(session: Session, *, name: str, role: str) -> tuple[ReviewerAccount, str]:
    """A new reviewer or admin (or a revoked one back with a fresh token); returns the account and its token."""
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}: use {' or '.join(ROLES)}")
    name = clean_name(name)
    account = repository.account_named(session, name)
    if account is not None and account.revoked_at is None:
        raise Conflict(f"user {name!r} exists already: revoke it first or choose another name", detail={"name": name})
    token = new_token()
    account = account or ReviewerAccount(name=name)
    account.role, account.token_hash, account.revoked_at, account.created_at = (
        Role(role),
        hash_token(token),
        None,
        utcnow(),
    )
    session.add(account)
    session.flush()
    return account, token


def list_users(session: Session) -> list[ReviewerAccount]:
    return repository.accounts(session)


def revoke_user(session: Session, *, name: str) -> ReviewerAccount:
    """Stop a user's token working at once (every request looks the token up)."""
    account = repository.account_named(session, name.strip())
    if account is None:
        raise NotFound(f"no user named {name!r}", detail={"name": name})
    if account.revoked_at is None:
        account.revoked_at = utcnow()
        session.flush()
    return account


def active_names(session: Session) -> list[str]:
    """Names of reviewers and admins whose token works, alphabetically."""
    return repository.active_names(session)


def authenticate(session: Session, token: str | None) -> Reviewer:
    """The reviewer a token belongs to; Unauthorized when it is missing, unknown or revoked."""
    if not token:
        raise Unauthorized(
            "a reviewer token is required: send `Authorization: Bearer <token>` "
            "(`nemawashi users add NAME --role reviewer` prints one)"
        )
    account = active_account(session, token)
    return Reviewer(account.name, account.role)


def active_account(session: Session, token: str) -> ReviewerAccount:
    """The account a token belongs to; Unauthorized when it is unknown or revoked."""
    account = repository.account_with_token(session, hash_token(token))
    if account is None or account.revoked_at is not None:
        raise Unauthorized("the token is not valid: it is unknown or was revoked")
    return account


def require_admin(reviewer: Reviewer) -> Reviewer:
    if not reviewer.is_admin:
        raise Forbidden(f"this needs the admin role; {reviewer.name} is a {reviewer.role}", detail={"role": "admin"})
    return reviewer


def asker_name(*, via_trusted_proxy: bool, header: str | None, settings: Settings) -> str | None:
    """The asker's name from the SSO header, only when the request came through a configured proxy; else None
    (anonymous). A header from anyone else is ignored: any browser can send it."""
    if not settings.sso_header or not settings.trusted_proxies or not via_trusted_proxy:
        return None
    value = "".join(c for c in header or "" if not unicodedata.category(c).startswith("C")).strip()
    return value[:200] or None


_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


def asker_email(*, via_trusted_proxy: bool, header: str | None, settings: Settings) -> str | None:
    """The asker's e-mail address from the SSO proxy's header (NEMAWASHI_SSO_EMAIL_HEADER), under the same trust
    rule as their name; None when absent, untrusted, or not one plain address (nothing else is ever mailed)."""
    if not settings.sso_email_header or not settings.trusted_proxies or not via_trusted_proxy:
        return None
    value = (header or "").strip()
    return value if len(value) <= 254 and _EMAIL.match(value) else None
