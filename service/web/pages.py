"""Jinja2 templates and the safe Markdown renderer shared by server-rendered pages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markupsafe import Markup

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


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["markdown"] = render_markdown
