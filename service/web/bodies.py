"""Request body limits enforced while the body streams in, so a client cannot make the server read (or spool to
disk) more than the limit: one for survey uploads (multipart), a smaller one for everything else (JSON, forms)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logging import get_logger

log = get_logger("web.bodies")
UPLOAD_SLACK = 64 * 1024  # multipart boundaries and form fields around the file


class BodyTooLarge(Exception):
    """Raised from receive() to stop the app reading a body past its limit."""


def too_large_body(limit: int, *, upload: bool) -> dict[str, object]:
    """The 413 JSON, shaped like every other error."""
    detail: dict[str, object] = {"limit_bytes": limit}
    if upload:
        mb = (limit - UPLOAD_SLACK) / 1024 / 1024
        what = f"the file is larger than the {mb:g} MB upload limit (NEMAWASHI_UPLOAD_MAX_MB)"
        fix = "split the file, or run `nemawashi classify FILE` on the server"
        ja = f"ファイルが上限 {mb:g} MB を超えています。分割してください"
        # The code and value the upload route's own check gives (service/jobs/problems.py), so /jobs words it alike.
        detail |= {"code": "too_large", "limit_mb": int(mb) if mb.is_integer() else round(mb, 1)}
    else:
        what = f"the request body is larger than the {limit // 1024:,} KB limit (NEMAWASHI_JSON_BODY_MAX_KB)"
        fix = "send less text"
        ja = f"リクエストが上限 {limit // 1024:,} KB を超えています"
    return {"error": f"{what}: {fix} / {ja}", "detail": detail}


class BodyLimitMiddleware:
    """413 as soon as Content-Length or the bytes received so far pass the limit; the rest is never read."""

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        upload = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.upload_limit if upload else self.json_limit
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit, upload=upload)
            return
        state = {"received": 0, "exceeded": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["exceeded"] = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state["exceeded"]:
                return  # the 413 replaces whatever the app made of a cut-off body
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["exceeded"]:
                raise
        if state["exceeded"] and not state["started"]:
            await self._refuse(send, limit, upload=upload)

    async def _refuse(self, send: Send, limit: int, *, upload: bool) -> None:
        log.info("request.too_large", limit=limit, upload=upload)
        body = json.dumps(too_large_body(limit, upload=upload), ensure_ascii=False).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
