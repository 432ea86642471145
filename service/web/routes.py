"""HTTP for pages people open: the widget script and the demo intranet page."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["pages"])
