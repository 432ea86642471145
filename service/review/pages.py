"""The reviewer UI at /review: server-rendered pages, a login cookie, plain forms and a little JS for shortcuts.

The login form exchanges the bearer token for an HttpOnly, SameSite=Strict cookie holding a session id (never the
token): pages render on the server (sessionStorage would need every page built by JS), and no script on the page can
read it. Posts must come from this origin and forms echo a CSRF value derived from the session id. The review API
(/v1/review) takes only the Authorization header.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.background import BackgroundTask

from service.auth.deps import COOKIE_NAME, signed_in
from service.auth.service import Reviewer, active_names, csrf_matches, csrf_token
from service.auth.sessions import cookie_secure, end_session, require_same_origin, start_session
from service.deps import SessionDep, SessionsDep, SettingsDep
from service.errors import BadInput, NemawashiError, Unauthorized
from service.notify.service import Outbox
from service.retrieval.deps import KnowledgeDep
from service.review import decisions, phrasings, repository, service
from service.review.grouping import QuestionSpace
from service.review.schemas import BLANK, Decision, ItemQuery, PhrasingIn, ReviewProblem
from service.triage.deps import TriageDep
from service.web.i18n import TEXTS, request_lang
from service.web.pages import local_time, render_page

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
ASSETS = {
    "review.js": "application/javascript; charset=utf-8",
    "review.css": "text/css; charset=utf-8",
    "jobs.js": "application/javascript; charset=utf-8",
    "kb_admin.js": "application/javascript; charset=utf-8",
}
# A form percent-encodes its text: an 8,000-character Japanese answer (the field's limit) is 72 KB, 9 bytes a character.
_MAX_FORM_BYTES = 256 * 1024
_LIST_KEYS = ("status", "root_cause", "source", "department", "mode")
_decision = TypeAdapter(Decision)
# The queue filters as the filter form labels them (TEXTS keys), to name the ones a query string got wrong.
_FILTER_LABELS = {"min_confidence": "confidence", "max_confidence": "confidence"}
SIGNED_IN_PAGES = ("/review", "/dashboard", "/jobs", "/admin/kb", "/v1/jobs/", "/v1/reports/")


async def form_fields(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body (the pages post nothing else)."""
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise BadInput("the form is too large")
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


FormDep = Annotated[dict[str, list[str]], Depends(form_fields)]


def _one(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0].strip()


