"""The reviewer pages' login cookie: a server-side session, never the bearer token; posts it signs must come from
this origin; Secure follows NEMAWASHI_COOKIE_SECURE (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request

from service.auth.deps import COOKIE_NAME
from service.auth.service import csrf_token
from service.auth.sessions import cookie_secure, require_same_origin
from service.db import session_scope
from service.errors import Forbidden
from tests.conftest import make_settings
from tests.review.helpers import ReviewApp, add_item
from tests.security.helpers import database, fast_app

SURVEY = ("survey.csv", "comment\nボーナスは減りますか\n".encode(), "text/csv")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReviewApp]:
    with database("sqlite") as url, fast_app(Path(tmp_path_factory.mktemp("cookies")), url) as running:
        yield running


def sign_in(app: ReviewApp, name: str) -> tuple[str, str]:
    """A new reviewer signed in through the form; their token and the cookie the form set."""
    token = app.user(name)["Authorization"].removeprefix("Bearer ")
    app.client.cookies.clear()
    response = app.client.post("/review/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return token, app.client.cookies[COOKIE_NAME]


def test_the_login_cookie_is_a_session_id_that_does_not_work_as_a_token(app: ReviewApp) -> None:
    token, cookie = sign_in(app, "kato")
    assert cookie != token and token not in cookie
    assert app.client.get("/review").status_code == 200
    app.client.cookies.clear()
    assert app.client.get("/v1/review/me", headers={"Authorization": f"Bearer {cookie}"}).status_code == 401
    assert app.client.get("/v1/jobs/none", headers={"Authorization": f"Bearer {cookie}"}).status_code == 401


def test_a_cookie_holding_the_token_itself_signs_nobody_in(app: ReviewApp) -> None:
    token = app.user("ito")["Authorization"].removeprefix("Bearer ")
    app.client.cookies.clear()
    page = app.client.get("/review", cookies={COOKIE_NAME: token})
    assert page.status_code == 401 and 'name="token"' in page.text  # the sign-in form


def test_signing_out_ends_the_session_on_the_server_so_a_copied_cookie_stops_working(app: ReviewApp) -> None:
    _, cookie = sign_in(app, "abe")
    response = app.client.post("/review/logout", data={"csrf": csrf_token(cookie)}, follow_redirects=False)
    assert response.status_code == 303
    app.client.cookies.clear()
    assert app.client.get("/review", cookies={COOKIE_NAME: cookie}).status_code == 401


def test_a_revoked_reviewers_session_stops_at_once(app: ReviewApp) -> None:
    _, cookie = sign_in(app, "mori")
    admin = app.user("boss", role="admin")
    assert app.client.delete("/v1/review/users/mori", headers=admin).status_code == 200
    app.client.cookies.clear()
    assert app.client.get("/review", cookies={COOKIE_NAME: cookie}).status_code == 401


@pytest.mark.parametrize("header", ["Origin", "Referer"])
def test_cookie_signed_posts_from_another_site_are_refused_with_403(app: ReviewApp, header: str) -> None:
    _, cookie = sign_in(app, f"ono-{header}")
    foreign = {header: "https://evil.example" + ("/page" if header == "Referer" else "")}
    upload = app.client.post("/v1/jobs/classify", files={"file": SURVEY}, headers=foreign)
    assert upload.status_code == 403 and "another site" in upload.json()["error"], upload.text
    with session_scope(app.sessions) as session:
        item = add_item(session, "予算は？").id
    form = {"csrf": csrf_token(cookie), "version": 1, "action": "reject", "reason": "x", "back": ""}
    decided = app.client.post(f"/review/items/{item}", data=form, headers=foreign)
    assert decided.status_code == 403
    assert app.client.get(f"/review/items/{item}/state").json()["version"] == 1
    # From this origin (what the jobs page's fetch sends), the same upload is taken.
    ours = app.client.post("/v1/jobs/classify", files={"file": SURVEY}, headers={header: "http://testserver/jobs"})
    assert ours.status_code == 202, ours.text


def test_the_login_form_refuses_a_post_from_another_site(app: ReviewApp) -> None:
    token = app.user("ueda")["Authorization"].removeprefix("Bearer ")
    app.client.cookies.clear()
    forged = app.client.post(
        "/review/login", data={"token": token}, headers={"Origin": "https://evil.example"}, follow_redirects=False
    )
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    ours = app.client.post(
        "/review/login", data={"token": token}, headers={"Origin": "http://testserver"}, follow_redirects=False
    )
    assert ours.status_code == 303 and COOKIE_NAME in ours.headers["set-cookie"]


def request(method: str = "POST", scheme: str = "http", host: str = "nemawashi.example", **headers: str) -> Request:
    raw = [(b"host", host.encode())] + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {"type": "http", "method": method, "scheme": scheme, "path": "/", "headers": raw, "query_string": b""}
    )


def test_same_origin_means_this_host_the_public_url_or_an_allowed_origin(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, public_url="https://nemawashi.corp.example", allowed_origins=["https://intra.corp.example"]
    )
    for sent in ("http://nemawashi.example", "https://nemawashi.corp.example/review", "https://intra.corp.example"):
        require_same_origin(request(Origin=sent), settings)
    require_same_origin(request(), settings)  # neither header: the SameSite=Strict cookie already stays home
    require_same_origin(request("GET", Origin="https://evil.example"), settings)  # reading changes nothing
    for sent in ("https://evil.example", "null", "https://nemawashi.example.evil.example"):
        with pytest.raises(Forbidden):
            require_same_origin(request(Origin=sent), settings)


def test_the_secure_flag_follows_the_setting_or_in_auto_the_scheme(tmp_path: Path) -> None:
    auto, on, off = (make_settings(tmp_path, cookie_secure=value) for value in ("auto", "true", "false"))
    assert (cookie_secure(request(scheme="http"), auto), cookie_secure(request(scheme="https"), auto)) == (False, True)
    assert cookie_secure(request(scheme="http"), on) is True  # behind a proxy that ends TLS
    assert cookie_secure(request(scheme="https"), off) is False


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_download_link_opened_signed_out_shows_the_sign_in_form_that_comes_back_to_it(app: ReviewApp) -> None:
    app.client.cookies.clear()
    download = "/v1/jobs/j-none/result?format=xlsx"
    page = app.client.get(download, headers=BROWSER)
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert 'name="token"' in page.text and f'value="{download}"'.replace("&", "&amp;") in page.text
    api = app.client.get(download, headers={"Accept": "application/json"})  # an API client still gets JSON
    assert api.status_code == 401 and api.headers["content-type"].startswith("application/json")
    assert app.client.get(download).status_code == 401  # no Accept: an API client too
    token = app.user("mori")["Authorization"].removeprefix("Bearer ")
    signed = app.client.post("/review/login", data={"token": token, "next": download}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == download
    assert app.client.get(download, headers=BROWSER).status_code == 404  # signed in: the job itself is looked up
