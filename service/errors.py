"""The error hierarchy every layer raises; one handler renders it as JSON."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from service.logging import get_logger

if TYPE_CHECKING:  # FastAPI is imported where the handlers are installed: the CLI never pays for it
    from collections.abc import Callable

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response

    ErrorPage = Callable[[Request, int], Response | None]  # a browser's error as a page, or None: not a page request

log = get_logger("errors")


def problem(code: StrEnum, **values: object) -> dict[str, object]:
    """An error's `detail` that a page words in its reader's language: the problem's code and the values its English
    message quotes (FileProblem in jobs/, ReviewProblem in review/, SourceProblem in retrieval/)."""
    return {"code": code.value, **values}


TOO_LARGE = (
    "a number in the request is too large for an id or a version: no such item exists / "
    "リクエストの数値が大きすぎます（該当する項目はありません）"
)


class NemawashiError(Exception):
    """An error with a message a user can act on and the HTTP status it maps to."""

    status_code = 500
    headers: dict[str, str] | None = None  # e.g. Retry-After on a 503

    def __init__(self, message: str, *, detail: object = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code


class BadInput(NemawashiError):
    status_code = 422


class NotFound(NemawashiError):
    status_code = 404


class Conflict(NemawashiError):
    status_code = 409


class NotReady(NemawashiError):
    """The index is missing or was built by another embedder."""

    status_code = 503


class LLMUnavailable(NemawashiError):
    status_code = 503


class DatabaseUnavailable(NemawashiError):
    """The database cannot be reached (down, wrong URL, refused): a 503 the client may retry."""

    status_code = 503


class VectorStoreUnavailable(NemawashiError):
    """The Chroma server cannot be reached (down, wrong URL): a 503 the client may retry."""

    status_code = 503


class Unauthorized(NemawashiError):
    """No valid credentials: a missing, unknown or revoked token."""

    status_code = 401


class SignInRequired(Unauthorized):
    """A page refused for lack of a login: browsers get the sign-in form, not JSON (see the app's handler)."""


class Forbidden(NemawashiError):
    """Valid credentials without the role the request needs."""

    status_code = 403


class ErrorOut(BaseModel):
    """The body of every error response (4xx and 5xx alike)."""

    error: str = Field(description="What went wrong and what to do about it, for a person to read.")
    detail: Any = Field(default=None, description="Specifics for a program: the invalid fields, the current version…")


_WHEN = {
    401: "No valid reviewer token: missing, unknown or revoked.",
    403: "The token's role may not do this (admins only), or a cookie-signed form came from another site.",
    404: "No such item.",
    409: "The state changed first: a stale version, a name taken, a job not done yet.",
    413: "The request body is over its limit (NEMAWASHI_JSON_BODY_MAX_KB, NEMAWASHI_UPLOAD_MAX_MB).",
    422: "The request is not valid: `detail` lists the fields.",
    429: "Too many requests from this client: wait for Retry-After seconds.",
    503: "Not ready yet, or a dependency (database, embedder, LLM) is unavailable: retry after Retry-After.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}


_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for routes and routers: each status with the shared error body. (Not `model=`: FastAPI
    would file it under an HTML or event-stream route's own media type, and errors are always JSON.)"""
    return {
        code: {"description": _WHEN[code], "content": _ERROR_CONTENT}
        | ({"headers": _RETRY_AFTER} if code == 429 else {})
        for code in codes
    }


def _document_error_body(app: FastAPI) -> None:
    """Put ErrorOut among /openapi.json's schemas, where error_responses() points."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = build().setdefault("components", {}).setdefault("schemas", {})
            schemas["ErrorOut"] = ErrorOut.model_json_schema()
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI, *, page: ErrorPage | None = None) -> None:
    """Render every NemawashiError and validation error as {"error", "detail"}, and document that body. page, when
    given, renders a browser's 404 or 422 as a page instead (it returns None for a request that is not a browser's
    page)."""
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def as_page(request: Request, status_code: int) -> Response | None:
        return page(request, status_code) if page is not None else None

    _document_error_body(app)

    @app.exception_handler(NemawashiError)
    async def _nemawashi_error(request: Request, exc: NemawashiError) -> Response:
        if exc.status_code in (404, 422) and (shown := as_page(request, exc.status_code)) is not None:
            return shown
        return JSONResponse(
            {"error": exc.message, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(OperationalError)
    async def _database_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database.unavailable", error=type(exc.orig).__name__)
        return JSONResponse(
            {"error": "the database is unavailable: try again in a moment", "detail": {"retry": True}},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DataError)
    async def _bad_data(request: Request, exc: DataError) -> Response:
        # The backstop for text no schema checked (a path id, a form field): PostgreSQL refuses NUL in text.
        refused = "NUL" in str(exc.orig) or type(exc.orig).__name__ == "NumericValueOutOfRange"
        if refused and (shown := as_page(request, 422)) is not None:
            return shown
        if "NUL" in str(exc.orig):
            message = "the request contains a NUL character (\\u0000): remove it / NUL 文字を削除してください"
            return JSONResponse({"error": message, "detail": None}, status_code=422)
        if type(exc.orig).__name__ == "NumericValueOutOfRange":  # PostgreSQL: an id past its integer column
            return JSONResponse({"error": TOO_LARGE, "detail": None}, status_code=422)
        log.exception("request.failed", error=type(exc.orig).__name__)
        return JSONResponse({"error": "internal error: the request was not completed", "detail": None}, 500)

    @app.exception_handler(OverflowError)
    async def _number_too_large(request: Request, exc: OverflowError) -> Response:
        # The backstop for an integer no schema bounded (a path id, a version): SQLite stores at most 64 bits.
        if "SQLite INTEGER" in str(exc) and (shown := as_page(request, 422)) is not None:
            return shown
        if "SQLite INTEGER" in str(exc):
            return JSONResponse({"error": TOO_LARGE, "detail": None}, status_code=422)
        log.exception("request.failed", error=type(exc).__name__)
        return JSONResponse({"error": "internal error: the request was not completed", "detail": None}, 500)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Still a JSON body a client can show; the traceback goes to the log, never to the client.
        log.exception("request.failed", error=type(exc).__name__)
        status = 503 if isinstance(exc, DBAPIError) and exc.connection_invalidated else 500
        return JSONResponse({"error": "internal error: the request was not completed", "detail": None}, status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and (shown := as_page(request, 404)) is not None:  # a path no route knows
            return shown
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if (shown := as_page(request, 422)) is not None:
            return shown
        detail = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"error": _validation_message(exc), "detail": detail}, status_code=422)
