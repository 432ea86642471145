"""Follow-up links: a capability token per question, so the asker (and only whoever holds the link) can come back.

The token is shown once, in the /v1/ask response; only its SHA-256 is stored, so a database dump reveals no links."""

from __future__ import annotations

import hashlib
import secrets

FOLLOWUP_PATH = "/v1/followups/"


def new_followup_token() -> tuple[str, str]:
    """A fresh token (256 random bits, URL-safe) and the digest to store for it."""
    token = secrets.token_urlsafe(32)
    return token, followup_digest(token)


def followup_digest(token: str) -> str:
    """What is stored and looked up: the token's SHA-256 (hex). A token is random, so no salt is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def followup_url(token: str) -> str:
    return FOLLOWUP_PATH + token
