"""The job report: a summary table for the terminal and a self-contained HTML page with SVG charts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from service.jobs.models import Job
from service.jobs.results import NO_DEPARTMENT, OTHER_DEPARTMENTS, Summary
from service.jobs.row_errors import row_error_text
from service.web.palette import cause_colour

if TYPE_CHECKING:
    from service.triage.taxonomy import Taxonomy

BAR_HEIGHT = 26
LABEL_WIDTH = 230
CHART_WIDTH = 720


@dataclass(frozen=True)
class LabelName:
    id: str
    name: str  # in the report's language only: "雇用・キャリアへの不安"


def report_labels(taxonomy: Taxonomy, lang: str = "ja") -> list[LabelName]:
    """The root causes, named in the report's language (a report never doubles a name as 「日本語 / English」)."""
    return [LabelName(label.id, getattr(label.name, lang)) for label in taxonomy.labels]


def color(cause: str, index: int = 0) -> str:
    """The shared palette: a label has the same colour here as on the dashboard."""
    return cause_colour(cause, index)


def cause_chart(summary: Summary, labels: list[LabelName], *, title: str) -> Markup:
    """Horizontal bars: comments per root cause, with count and share."""
    width = CHART_WIDTH - LABEL_WIDTH - 110
    top = max(summary.by_cause.values(), default=0) or 1
    parts = []
    for i, label in enumerate(labels):
        count = summary.by_cause.get(label.id, 0)
        y = i * (BAR_HEIGHT + 8)
        bar = round(width * count / top)
        parts.append(
            f'<text x="0" y="{y + 18}" class="label">{escape(_short(label.name, 16))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{bar}" height="{BAR_HEIGHT}" rx="3" fill="{color(label.id, i)}">'
            f"<title>{escape(label.name)}: {count}</title></rect>"
            f'<text x="{LABEL_WIDTH + bar + 8}" y="{y + 18}" class="value">'
            f"{count:,} ({summary.share(count):.0%})</text>"
        )
    height = len(labels) * (BAR_HEIGHT + 8)
    return _svg(height, "".join(parts), title)


def department_chart(summary: Summary, labels: list[LabelName], *, title: str) -> Markup:
    """One 100% stacked bar per department: where each department's resistance comes from."""
    width = CHART_WIDTH - LABEL_WIDTH - 70
    parts = []
    for row, (department, counts) in enumerate(summary.by_department.items()):
        total = sum(counts.values()) or 1
        y = row * (BAR_HEIGHT + 8)
        parts.append(f'<text x="0" y="{y + 18}" class="label">{escape(_short(department, 16))}</text>')
        x = float(LABEL_WIDTH)
        for i, label in enumerate(labels):
            share = counts.get(label.id, 0) / total
            if share <= 0:
                continue
            w = width * share
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{BAR_HEIGHT}" fill="{color(label.id, i)}">'
                f"<title>{escape(department)} · {escape(label.name)}: {counts[label.id]} ({share:.0%})</title></rect>"
            )
            if w > 34:
                parts.append(f'<text x="{x + w / 2:.1f}" y="{y + 18}" class="inbar">{share:.0%}</text>')
            x += w
        parts.append(f'<text x="{LABEL_WIDTH + width + 8}" y="{y + 18}" class="value">{total:,}</text>')
    legend_y = len(summary.by_department) * (BAR_HEIGHT + 8) + 6
    legend, legend_height = _legend(labels, legend_y)
    parts.append(legend)
    return _svg(legend_y + legend_height, "".join(parts), title)


LEGEND_ROW = 18


def _legend(labels: list[LabelName], y: int) -> tuple[str, int]:
    """Every label's colour and full name, in rows that fit the chart's width; the SVG and the height it takes."""
    items = []
    x, row = LABEL_WIDTH, 0
    for i, label in enumerate(labels):
        width = 24 + sum(7 if ord(c) < 128 else 13 for c in label.name)  # 12 px text: about 7 px Latin, 13 px kana
        if x > LABEL_WIDTH and x + width > CHART_WIDTH:
            x, row = LABEL_WIDTH, row + 1
        top = y + row * LEGEND_ROW
        items.append(
            f'<rect x="{x}" y="{top}" width="12" height="12" fill="{color(label.id, i)}"/>'
            f'<text x="{x + 16}" y="{top + 11}" class="legend">{escape(label.name)}</text>'
        )
        x += width
    return "".join(items), (row + 1) * LEGEND_ROW + 6


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(height: int, body: str, title: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" width="{CHART_WIDTH}" height="{height}">'
        "<style>.label{font:13px sans-serif;fill:#222}.value{font:12px sans-serif;fill:#444}"
        ".inbar{font:11px sans-serif;fill:#fff;text-anchor:middle}.legend{font:12px sans-serif;fill:#333}</style>"
        f"{body}</svg>"
    )


def render_report(job: Job, summary: Summary, labels: list[LabelName], *, mode: str, lang: str = "ja") -> str:
    """The report as one HTML document with no external resources (it opens from a file), in the shared layout."""
    from service.web.i18n import TEXTS
    from service.web.pages import templates  # jinja2 environment shared with the other pages

    texts = TEXTS[lang]
    summary = _departments_named(summary, texts["jobrep"])
    summary = replace(summary, error_samples=[(i, row_error_text(e, lang)) for i, e in summary.error_samples])
    template = templates.env.get_template("jobs_report.html")
    return template.render(
        lang=lang,
        t=texts,
        section="jobs",
        job=job,
        mode=mode,
        summary=summary,
        labels=labels,
        names={label.id: label.name for label in labels},
        cause_chart=cause_chart(summary, labels, title=texts["jobrep"]["chart_causes"]),
        department_chart=(
            department_chart(summary, labels, title=texts["jobrep"]["chart_departments"])
            if summary.by_department
            else None
        ),
        colors={label.id: color(label.id, i) for i, label in enumerate(labels)},
    )


def _departments_named(summary: Summary, texts: dict[str, str]) -> Summary:
    """The summary with its stand-in departments (no department, the rest grouped) in the report's language."""
    words = {NO_DEPARTMENT: texts["no_department"], OTHER_DEPARTMENTS: texts["other_departments"]}
    return replace(summary, by_department={words.get(d, d): c for d, c in summary.by_department.items()})


def write_report(
    path: Path, job: Job, summary: Summary, labels: list[LabelName], *, mode: str, lang: str = "ja"
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(job, summary, labels, mode=mode, lang=lang), encoding="utf-8")
    return path


def report_path(output: Path) -> Path:
    """Where the report goes: next to the output, same name, .report.html."""
    return output.with_name(f"{output.stem}.report.html")
