"""`nemawashi report ...`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from service.config import get_settings
from service.errors import NemawashiError
from service.reports.schemas import ReportQuery
from service.triage.schemas import Source

report_app = typer.Typer(help="Reports for the project team.", no_args_is_help=True)
err = Console(stderr=True)
SOURCES = [str(s) for s in Source]
LANGS = ("ja", "en")


def parse_day(value: str | None, option: str) -> date | None:
    """A calendar day as YYYY-MM-DD, or a message that says what was wrong."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        message = f"{value!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-01"
        raise typer.BadParameter(message, param_hint=option) from None


@report_app.command("plan-feedback")
def plan_feedback(
    output: Annotated[Path, typer.Option("-o", "--output", help="FILE.md (charts as PNG beside it) or FILE.html.")],
    since: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (in NEMAWASHI_TIMEZONE).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (in NEMAWASHI_TIMEZONE).")] = None,
    source: Annotated[str | None, typer.Option(help=f"Only one channel: {', '.join(SOURCES)}.")] = None,
    department: Annotated[str | None, typer.Option(help="Only one department.")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Where the service runs, for links to /kb pages (default: NEMAWASHI_PUBLIC_URL, else host and port)."
        ),
    ] = None,
    lang: Annotated[str, typer.Option(help="The report's language: ja or en.")] = "ja",
) -> None:
    """The steering committee's report: per root cause what staff said, what answered it, what is missing,
    and suggested changes to the plan (drafted by the LLM when one is configured), with charts."""
    if output.suffix.lower() not in (".md", ".html"):
        raise typer.BadParameter(f"{output.name}: write the report as .md or .html", param_hint="-o")
    if lang not in LANGS:
        raise typer.BadParameter(f"{lang!r}: use ja or en", param_hint="--lang")
    if source is not None and source not in SOURCES:
        raise typer.BadParameter(f"{source!r}: use one of {', '.join(SOURCES)}", param_hint="--source")
    try:
        query = ReportQuery(
            since=parse_day(since, "--since"), until=parse_day(until, "--until"), source=source, department=department
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        field = str(error["loc"][0]) if error["loc"] else "since"  # a check across fields: since after until
        raise typer.BadParameter(message, param_hint=f"--{field}") from None
    try:
        written = _write(query, output, base_url=base_url, lang=lang)
    except NemawashiError as exc:
        err.print(f"[bold red]error:[/] {exc.message}")
        raise typer.Exit(code=2) from exc
    err.print(f"report → {written[0]}")
    for chart in written[1:]:
        err.print(f"  chart → {chart}")


def _write(query: ReportQuery, output: Path, *, base_url: str | None, lang: str) -> list[Path]:
    from zoneinfo import ZoneInfo

    from service.bootstrap import clients
    from service.db import session_scope
    from service.llm.client import make_chat_model
    from service.logging import configure_logging
    from service.reports.render import write_plan_feedback
    from service.reports.service import plan_feedback_report
    from service.reports.suggestions import load_plan_prompt
    from service.triage.taxonomy import load_taxonomy

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    llm = make_chat_model(settings)
    with clients(settings) as opened, session_scope(opened.sessionmaker) as session:
        report = plan_feedback_report(
            session,
            query=query,
            taxonomy=load_taxonomy(settings.taxonomy_file),
            embedder=opened.knowledge.store.embedder,
            zone=ZoneInfo(settings.timezone),
            llm=llm,
            prompt=load_plan_prompt(settings) if llm else None,
        )
    base_url = base_url or settings.public_url or f"http://{settings.host}:{settings.port}"
    return write_plan_feedback(report, output, base_url=base_url, lang=lang)
