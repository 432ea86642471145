"""HTTP for bulk classification jobs (/v1/jobs/...)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["jobs"])
