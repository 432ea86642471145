"""Pydantic I/O for accounts: /v1/review/me and /v1/review/users."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.db import UTCTime
from service.text import SafeStr


class UserOut(BaseModel):
    name: str
    role: str
    active: bool
    created_at: UTCTime
    revoked_at: UTCTime | None


class NewUser(BaseModel):
    name: SafeStr = Field(min_length=1, max_length=100)
    role: Literal["reviewer", "admin"] = "reviewer"


class NewUserOut(UserOut):
    token: str = Field(description="Shown once: only its hash is stored.")


class Me(BaseModel):
    name: str
    role: str
