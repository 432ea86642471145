"""What lets the widget run on other intranet pages safely: CORS for allowed origins, rate limits on /v1/ask and
/v1/search (anonymous callers that make the embedder work); and the headers every HTML page carries."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.logging import get_logger
from service.ratelimit import Limiter, make_limiter
from service.web.bodies import UPLOAD_SLACK, BodyLimitMiddleware

log = get_logger("web.security")

WINDOW_S = 60.0
LIMITED_PATH = "/v1/ask"
SEARCH_PATH = "/v1/search"
WHAT = {LIMITED_PATH: ("questions", "質問"), SEARCH_PATH: ("searches", "検索")}

# Every page's scripts are files on this origin (no inline script, no eval); styles may be inline (<style> blocks and
# style attributes in the templates); images only from here or data: URIs (the charts), so an approved answer cannot
# embed a tracking pixel; no page may be framed (clickjacking on the review buttons).
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc load Swagger UI / ReDoc from a CDN with an inline bootstrap script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src 'self' https://fonts.gstatic.com; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
PAGE_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def client_key(scope: Scope) -> str:
    """The client's address. Behind a trusted proxy, auth's TrustedProxyMiddleware has already put
    X-Forwarded-For's client here; the header itself is never read: anyone could forge it."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def too_many_requests_body(retry_after: int, limit: int, path: str = LIMITED_PATH) -> dict[str, object]:
    """The JSON a rate-limited asker gets, shaped like every other error."""
    en, ja = WHAT.get(path, ("requests", "リクエスト"))
    return {
        "error": f"Too many {en} from this client: please wait {retry_after} seconds, then try again. / "
        f"{ja}が多すぎます。{retry_after} 秒待ってからもう一度お試しください。",
        "detail": {"retry_after": retry_after, "limit_per_minute": limit},
    }


class AskRateLimitMiddleware:
    """Answers POST /v1/ask (and each other limited path) with 429 + Retry-After once a client passes its
    per-minute limit there."""

    def __init__(self, app: ASGIApp, *, limiter: Limiter, others: dict[str, Limiter] | None = None):
        self.app = app
        self.limiters = {LIMITED_PATH: limiter, **(others or {})}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/") if scope["type"] == "http" else ""
        limiter = self.limiters.get(path) if scope["type"] == "http" and scope["method"] == "POST" else None
        if limiter is None:
            await self.app(scope, receive, send)
            return
        wait = limiter.hit(client_key(scope))
        if wait is None:
            await self.app(scope, receive, send)
            return
        log.info("ask.rate_limited", path=path, retry_after=wait)
        body = json.dumps(too_many_requests_body(wait, limiter.limit, path), ensure_ascii=False).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(wait).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class PageHeadersMiddleware:
    """Adds a Content-Security-Policy, X-Frame-Options: DENY, nosniff and a referrer policy to every HTML response
    (a header a route set itself is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_CSP if scope["path"].startswith(DOCS_PATHS) else PAGE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in {"Content-Security-Policy": policy, **PAGE_HEADERS}.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_web_security(app: FastAPI, settings: Settings) -> None:
    """Rate-limit /v1/ask and /v1/search per client, cap request bodies while they stream in, put the page headers
    (CSP, no framing) on every HTML response, and allow the configured origins (CORS); same-origin pages need
    neither."""
    limiter = make_limiter(settings.redis_url, "ask", settings.ask_rate_limit_per_minute, window_s=WINDOW_S)
    search = make_limiter(settings.redis_url, "search", settings.search_rate_limit_per_minute, window_s=WINDOW_S)
    app.add_middleware(AskRateLimitMiddleware, limiter=limiter, others={SEARCH_PATH: search})
    upload_limit = settings.upload_max_mb * 1024 * 1024 + UPLOAD_SLACK
    app.add_middleware(BodyLimitMiddleware, json_limit=settings.json_body_max_kb * 1024, upload_limit=upload_limit)
    app.add_middleware(PageHeadersMiddleware)
    # Added last so it is outermost: a 429 from the limiter still carries the CORS headers the widget needs to read it.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "Accept", "If-None-Match"],  # If-None-Match: the widget's follow-up check
        expose_headers=["Retry-After", "ETag"],
        allow_credentials=False,
        max_age=600,
    )
