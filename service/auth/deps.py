"""Access as a type: endpoints take `ReviewerDep`, `AdminDep`, `ReaderDep` or `AskerDep` and never parse headers.

The review API authenticates by the Authorization header only, so no cookie can be replayed against it (no CSRF).
The reviewer pages, the dashboard and bulk jobs also accept the login cookie the sign-in form sets: a session id,
never the token (HttpOnly, SameSite=Strict); a post it signs must come from this origin, and the pages' forms echo a
CSRF value derived from the session id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.auth.proxy import came_through_trusted_proxy
from service.auth.service import Reviewer, asker_email, asker_name, authenticate, csrf_matches, require_admin
from service.auth.sessions import require_same_origin, session_reviewer
from service.config import Settings
from service.deps import SessionDep, SettingsDep, get_settings_dep
from service.errors import Forbidden, SignInRequired, Unauthorized

COOKIE_NAME = "nemawashi_review"

# auto_error=False: a missing or non-bearer header reaches our own 401 with its {"error", "detail"} body.
bearer = HTTPBearer(auto_error=False, description="A reviewer's token: `nemawashi users add NAME` prints one.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials else None


def _header_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def signed_in(request: Request, session: Session) -> tuple[Reviewer, str] | None:
    """The reviewer of the UI's login cookie (or a bearer header), with the session id (or token) the forms' CSRF
    value derives from; None when there is none valid. A cookie-signed post from another site is Forbidden."""
    if session_id := request.cookies.get(COOKIE_NAME):
        reviewer = session_reviewer(session, session_id)
        if reviewer is not None:
            require_same_origin(request, get_settings_dep(request))
            return reviewer, session_id
    token = _header_token(request)
    try:
        return (authenticate(session, token), token) if token else None
    except Unauthorized:
        return None


def signed_in_reviewer(request: Request, session: SessionDep, _bearer: BearerDep) -> Reviewer:
    """Who may read reports and run bulk jobs: a reviewer or admin, by bearer token or the reviewer UI's login cookie.
    A page answers a browser without either with the sign-in form. Tests override this function, not the auth behind
    it. (_bearer is read by signed_in too; declaring it shows the scheme in /docs.)"""
    who = signed_in(request, session)
    if who is None:
        refused = SignInRequired if _opened_in_a_browser(request) else Unauthorized
        raise refused("this is for reviewers: send `Authorization: Bearer <token>` or sign in at /review")
    return who[0]


ReaderDep = Annotated[Reviewer, Depends(signed_in_reviewer)]


def _opened_in_a_browser(request: Request) -> bool:
    """A page, or an API address a person opened from a page (a job's XLSX download, the dashboard's JSON link): a
    GET that asks for HTML first. Those get the sign-in form, which comes back to the address; API clients get 401."""
    if not request.url.path.startswith("/v1/"):
        return True
    accept = request.headers.get("accept", "")
    return request.method == "GET" and accept.split(",")[0].strip().startswith("text/html")


async def _sent_csrf(request: Request) -> str:
    if request.headers.get("x-csrf-token"):
        return request.headers["x-csrf-token"]
    if request.headers.get("content-type", "").startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return str((await request.form()).get("csrf") or "")  # Starlette keeps the parsed form for the route
    return ""


async def signed_in_admin(request: Request, session: SessionDep, _bearer: BearerDep) -> Reviewer:
    """Who may change what pages show (the knowledge base): an admin by bearer token, or by the login cookie with
    the page's CSRF value (form field `csrf` or header X-CSRF-Token). A reviewer gets 403, nobody 401."""
    reviewer = require_admin(signed_in_reviewer(request, session, _bearer))
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie and _header_token(request) is None and not csrf_matches(await _sent_csrf(request), cookie):
        raise Forbidden("the form is stale or came from another site: reload the page")
    return reviewer


SignedInAdminDep = Annotated[Reviewer, Depends(signed_in_admin)]


def current_reviewer(session: SessionDep, credentials: BearerDep) -> Reviewer:
    """The bearer token's reviewer; the API ignores the login cookie."""
    return authenticate(session, bearer_token(credentials))


ReviewerDep = Annotated[Reviewer, Depends(current_reviewer)]


def current_admin(reviewer: ReviewerDep) -> Reviewer:
    return require_admin(reviewer)


AdminDep = Annotated[Reviewer, Depends(current_admin)]


def asker_identity(request: Request, settings: Settings) -> str | None:
    """The asker named by the trusted SSO proxy's header, else None (anonymous)."""
    via_proxy = came_through_trusted_proxy(request.scope, settings.trusted_proxies)
    header = request.headers.get(settings.sso_header) if settings.sso_header else None
    return asker_name(via_trusted_proxy=via_proxy, header=header, settings=settings)


def get_asker(request: Request, settings: SettingsDep) -> str | None:
    return asker_identity(request, settings)


AskerDep = Annotated[str | None, Depends(get_asker)]


def get_asker_email(request: Request, settings: SettingsDep) -> str | None:
    """The asker's address from the trusted SSO proxy's e-mail header, else None (no e-mail is sent)."""
    via_proxy = came_through_trusted_proxy(request.scope, settings.trusted_proxies)
    header = request.headers.get(settings.sso_email_header) if settings.sso_email_header else None
    return asker_email(via_trusted_proxy=via_proxy, header=header, settings=settings)


AskerEmailDep = Annotated[str | None, Depends(get_asker_email)]
