"""`nemawashi classify`: bulk classification of a survey file, resumable, with a summary and an HTML report.

Kept light at import time (service/cli.py imports it at the top): everything heavy is imported inside.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from service.config import Settings
    from service.jobs.estimate import Estimate
    from service.jobs.models import Job
    from service.jobs.results import Summary


def classify(
    file: Annotated[Path, typer.Argument(help="Survey file: CSV/TSV (UTF-8 or Shift_JIS), XLSX or JSONL.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Result file: .csv (UTF-8 with BOM), .tsv or .xlsx.")
    ] = None,
    text_column: Annotated[str | None, typer.Option(help="Column with the comments (default: detected).")] = None,
    department_column: Annotated[
        str | None, typer.Option(help="Column with the department, for the breakdown (default: detected).")
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="Input encoding (default: detected).")] = None,
    output_encoding: Annotated[str, typer.Option(help="Encoding of a CSV result.")] = "utf-8-sig",
    sheet: Annotated[str | None, typer.Option(help="XLSX sheet (default: the first).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count rows, distinct comments, tokens and cost; call nothing.")
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted run for this file.")] = False,
    suggest: Annotated[
        bool, typer.Option("--suggest", help="Also draft an answer per comment (slower; one /v1/ask each).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Classify every comment of a survey file by root cause; every row comes out once, in order."""
    from rich.console import Console

    from service.config import get_settings
    from service.errors import NemawashiError
    from service.jobs.service import JobOptions, open_input, spreadsheet_limits
    from service.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    err = Console(stderr=True, soft_wrap=True)
    options = JobOptions(text_column, department_column, encoding, sheet, suggest)
    try:
        source, layout = open_input(file, options, limits=spreadsheet_limits(settings))
        if dry_run:
            from service.jobs.estimate import estimate

            _print_estimate(err, estimate(source, layout, settings), as_json=as_json)
            return
        out = (output or _default_output(file)).resolve()
        job, summary, report = _run(
            settings, err, file.resolve(), out, options, resume=resume, encoding=output_encoding
        )
    except NemawashiError as exc:
        err.print(f"[bold red]error:[/] {exc.message}")
        raise typer.Exit(code=2) from exc
    _print_summary(err, job, summary, out, report)
    if as_json:
        print(json.dumps(_summary_json(job, summary, out, report), ensure_ascii=False, indent=2))


def _default_output(file: Path) -> Path:
    suffix = ".xlsx" if file.suffix.lower() in (".xlsx", ".xlsm") else ".csv"
    return file.with_name(f"{file.stem}.classified{suffix}")


def _run(
    settings: Settings, err: Console, file: Path, out: Path, options: Any, *, resume: bool, encoding: str
) -> tuple[Job, Summary, Path]:
    from service.bootstrap import build_triage, open_clients
    from service.db import session_scope
    from service.errors import NotReady
    from service.jobs.engine import TriageClassifier
    from service.jobs.report import report_path, write_report
    from service.jobs.results import summarize, write_result
    from service.jobs.service import JobContext, run_job

    clients = open_clients(settings)
    try:
        if not clients.knowledge.store.exists():
            raise NotReady("the knowledge base is not indexed yet: run `nemawashi ingest`")
        job = _job_for(clients.sessionmaker, err, file, out, options, resume=resume, settings=settings)
        if job.status != "done":
            with err.status("training the classifier…"):
                triage = build_triage(settings, clients)
            classifier = TriageClassifier(triage, clients.sessionmaker, suggest=job.options.get("suggest", False))
            job = _with_progress(
                err,
                job,
                lambda hook: run_job(
                    JobContext(settings, clients.sessionmaker, classifier), job_id=job.public_id, on_progress=hook
                ),
            )
        if job.status == "failed":
            raise NotReady(job.message or "the job failed")
        write_result(clients.sessionmaker, job, out, encoding=encoding)
        taxonomy = build_labels(settings)
        with session_scope(clients.sessionmaker) as session:
            summary = summarize(session, job, causes=[label.id for label in taxonomy])
        report = write_report(report_path(out), job, summary, taxonomy, mode=settings.classifier_mode)
    finally:
        clients.close()
    return job, summary, report


def build_labels(settings: Settings) -> list[Any]:
    from service.jobs.report import report_labels
    from service.triage.taxonomy import load_taxonomy

    return report_labels(load_taxonomy(settings.taxonomy_file))


