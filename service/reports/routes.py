"""HTTP for reports: /v1/reports/..., the /dashboard page and the plan-feedback report as a page."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.auth.deps import ReaderDep, signed_in_reviewer
from service.config import Settings
from service.deps import SessionDep, SettingsDep
from service.errors import error_responses
from service.reports.records import known_departments
from service.reports.render import dashboard_context, plan_feedback_context
from service.reports.schemas import ObjectionReport, ReportQuery
from service.reports.service import objection_report, plan_feedback_report
from service.triage.deps import TriageDep
from service.triage.service import Triage
from service.web.i18n import TEXTS, request_lang
from service.web.pages import render_page

router = APIRouter(
    tags=["reports"], dependencies=[Depends(signed_in_reviewer)], responses=error_responses(401, 422, 503)
)
QueryDep = Annotated[ReportQuery, Query()]


@router.get("/v1/reports/objections", response_model=ObjectionReport)
def objections(query: QueryDep, session: SessionDep, triage: TriageDep, settings: SettingsDep) -> ObjectionReport:
    """Counts by root cause × department × ISO week (days and weeks in NEMAWASHI_TIMEZONE), approval and
    abstention rates, the questions the knowledge base could not answer (near-duplicates grouped) and the most
    recurring objections, quotes redacted."""
    return _report(query, session, triage, settings)


def _report(query: ReportQuery, session: Session, triage: Triage, settings: Settings) -> ObjectionReport:
    return objection_report(
        session,
        query=query,
        taxonomy=triage.classifier.taxonomy,
        embedder=triage.knowledge.store.embedder,
        zone=ZoneInfo(settings.timezone),
    )


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard(
    request: Request, session: SessionDep, triage: TriageDep, settings: SettingsDep, reviewer: ReaderDep
) -> HTMLResponse:
    """The objection report as a page for the project team, with charts and filters, in the reader's language.
    Filters it cannot use (a start after the end, a hand-typed source) are named in the page's words and dropped."""
    lang = request_lang(request)
    query, problem = _page_query(request, lang)
    report = _report(query, session, triage, settings)
    context = dashboard_context(
        report, departments=known_departments(session), query_string=request.url.query, lang=lang
    )
    context |= {"reviewer": reviewer, "problem": problem}
    return render_page(request, "dashboard.html", context, section="dashboard", status_code=422 if problem else 200)


@router.get("/dashboard/plan-feedback", response_class=HTMLResponse, include_in_schema=False)
def plan_feedback_page(
    request: Request, session: SessionDep, triage: TriageDep, settings: SettingsDep, reviewer: ReaderDep
) -> HTMLResponse:
    """The steering committee's plan-feedback report as a page, for the dashboard's filters, with rule-based
    suggestions (`nemawashi report plan-feedback` asks the LLM for them when one is configured)."""
    lang = request_lang(request)
    query, problem = _page_query(request, lang)
    report = plan_feedback_report(
        session,
        query=query,
        taxonomy=triage.classifier.taxonomy,
        embedder=triage.knowledge.store.embedder,
        zone=ZoneInfo(settings.timezone),
    )
    context = plan_feedback_context(report, base_url="", lang=lang) | {"reviewer": reviewer, "problem": problem}
    status_code = 422 if problem else 200
    return render_page(request, "report_plan_feedback.html", context, section="dashboard", status_code=status_code)


def _page_query(request: Request, lang: str) -> tuple[ReportQuery, str | None]:
    """The page's filters, or none and a message in lang naming the ones it cannot use."""
    asked = {name: request.query_params.get(name) for name in ReportQuery.model_fields}
    try:
        return ReportQuery.model_validate(asked), None
    except ValidationError as exc:
        fields = dict.fromkeys(str(e["loc"][0]) if e["loc"] else "since" for e in exc.errors())
        names = "、".join(str(TEXTS[lang]["dash"].get(f, f)) for f in fields)
        return ReportQuery(), str(TEXTS[lang]["dash"]["bad_filters"]).format(fields=names)
