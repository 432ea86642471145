"""Reports as people read them: the dashboard's context, the plan-feedback report as HTML or Markdown."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from service.errors import BadInput
from service.reports.charts import ChartFormat, Series, stacked_bars
from service.reports.records import NOT_SET, week_start
from service.reports.schemas import CauseSection, ObjectionReport, PlanFeedbackReport
from service.triage.schemas import Source
from service.web.i18n import TEXTS
from service.web.pages import localtime_filter, templates
from service.web.palette import cause_colour

MARKDOWN_TEMPLATES = Path(__file__).parent / "templates"
REPORT_SUFFIXES = (".md", ".html")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


@dataclass(frozen=True)
class Chart:
    """A rendered chart: its file name stem, title (alt text) and bytes."""

    key: str
    title: str
    fmt: ChartFormat
    data: bytes

    @property
    def data_uri(self) -> str:
        mime = "image/svg+xml" if self.fmt == "svg" else "image/png"
        return f"data:{mime};base64,{base64.b64encode(self.data).decode()}"


def week_label(week: str) -> str:
    """ "2026-W48" → "11/23〜" (from the week's Monday): short enough for an axis, and no ISO week number."""
    return f"{week_start(week)}〜"


def department_label(department: str | None, lang: str = "") -> str:
    """A department as shown; an unknown one is "unknown" in the page's language (both without one)."""
    if department and department != NOT_SET:
        return department
    return str(TEXTS[lang]["report"]["not_set"]) if lang in TEXTS else NOT_SET


def _cause_series(report: ObjectionReport, column: str, columns: list[str | None], lang: str) -> list[Series]:
    series = []
    for index, cause in enumerate(report.root_causes):
        values = [
            sum(c.questions for c in report.counts if c.root_cause == cause.id and getattr(c, column) == value)
            for value in columns
        ]
        if any(values):
            series.append(Series(cause.ja if lang == "ja" else cause.en, values, cause_colour(cause.id, index)))
    return series


def overview_charts(report: ObjectionReport, fmt: ChartFormat, lang: str = "ja") -> list[Chart]:
    """Stacked bars of root cause by ISO week and by department; none when there is no data."""
    if report.empty:
        return []
    words = TEXTS[lang]["report"]
    by_week = stacked_bars(
        categories=[week_label(w) for w in report.weeks],
        series=_cause_series(report, "week", list(report.weeks), lang),
        title=words["by_week"],
        fmt=fmt,
        value_label=words["value_label"],
    )
    by_department = stacked_bars(
        categories=[department_label(d, lang) for d in report.departments],
        series=_cause_series(report, "department", report.departments, lang),
        title=words["by_department"],
        fmt=fmt,
        horizontal=True,
        value_label=words["value_label"],
    )
    return [
        Chart("by-week", words["by_week"], fmt, by_week),
        Chart("by-department", words["by_department"], fmt, by_department),
    ]


def cause_chart(section: CauseSection, index: int, fmt: ChartFormat, lang: str = "ja") -> Chart | None:
    """The week-by-week trend of one root cause."""
    if not section.questions:
        return None
    name = section.cause.ja if lang == "ja" else section.cause.en
    words = TEXTS[lang]["report"]
    title = str(words["trend"]).format(cause=name)
    data = stacked_bars(
        categories=[week_label(w.week) for w in section.weekly],
        series=[Series(name, [w.questions for w in section.weekly], cause_colour(section.cause.id, index))],
        title=title,
        fmt=fmt,
        height=2.4,
        value_label=words["value_label"],
    )
    return Chart(f"trend-{re.sub(r'[^A-Za-z0-9_-]', '_', section.cause.id)}", title, fmt, data)


def pivot(report: ObjectionReport, column: str) -> dict[str, Any]:
    """Root cause × week (or department) counts as table rows, with totals."""
    columns: list[str | None] = list(report.weeks) if column == "week" else list(report.departments)
    rows: list[dict[str, Any]] = []
    for cause in report.root_causes:
        values = [
            sum(c.questions for c in report.counts if c.root_cause == cause.id and getattr(c, column) == value)
            for value in columns
        ]
        if any(values):
            rows.append({"cause": cause, "values": values, "total": sum(values)})
    totals = [sum(row["values"][i] for row in rows) for i in range(len(columns))]
    headers = list(report.weeks) if column == "week" else list(columns)  # the template names an unknown department
    return {"headers": headers, "rows": rows, "totals": totals, "total": sum(totals)}


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def md(text: object) -> str:
    """Text written by people, made inert in Markdown: one line, no markup, no raw HTML."""
    flat = " ".join(str(text).split())
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", flat)


_MARKDOWN = Environment(
    loader=FileSystemLoader(MARKDOWN_TEMPLATES), autoescape=False, undefined=StrictUndefined, trim_blocks=True
)
_MARKDOWN.filters["md"] = md
_MARKDOWN.filters["localtime"] = localtime_filter


def _helpers(base_url: str, lang: str = "") -> dict[str, Any]:
    return {
        "percent": percent,
        "pivot": pivot,
        "department_label": lambda department: department_label(department, lang),
        "colour": cause_colour,
        "week_start": week_start,
        "base_url": base_url.rstrip("/"),
    }


def dashboard_context(
    report: ObjectionReport, *, departments: list[str], query_string: str, lang: str = "ja"
) -> dict[str, Any]:
    """What dashboard.html needs: the report, its charts as inline SVG, the filter choices."""
    return {
        "report": report,
        "query_string": query_string,
        "charts": overview_charts(report, "svg", lang),
        "department_choices": departments,
        "sources": [str(s) for s in Source if s != Source.review],  # phrasings are not counted in reports
        **_helpers("", lang),
    }


def render_plan_feedback_html(report: PlanFeedbackReport, *, base_url: str, lang: str = "ja") -> str:
    """One self-contained HTML file in one language: charts inline as SVG, no external requests."""
    template = templates.env.get_template("report_plan_feedback.html")
    return template.render(t=TEXTS[lang], **plan_feedback_context(report, base_url=base_url, lang=lang))


def plan_feedback_context(report: PlanFeedbackReport, *, base_url: str, lang: str) -> dict[str, Any]:
    """What report_plan_feedback.html needs, as a file or as the page /dashboard/plan-feedback."""
    ordered = _in_taxonomy_order(report)
    return {
        "report": report,
        "charts": overview_charts(report.overview, "svg", lang),
        "trends": {s.cause.id: cause_chart(s, i, "svg", lang) for i, s in enumerate(ordered)},
        "lang": lang,
        "section": "dashboard",
        "cause_index": {s.cause.id: i for i, s in enumerate(ordered)},
        "doc_titles": _doc_titles(report),
        **_helpers(base_url, lang),
    }


def _doc_titles(report: PlanFeedbackReport) -> dict[str, str]:
    """doc id → title of every entry that answered something: suggestions link to them by title, not by id (also
    one an LLM suggestion cites beyond a section's ten most cited)."""
    return {**report.documents, **{e.doc_id: e.title for s in report.sections for e in s.answered_by}}


def render_plan_feedback_markdown(
    report: PlanFeedbackReport, *, stem: str, base_url: str, lang: str = "ja"
) -> tuple[str, list[Chart]]:
    """Markdown text in one language and the PNG charts it links (to be written beside it as `{stem}-{key}.png`)."""
    charts = overview_charts(report.overview, "png", lang)
    trends = {s.cause.id: cause_chart(s, i, "png", lang) for i, s in enumerate(_in_taxonomy_order(report))}
    text = _MARKDOWN.get_template("plan_feedback.md.j2").render(
        report=report,
        charts=charts,
        trends=trends,
        stem=stem,
        lang=lang,
        t=TEXTS[lang],
        doc_titles=_doc_titles(report),
        **_helpers(base_url, lang),
    )
    return text, [*charts, *(c for c in trends.values() if c)]


def _in_taxonomy_order(report: PlanFeedbackReport) -> list[CauseSection]:
    """Sections in taxonomy order, so a root cause keeps its colour whatever its rank."""
    order = [c.id for c in report.overview.root_causes]
    return sorted(report.sections, key=lambda s: order.index(s.cause.id))


def write_plan_feedback(report: PlanFeedbackReport, output: Path, *, base_url: str, lang: str = "ja") -> list[Path]:
    """Write the report in lang as .html (charts inline) or .md (PNG charts beside it); the files written."""
    suffix = output.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise BadInput(f"{output}: the report is written as .md or .html, not {suffix or 'a file without suffix'}")
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        output.write_text(render_plan_feedback_html(report, base_url=base_url, lang=lang), encoding="utf-8")
        return [output]
    text, charts = render_plan_feedback_markdown(report, stem=output.stem, base_url=base_url, lang=lang)
    written = []
    for chart in charts:
        path = output.with_name(f"{output.stem}-{chart.key}.png")
        path.write_bytes(chart.data)
        written.append(path)
    output.write_text(text, encoding="utf-8")
    return [output, *written]
