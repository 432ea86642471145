"""HTTP for reports: /v1/reports/... and the /dashboard page."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from service.auth.deps import ReaderDep, signed_in_reviewer
from service.config import Settings
from service.deps import SessionDep, SettingsDep
from service.errors import error_responses
from service.reports.records import known_departments
from service.reports.render import dashboard_context
from service.reports.schemas import ObjectionReport, ReportQuery
from service.reports.service import objection_report
from service.triage.deps import TriageDep
from service.triage.service import Triage
from service.web.i18n import request_lang
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
    request: Request,
    query: QueryDep,
    session: SessionDep,
    triage: TriageDep,
    settings: SettingsDep,
    reviewer: ReaderDep,
) -> HTMLResponse:
    """The objection report as a page for the project team, with charts and filters, in the reader's language."""
    report = _report(query, session, triage, settings)
    lang = request_lang(request)
    context = dashboard_context(
        report, departments=known_departments(session), query_string=request.url.query, lang=lang
    )
    return render_page(request, "dashboard.html", {**context, "reviewer": reviewer}, section="dashboard")
