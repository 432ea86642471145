"""Sealed copies of capability tokens: kept so a later e-mail can carry the asker's follow-up link, while a database
dump alone still reveals no link.

A token is XORed with a keystream of HMAC-SHA512(key, its SHA-256 digest). The digest is stored beside the token's
hash already and is unique per token, so no two seals share a keystream; without the key (a setting, never in the
database) the seal is random bytes. Unsealing checks the result against the digest, so a wrong key or a tampered
seal gives None, never a wrong link."""

from __future__ import annotations

import base64
import hashlib
import hmac

_LABEL = b"nemawashi-followup-seal:"


def _keystream(key: str, digest: str) -> bytes:
    return hmac.new(key.encode(), _LABEL + digest.encode(), hashlib.sha512).digest()


def seal(token: str, *, digest: str, key: str) -> str:
    """The token, sealed under key (URL-safe base64); tokens are at most 64 bytes (ours are 43)."""
    raw = token.encode()
    stream = _keystream(key, digest)
    if len(raw) > len(stream):
        raise ValueError("token too long to seal")
    return base64.urlsafe_b64encode(bytes(a ^ b for a, b in zip(raw, stream, strict=False))).decode()


def unseal(sealed: str, *, digest: str, key: str) -> str | None:
    """The token back, or None when the key is wrong or the seal was altered (its SHA-256 must equal digest)."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        token = bytes(a ^ b for a, b in zip(raw, _keystream(key, digest), strict=False)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return token if hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), digest) else None
