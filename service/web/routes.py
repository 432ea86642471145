"""HTTP for pages people open: the widget script and the demo intranet page."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from service.web.pages import templates

router = APIRouter(tags=["pages"])

WIDGET_FILE = Path(__file__).parent / "static" / "widget.js"
# The URL is unversioned (pages embed it once), so caches keep it briefly and then revalidate with the ETag.
WIDGET_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=3600"


@dataclass(frozen=True)
class StaticAsset:
    """A file's bytes, its gzip form and their ETags, read once per version of the file."""

    plain: bytes
    gzipped: bytes
    etag: str

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'


@lru_cache(maxsize=4)
def _load_asset(path: Path, mtime_ns: int) -> StaticAsset:
    plain = path.read_bytes()
    return StaticAsset(plain, gzip.compress(plain, mtime=0), f'"{hashlib.sha256(plain).hexdigest()[:20]}"')


def load_asset(path: Path) -> StaticAsset:
    """The asset, re-read only when the file changes (an edited widget.js is served without a restart)."""
    return _load_asset(path, path.stat().st_mtime_ns)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


@router.api_route("/widget.js", methods=["GET", "HEAD"], include_in_schema=False)
def widget_js(request: Request) -> Response:
    """The chat widget: one script tag embeds it on any allowed intranet page."""
    asset = load_asset(WIDGET_FILE)
    use_gzip = "gzip" in request.headers.get("accept-encoding", "")
    etag = asset.gzip_etag if use_gzip else asset.etag
    headers = {
        "ETag": etag,
        "Cache-Control": WIDGET_CACHE_CONTROL,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if _etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    body = asset.gzipped if use_gzip else asset.plain
    return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)


@router.get("/demo", response_class=HTMLResponse, include_in_schema=False)
def demo(request: Request, lang: Literal["ja", "en", "auto"] = Query("ja")) -> HTMLResponse:
    """A sample intranet page of 株式会社みなと精機 with the widget embedded (?lang=en for an English widget)."""
    base_url = str(request.base_url).rstrip("/")
    return templates.TemplateResponse(request, "demo.html", {"base_url": base_url, "widget_lang": lang})