def _job_for(
    sessions: Any, err: Console, file: Path, out: Path, options: Any, *, resume: bool, settings: Settings
) -> Job:
    """The interrupted job to continue (--resume), or a new one."""
    from service.db import session_scope
    from service.jobs.repository import find_resumable, supersede
    from service.jobs.service import create_job, file_sha256, spreadsheet_limits

    with session_scope(sessions) as session:
        previous = find_resumable(session, input_sha256=file_sha256(file), output_path=out)
        if resume and previous is not None:
            err.print(f"resuming job {previous.public_id}: {previous.done_rows:,} of {previous.total_rows:,} rows done")
            supersede(session, previous)  # a run of another file into this output is left for good
            return previous
        if resume:
            err.print("[yellow]nothing to resume for this file and output: starting from the first row[/]")
        elif previous is not None and previous.status != "done":
            err.print(
                f"[yellow]an interrupted run of this file exists ({previous.done_rows:,} rows): this run replaces it "
                "(add --resume to continue it instead)[/]"
            )
        limits = spreadsheet_limits(settings)
        return create_job(
            session, source="cli", path=file, name=file.name, options=options, output_path=out, limits=limits
        )


def _with_progress(err: Console, job: Job, run: Any) -> Job:
    """Run with a progress bar (rows, rate, ETA) on stderr; Ctrl-C leaves the job resumable."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("classifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("rows", total=job.total_rows, completed=job.done_rows, rate="")

            def hook(current: Job) -> None:
                speed = bar.tasks[task].speed
                bar.update(task, completed=current.done_rows, rate=f"{speed:.1f} rows/s" if speed else "")

            return run(hook)  # type: ignore[no-any-return]
    except KeyboardInterrupt:
        err.print("[yellow]interrupted: run the same command with --resume to continue where it stopped[/]")
        raise typer.Exit(code=130) from None


def _print_estimate(err: Console, est: Estimate, *, as_json: bool) -> None:
    from dataclasses import asdict

    from rich.table import Table

    if as_json:
        print(json.dumps(asdict(est), ensure_ascii=False, indent=2))
        return
    table = Table(title="dry run: nothing was classified and no LLM was called", show_header=False)
    for name, value in (
        ("rows", f"{est.rows:,}"),
        ("distinct comments", f"{est.unique:,}"),
        ("rows with errors", f"{est.errors:,}"),
        ("classifier", est.mode),
        ("LLM requests (at most)", f"{est.requests:,}"),
        ("prompt tokens (est.)", f"{est.prompt_tokens:,}"),
        ("completion tokens (est.)", f"{est.completion_tokens:,}"),
        ("cost (est., USD)", f"{est.cost_usd:.4f}"),
    ):
        table.add_row(name, value)
    err.print(table)
    err.print(est.note)


def _print_summary(err: Console, job: Job, summary: Summary, out: Path, report: Path) -> None:
    from rich.table import Table

    table = Table(title=f"{summary.rows:,} rows · {summary.unique:,} distinct comments · {summary.errors:,} errors")
    table.add_column("root cause")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for cause, count in summary.by_cause.items():
        table.add_row(cause, f"{count:,}", f"{summary.share(count):.1%}")
    err.print(table)
    if summary.by_department:
        causes = list(summary.by_cause)
        cross = Table(title=f"root cause × {summary.department_column}")
        cross.add_column(summary.department_column or "department")
        for cause in causes:
            cross.add_column(cause, justify="right")
        for department, counts in summary.by_department.items():
            cross.add_row(department, *(f"{counts.get(c, 0):,}" for c in causes))
        err.print(cross)
    err.print(f"needs review: {summary.needs_review:,} · LLM requests: {job.llm_calls:,} · cost ≈ ${job.cost_usd:.4f}")
    err.print(f"wrote {out}\nreport {report}")
    sys.stderr.flush()


def _summary_json(job: Job, summary: Summary, out: Path, report: Path) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "job": job.public_id,
        "output": str(out),
        "report": str(report),
        **asdict(summary),
        "llm_calls": job.llm_calls,
        "prompt_tokens": job.prompt_tokens,
        "completion_tokens": job.completion_tokens,
        "cost_usd": job.cost_usd,
        "seconds": round(job.seconds, 3),
        "rows_per_second": round(job.done_rows / job.seconds, 2) if job.seconds else None,
    }