def _lang(request: Request) -> str:
    return request_lang(request)


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    response = render_page(request, name, context, section="review", status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _safe_next(target: str) -> str:
    """Only a page for reviewers (the UI, the dashboard, bulk jobs) or a download opened from one (a job's result,
    the dashboard's JSON): never another site (an open redirect)."""
    local = target.startswith(SIGNED_IN_PAGES) and not target.startswith("//") and "\\" not in target
    return target if local else "/review"


def login_page(request: Request, *, error: str | None = None, next_url: str | None = None) -> HTMLResponse:
    """401 with the sign-in form: nothing under /review is shown without a valid token."""
    if next_url is None:
        next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    context = {"error": error, "next_url": _safe_next(next_url), "hide_sign_out": True}
    return _page(request, "review_login.html", context, status_code=401)


async def sign_in_form(request: Request, _: Exception) -> HTMLResponse:
    """The answer to SignInRequired: the sign-in form, which comes back to the page asked for."""
    return login_page(request)


def _query_values(params: dict[str, list[str]], dropped: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, given in params.items():
        kept = [v for v in given if v.strip()]
        if kept and key not in dropped:
            values[key] = kept if key in _LIST_KEYS else kept[0]
    if "status" not in params or "status" in dropped:
        values["status"] = ["pending"]  # the queue opens on what still waits for a decision
    if "f" in params and "group" not in params:
        values["group"] = False  # the filter form was sent with its checkbox off
    for ignored in ("lang", "f", "back", "done"):
        values.pop(ignored, None)
    return values


def parse_query(params: dict[str, list[str]]) -> tuple[ItemQuery, list[str]]:
    """The list filters from the query string; blank fields mean "any". Invalid ones (a hand-edited URL) are
    dropped and returned by name, the others kept: not fatal."""
    try:
        return ItemQuery.model_validate(_query_values(params, [])), []
    except ValidationError as exc:  # the fields are independent: the ones named here are all that is wrong
        dropped = list(dict.fromkeys(str(e["loc"][0]) for e in exc.errors() if e["loc"]))
    try:
        return ItemQuery.model_validate(_query_values(params, dropped)), dropped
    except ValidationError:
        return ItemQuery(status=["pending"]), dropped or list(ItemQuery.model_fields)


def _bad_filters_text(dropped: list[str], *, lang: str) -> str | None:
    """The notice naming the filters the queue could not use, as the filter form labels them."""
    if not dropped:
        return None
    texts = TEXTS[lang]
    labels = {name: texts.get(_FILTER_LABELS.get(name, name)) for name in dropped}
    names = dict.fromkeys(label if isinstance(label, str) else name for name, label in labels.items())
    return str(texts["bad_filters"]).format(fields=str(texts["list_separator"]).join(names))


def _labels(triage: Any, lang: str) -> list[tuple[str, str]]:
    if triage is None:
        return []
    return [(label.id, getattr(label.name, lang)) for label in triage.classifier.taxonomy.labels]


@router.get("/review", response_class=HTMLResponse)
def queue_page(request: Request, session: SessionDep, knowledge: KnowledgeDep, settings: SettingsDep) -> Response:
    """The queue with its filters; j/k move, Enter opens."""
    who = signed_in(request, session)
    if who is None:
        return login_page(request)
    reviewer, token = who
    query, dropped = parse_query(parse_qs(request.url.query, keep_blank_values=True))
    problem = _bad_filters_text(dropped, lang=_lang(request))
    page = service.list_items(
        session, query=query, space=QuestionSpace.of(knowledge), threshold=settings.review_group_similarity
    )
    labels = _labels(getattr(request.app.state, "triage", None), _lang(request))
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang" and k not in dropped]
    back = urlencode(kept)
    base_qs = urlencode([(k, v) for k, v in kept if k != "page"])
    context = {
        "base_qs": base_qs,
        "reviewer": reviewer,
        "csrf": csrf_token(token),
        "query": query,
        "page": page,
        "back": back,
        "labels": labels,
        "label_names": dict(labels),
        "notice": {"kind": "error", "text": problem} if problem else None,
    }
    return _page(request, "review_list.html", context)


@router.post("/review/login")
def login(request: Request, session: SessionDep, settings: SettingsDep, form: FormDep) -> Response:
    """Exchange a token for the login cookie: a new session's id, never the token."""
    require_same_origin(request, settings)  # no other site may sign a browser in (as its own account)
    token, next_url = _one(form, "token"), _safe_next(_one(form, "next") or "/review")
    try:
        session_id = start_session(session, token=token, hours=settings.session_hours)
    except Unauthorized:
        return login_page(request, error=TEXTS[_lang(request)]["sign_in_error"], next_url=next_url)
    response = RedirectResponse(next_url, status_code=303)
    # Path "/": the dashboard and bulk jobs read it too (SameSite=Strict: no other site can send it). The review
    # API still accepts only the Authorization header.
    response.set_cookie(
        COOKIE_NAME, session_id, max_age=int(settings.session_hours * 3600), httponly=True, samesite="strict",
        secure=cookie_secure(request, settings), path="/",
    )  # fmt: skip
    return response


@router.get("/review/logout", response_class=HTMLResponse)
def logout_page(request: Request, session: SessionDep) -> Response:
    """The header's sign-out link on pages without a form: one button, so no other site can sign a reviewer out."""
    who = signed_in(request, session)
    if who is None:
        return RedirectResponse("/review", status_code=303)
    return _page(request, "review_logout.html", {"reviewer": who[0], "csrf": csrf_token(who[1])})


@router.post("/review/logout")
def logout(request: Request, session: SessionDep, form: FormDep) -> Response:
    who = signed_in(request, session)
    if who is not None and not csrf_matches(_one(form, "csrf"), who[1]):
        raise BadInput("the form is stale or came from another site: reload the page")
    if who is not None:
        end_session(session, who[1])
    response = RedirectResponse("/review", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


def _item_page(
    request: Request,
    session: Any,
    *,
    item_id: int,
    who: tuple[Reviewer, str],
    knowledge: Any,
    settings: Any,
    back: str,
    notice: dict[str, str] | None = None,
    status_code: int = 200,
    sent: dict[str, str] | None = None,
) -> HTMLResponse:
    """The item page; `sent` is a refused form's action, answer and reason, shown again so no typing is lost."""
    reviewer, token = who
    detail = service.item_detail(session, item_id=item_id, knowledge=knowledge, settings=settings)
    query, _ = parse_query(parse_qs(back, keep_blank_values=True))
    space = QuestionSpace.of(knowledge)
    prev_id, next_id = service.neighbours(
        session, query=query, item_id=item_id, space=space, threshold=settings.review_group_similarity
    )
    lang = _lang(request)
    triage = getattr(request.app.state, "triage", None)
    label_names = dict(_labels(triage, lang))
    context = {
        "reviewer": reviewer,
        "csrf": csrf_token(token),
        "d": detail,
        "back": back,
        "prev_id": prev_id,
        "next_id": next_id,
        "labels": list(label_names.items()),
        "label_names": label_names,
        "users": active_names(session),
        "idempotency_key": uuid.uuid4().hex,
        "notice": notice,
        "can_approve": bool(detail.draft and detail.draft.mode != "abstain"),
        "needs_confirm": bool(detail.draft and detail.draft.mode == "extractive" and not detail.item.final_answer),
        "objection": _objection(detail),
        "timezone": settings.timezone,
        "sent": sent or {"action": ""},
        "audit_note": partial(_audit_note, texts=TEXTS[lang], zone=ZoneInfo(settings.timezone)),
    }
    return _page(request, "review_item.html", context, status_code=status_code)


_REFUSED = re.compile(r"refused: (?P<who>.+) changed the item at (?P<when>\S+)$")
_WITH_GROUP = "with its group: "
_WITH_DECISION = re.compile(r"with #(?P<item>\d+)'s decision$")


def _audit_note(note: str, *, texts: dict[str, Any], zone: ZoneInfo) -> str:
    """An audit entry's note (stored in English, times in UTC) as the page's language says it."""
    if note.startswith(_WITH_GROUP):
        return str(texts["with_group"]) + note.removeprefix(_WITH_GROUP)
    if followed := _WITH_DECISION.match(note):
        return str(texts["with_decision"]).format(item=followed["item"])
    if refused := _REFUSED.match(note):
        try:
            when = local_time(datetime.fromisoformat(refused["when"]), zone)
        except ValueError:
            return note
        return str(texts["refused_note"]).format(who=refused["who"], when=when)
    return note


def _objection(detail: Any) -> bool:
    """Whether the comment counts as an objection: the reviewer's word, else the classifier's flag."""
    if detail.item.is_objection is not None:
        return bool(detail.item.is_objection)
    return bool(detail.classification is None or detail.classification.is_objection)


@router.get("/review/items/{item_id}", response_class=HTMLResponse)
def item_page(
    item_id: int, request: Request, session: SessionDep, knowledge: KnowledgeDep, settings: SettingsDep
) -> Response:
    """The draft and its cited passages side by side, the decisions, the group, similar items and the audit log."""
    who = signed_in(request, session)
    if who is None:
        return login_page(request)
    back = request.query_params.get("back", "")
    notice_key = request.query_params.get("done")
    texts = TEXTS[_lang(request)]
    notice = {"kind": "ok", "text": texts["done"].get(notice_key, "")} if notice_key in texts["done"] else None
    return _item_page(
        request, session, item_id=item_id, who=who, knowledge=knowledge, settings=settings, back=back, notice=notice
    )


def _sent(form: dict[str, list[str]]) -> dict[str, str]:
    return {
        "action": _one(form, "action"),
        "answer": (form.get("answer") or [""])[0],
        "reason": _one(form, "reason"),
        "reply": (form.get("reply") or [""])[0],
    }


def _decision_from(form: dict[str, list[str]], *, lang: str) -> Decision:
    action = _one(form, "action")
    fields: dict[str, Any] = {"action": action, "version": _one(form, "version") or 0}
    if action == "approve":
        fields["confirm_extract"] = _one(form, "confirm_extract").lower() in ("true", "on", "1")
    fields["group"] = [int(v) for v in form.get("group", []) if v.strip().isascii() and v.strip().isdigit()]
    for name in ("answer", "reason", "root_cause", "reply"):
        if name in form:
            fields[name] = _one(form, name) if name not in ("answer", "reply") else (form[name] or [""])[0]
    if action == "assign":
        fields["assignee"] = _one(form, "assignee") or None
    if action == "relabel":  # the panel sends what it showed too: only what the reviewer changed is a correction
        for name in ("root_cause", "is_objection"):
            if name in form and _one(form, name) == _one(form, f"shown_{name}"):
                fields.pop(name, None)
            elif name in form:
                fields[name] = _one(form, name)
        if "root_cause" not in fields and "is_objection" not in fields:
            raise _Worded(str(TEXTS[lang]["relabel_nothing"]))
    if action == "edit" and "reuse_choice" in form:  # the reply form's checkbox (absent when unticked)
        fields["reuse"] = "reuse" in form
    try:
        return _decision.validate_python(fields)
    except ValidationError as exc:
        raise _Worded(_field_problems(exc, lang=lang)) from exc


class _Worded(BadInput):
    """A refusal the page words itself, in its language (the page's own checks of a form)."""


def _blank(error: Any) -> bool:
    if error["type"] in ("missing", "string_too_short"):
        return True
    return error["type"] == "value_error" and str(error.get("ctx", {}).get("error")) == BLANK


def _field_problems(exc: ValidationError, *, lang: str) -> str:
    """What is wrong with a decision form's fields, a sentence per field in the page's language (pydantic says it
    in English, for the API)."""
    refusals, names = TEXTS[lang]["refusals"], TEXTS[lang]["fields"]
    sentences = []
    for error in exc.errors():
        field = str(error["loc"][1]) if len(error["loc"]) > 1 else ""
        if field == "version":
            sentences.append(str(refusals["form_stale"]))
        elif field not in names:
            sentences.append(str(refusals["unknown"]))
        elif _blank(error):
            sentences.append(str(refusals["blank"]).format(field=names[field]))
        elif error["type"] == "string_too_long":
            limit = error.get("ctx", {}).get("max_length")
            shown = f"{limit:,}" if isinstance(limit, int) else limit
            sentences.append(str(refusals["too_long"]).format(field=names[field], max=shown))
        else:
            sentences.append(str(refusals["invalid"]).format(field=names[field]))
    return ("" if lang == "ja" else " ").join(dict.fromkeys(sentences)) or str(refusals["unknown"])


def _refusal_text(exc: NemawashiError, *, lang: str, zone: str) -> str:
    """A refused form's notice in the page's language: the code in the error's detail worded with the values it
    carries, else a general sentence. Never the error's English message, which is the API's, for programs."""
    if isinstance(exc, _Worded):
        return exc.message
    if isinstance(exc, decisions.StaleDecision):
        return _stale_text(exc, lang=lang, zone=zone)
    texts = TEXTS[lang]
    refusals = texts["refusals"]
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    code = detail.get("code")
    if code not in set(ReviewProblem):
        return str(refusals["unknown"])
    values = dict(detail)
    try:
        if code == ReviewProblem.not_allowed_from:
            values["status"] = texts["statuses"].get(detail["status"], detail["status"])
            values["action"] = texts[detail["action"]]
        elif code == ReviewProblem.wrong_language:
            values["answer_lang"] = refusals["langs"].get(detail["answer_lang"], detail["answer_lang"])
        elif code == ReviewProblem.stale_phrasing:
            if not detail.get("changed_by"):
                return str(refusals["stale"])
            values["who"] = detail["changed_by"]
            values["version"] = detail["current_version"]
            values["when"] = local_time(datetime.fromisoformat(str(detail["changed_at"])), ZoneInfo(zone))
        return str(refusals[code]).format(**values)
    except (KeyError, TypeError, ValueError):
        return str(refusals["stale"] if exc.status_code == 409 else refusals["unknown"])


def _stale_text(exc: decisions.StaleDecision, *, lang: str, zone: str) -> str:
    """The conflict notice in the page's language, the time in the configured zone."""
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    try:
        when = local_time(datetime.fromisoformat(str(detail["changed_at"])), ZoneInfo(zone))
    except (KeyError, ValueError):
        return str(TEXTS[lang]["refusals"]["stale"])
    who, version, yours = detail.get("changed_by"), detail.get("current_version"), detail.get("your_version")
    return str(TEXTS[lang]["stale_short"]).format(who=who, when=when, version=version, yours=yours)


def _confirmed_extract(session: Any, *, item_id: int, decision: Decision, lang: str) -> None:
    """The API's refusal of an unconfirmed excerpt approval, worded for the page."""
    try:
        service.check_extract_confirmed(session, item_id=item_id, decision=decision)
    except BadInput as exc:
        raise _Worded(str(TEXTS[lang]["extract_refused"])) from exc


@router.post("/review/items/{item_id}", response_class=HTMLResponse)
def decide_in_page(
    item_id: int,
    request: Request,
    session: SessionDep,
    form: FormDep,
    knowledge: KnowledgeDep,
    settings: SettingsDep,
    triage: TriageDep,
    sessions: SessionsDep,
) -> Response:
    """A decision from the item page's forms; a stale one re-renders the page with a notice naming who changed it."""
    who = signed_in(request, session)
    if who is None:
        return login_page(request)
    back = _one(form, "back")
    refuse = partial(  # a refusal: the item page again with a notice, the typed text kept
        _item_page, request, session, item_id=item_id, who=who, knowledge=knowledge, settings=settings, back=back,
        sent=_sent(form),
    )  # fmt: skip
    if not csrf_matches(_one(form, "csrf"), who[1]):
        return refuse(notice={"kind": "error", "text": str(TEXTS[_lang(request)]["csrf"])}, status_code=403)
    try:
        decision = _decision_from(form, lang=_lang(request))
        _confirmed_extract(session, item_id=item_id, decision=decision, lang=_lang(request))
        result = decisions.decide(
            session,
            item_id=item_id,
            decision=decision,
            sessions=sessions,
            reviewer=who[0],
            approved=triage.approved,
            labels=triage.classifier.taxonomy.ids,
            idempotency_key=_one(form, "idempotency_key") or None,
            outbox=Outbox.from_settings(settings),
        )
    except decisions.StaleDecision as exc:  # refused and rolled back; the attempt is in the audit log already
        return refuse(
            notice={"kind": "conflict", "text": _stale_text(exc, lang=_lang(request), zone=settings.timezone)},
            status_code=409,
        )
    except NemawashiError as exc:
        session.rollback()
        text = _refusal_text(exc, lang=_lang(request), zone=settings.timezone)
        return refuse(notice={"kind": "error", "text": text}, status_code=exc.status_code)
    task = None
    if result.retrain and not result.replayed:
        task = BackgroundTask(decisions.retrain_classifier, sessions, classifier=triage.classifier.local)
    target = f"/review/items/{item_id}?{urlencode({'back': back, 'done': decision.action})}"
    return RedirectResponse(target, status_code=303, background=task)


@router.post("/review/items/{item_id}/phrasings", response_class=HTMLResponse)
def add_phrasing_in_page(
    item_id: int,
    request: Request,
    session: SessionDep,
    form: FormDep,
    knowledge: KnowledgeDep,
    settings: SettingsDep,
    triage: TriageDep,
    sessions: SessionsDep,
) -> Response:
    """The item page's "another phrasing" form; a refusal re-renders the page with the typed text kept."""
    who = signed_in(request, session)
    if who is None:
        return login_page(request)
    back, lang = _one(form, "back"), _lang(request)
    sent = {"action": "phrasing", "phrasing": (form.get("phrasing") or [""])[0]}
    refuse = partial(
        _item_page, request, session, item_id=item_id, who=who, knowledge=knowledge, settings=settings, back=back,
        sent=sent,
    )  # fmt: skip
    if not csrf_matches(_one(form, "csrf"), who[1]):
        return refuse(notice={"kind": "error", "text": str(TEXTS[lang]["csrf"])}, status_code=403)
    try:
        body = PhrasingIn.model_validate({"text": sent["phrasing"], "version": _one(form, "version") or 0})
        phrasings.add_phrasing(
            session,
            sessions=sessions,
            approved=triage.approved,
            item_id=item_id,
            text=body.text,
            version=body.version,
            reviewer=who[0],
        )
        session.commit()
    except ValidationError as exc:
        stale_form = any(e["loc"] and e["loc"][0] == "version" for e in exc.errors())
        text = TEXTS[lang]["refusals"]["form_stale"] if stale_form else TEXTS[lang]["phrasing_invalid"]
        return refuse(notice={"kind": "error", "text": str(text)}, status_code=422)
    except NemawashiError as exc:
        session.rollback()
        kind = "conflict" if exc.status_code == 409 else "error"
        text = _refusal_text(exc, lang=lang, zone=settings.timezone)
        return refuse(notice={"kind": kind, "text": text}, status_code=exc.status_code)
    target = f"/review/items/{item_id}?{urlencode({'back': back, 'done': 'phrasing'})}"
    return RedirectResponse(target, status_code=303)


@router.get("/review/items/{item_id}/state")
def item_state(item_id: int, request: Request, session: SessionDep) -> JSONResponse:
    """The item's version and who changed it last: the page polls this to warn of someone else's change."""
    if signed_in(request, session) is None:
        return JSONResponse({"error": "sign in at /review"}, status_code=401)
    state = decisions.item_state(session, repository.get_item(session, item_id))
    return JSONResponse(state.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.get("/review/static/{name}")
def asset(name: str, request: Request, session: SessionDep) -> Response:
    """review.js and review.css, for signed-in reviewers."""
    if name not in ASSETS:
        return JSONResponse({"error": f"no asset {name!r}"}, status_code=404)
    if signed_in(request, session) is None:
        return JSONResponse({"error": "sign in at /review"}, status_code=401)
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "private, max-age=300"})
