"""HTTP for reviewers: the queue API (/v1/review/...) and the /review pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["review"])
