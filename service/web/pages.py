"""Jinja2 templates, the safe Markdown renderer and the page helpers shared by every server-rendered page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from service.config import get_settings
from service.web.i18n import LANG_COOKIE, TEXTS, request_lang

TEMPLATES_DIR = Path(__file__).parent / "templates"
# html=False: raw HTML in a document is shown as text, never executed.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def _image_as_link(renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """An image becomes a link to it: a page never loads an image an author (or an approved answer) points at, so
    a remote image cannot be a tracking pixel (the page's CSP allows images from this origin only, too)."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = renderer.renderInlineAsText(token.children or [], options, env) or src
    return f'<a href="{escapeHtml(src)}" rel="noopener noreferrer nofollow">[画像 / image: {escapeHtml(alt)}]</a>'


_markdown.add_render_rule("image", _image_as_link)


def render_markdown(text: str) -> Markup:
    """Markdown → HTML with raw HTML escaped and images shown as links."""
    return Markup(_markdown.render(text))


def page_zone(context: Context | dict[str, Any]) -> ZoneInfo:
    """The zone times are shown in: the running app's NEMAWASHI_TIMEZONE (or the environment's, for files)."""
    request = context.get("request")
    settings = getattr(getattr(getattr(request, "app", None), "state", None), "settings", None) or get_settings()
    return ZoneInfo(settings.timezone)


def local_time(moment: datetime, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time as people read it: in the configured zone, with the zone's name."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"{aware.astimezone(zone).strftime(fmt)} {aware.astimezone(zone).tzname()}"


@pass_context
def localtime_filter(context: Context, moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """`{{ item.created_at | localtime }}` → "2026-12-01 16:51 JST"."""
    return "" if moment is None else local_time(moment, page_zone(context), fmt)


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["markdown"] = render_markdown
templates.env.filters["localtime"] = localtime_filter
# The shared header's sections in order (nav.html), each with its path: error pages go back to the nearest one.
NAV = (("review", "/review"), ("jobs", "/jobs"), ("dashboard", "/dashboard"), ("kb", "/kb"), ("kb_admin", "/admin/kb"))
templates.env.globals["nav_sections"] = NAV


def switch_url(request: Request, lang: str) -> str:
    """The same page in the other language."""
    switched = {**dict(request.query_params), "lang": "en" if lang == "ja" else "ja"}
    return f"{request.url.path}?{urlencode(switched)}"


def render_page(
    request: Request, name: str, context: dict[str, Any], *, section: str = "", status_code: int = 200
) -> HTMLResponse:
    """A page in the shared layout, in the request's language; ?lang= is remembered in a cookie."""
    lang = context.get("lang") or request_lang(request)
    shared = {"lang": lang, "t": TEXTS[lang], "switch_url": switch_url(request, lang), "section": section}
    response = templates.TemplateResponse(request, name, {**shared, **context}, status_code=status_code)
    if request.query_params.get("lang") in TEXTS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", httponly=True)
    return response


_SECTIONS = {path: key for key, path in NAV}


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not an API client): its errors are shown as a page in the reader's language."""
    return (
        request.method == "GET"
        and not request.url.path.startswith("/v1/")
        and "text/html" in request.headers.get("accept", "")
    )


def error_page(request: Request, status_code: int) -> HTMLResponse | None:
    """A browser's 404 or 422 as a page in the shared layout and the reader's language, with a way back; None for
    an API client (it gets the JSON error)."""
    if not wants_page(request):
        return None
    path = request.url.path
    prefix = max((p for p in _SECTIONS if path == p or path.startswith(f"{p}/")), key=len, default="/kb")
    context = {"status_key": str(status_code), "back": prefix}
    return render_page(request, "error.html", context, section=_SECTIONS[prefix], status_code=status_code)
