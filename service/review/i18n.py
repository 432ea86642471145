"""The reviewer UI's words: the shared catalogue in service/web/i18n.py (kept here for existing imports)."""

from __future__ import annotations

from service.web.i18n import TEXTS, pick_lang

__all__ = ["TEXTS", "pick_lang"]
