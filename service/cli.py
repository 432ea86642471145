"""The `nemawashi` command; each subcommand calls the same services the API does."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from service.config import get_settings
from service.db import session_scope
from service.errors import NemawashiError, NotReady
from service.jobs.cli import classify
from service.logging import configure_logging
from service.reports.cli import report_app
from service.review.cli import kb_app, users_app

app = typer.Typer(
    help="nemawashi: answers staff questions about a company change, with citations.", no_args_is_help=True
)
err = Console(stderr=True)
out = Console()
app.command("classify")(classify)


def _fail(exc: NemawashiError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc.message}")
    return typer.Exit(code=2)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int,
        typer.Option(min=1, help="Worker processes (each loads the embedder); more than 1 needs NEMAWASHI_CHROMA_URL."),
    ] = 1,
) -> None:
    """Serve the API, the /kb pages and /docs; indexes knowledge/ on first start."""
    import uvicorn

    from service.bootstrap import open_database
    from service.retrieval.store import make_chroma_client

    settings = get_settings()
    if workers > 1 and not settings.chroma_url:
        err.print(
            f"[bold red]error:[/] --workers {workers} starts {workers} processes, and the embedded vector store in "
            f"{settings.chroma_path} can be opened by one process only: start a Chroma server (`chroma run --path "
            "DIR`) and set NEMAWASHI_CHROMA_URL, or use --workers 1 / 埋め込みベクトルストアは1プロセス専用です: "
            "Chromaサーバーを起動してNEMAWASHI_CHROMA_URLを設定してください"
        )
        raise typer.Exit(code=2)
    try:  # one line naming the setting, not a traceback from inside uvicorn
        open_database(settings).dispose()
        if settings.chroma_url:
            make_chroma_client(settings)
    except NemawashiError as exc:
        raise _fail(exc) from exc
    host, port = host or settings.host, port or settings.port
    base = f"http://{host}:{port}"
    typer.echo(f"nemawashi on {base}: chat demo {base}/demo · review queue {base}/review · API {base}/docs", err=True)
    # An import string, so nothing imports main.py and uvicorn builds the app from the same environment.
    # proxy_headers=False: proxy trust is decided by the app from NEMAWASHI_TRUSTED_PROXIES (service/auth/proxy.py).
    # timeout_graceful_shutdown: on SIGTERM open streams (job progress, answers) get this long, then are closed;
    # clients reconnect with Last-Event-ID to another process or after the restart.
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
        workers=workers,  # each a process with its own clients; they share the database, Chroma server and Redis
    )


@app.command()
def worker() -> None:
    """Run bulk classification jobs (uploaded through any serve process) with no HTTP; SIGTERM or Ctrl-C stops it
    after the chunk in progress, and the job continues in another process or at the next start."""
    import signal
    import threading

    from service.jobs.worker import run_worker

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    err.print(f"nemawashi worker {os.getpid()}: running jobs; SIGTERM or Ctrl-C stops it after the current chunk")
    try:
        run_worker(settings, stop, on_ready=lambda: err.print("ready: the embedder is loaded, looking for jobs"))
    except NemawashiError as exc:
        raise _fail(exc) from exc


@app.command()
def ingest(
    knowledge: Annotated[
        Path | None, typer.Option("--knowledge", help="Knowledge folder (default: knowledge/).")
    ] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Drop the index and embed everything again.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Index a knowledge folder (.md .markdown .txt .html .docx .pptx .xlsx .pdf); re-running re-embeds only what
    changed. Exit code 0: everything indexed; 1: the rest indexed, but files were skipped (printed with their
    reasons); 2: nothing done (e.g. the folder does not exist)."""
    from service.bootstrap import clients, warm_start_cache
    from service.retrieval.ingest import ingest_knowledge
    from service.retrieval.sources import SourceLimits

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    folder = (knowledge or settings.knowledge_dir).resolve()
    try:
        with clients(settings) as opened:
            with _progress() as bar, session_scope(opened.sessionmaker) as session:
                task = bar.add_task("embedding", total=None)
                report = ingest_knowledge(
                    session,
                    opened.knowledge.store,
                    knowledge_dir=folder,
                    max_tokens=settings.chunk_max_tokens,
                    rebuild=rebuild,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    limits=SourceLimits.from_settings(settings),
                )
            if folder == settings.knowledge_dir.resolve():  # what the service reads at start
                with err.status("embedding the taxonomy's examples and the FAQ for start-up…"):
                    warm_start_cache(settings, opened)
    except NemawashiError as exc:
        raise _fail(exc) from exc
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        _print_ingest(report)
    if report.skipped:
        raise typer.Exit(code=1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def _print_ingest(report) -> None:  # type: ignore[no-untyped-def]
    err.print(
        f"indexed [bold]{report.documents}[/] documents, {report.chunks} chunks from {report.knowledge_dir} "
        f"in {report.seconds}s: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged"
    )
    for skipped in report.skipped:
        err.print(f"[yellow]skipped[/] {skipped.path}: {skipped.reason}")


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="A question or objection, Japanese or English.")],
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="How many passages.")] = 5,
    doc_type: Annotated[
        list[str] | None, typer.Option("--type", help="Only this document type (plan, faq, risk, doc).")
    ] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="Only documents in this language (ja, en).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
) -> None:
    """Retrieval only ("hit testing"): ranked passages with doc id, title, score and text."""
    from service.bootstrap import clients
    from service.retrieval.service import SearchOptions, clean_query, search_passages

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        query = clean_query(text, max_chars=settings.max_query_chars)
        with clients(settings) as opened:
            hits = search_passages(
                opened.knowledge,
                query=query,
                k=k,
                types=doc_type,
                lang=lang,
                options=SearchOptions.from_settings(settings),
            )
    except NemawashiError as exc:
        raise _fail(exc) from exc
    if as_json:
        print(json.dumps({"query": query, "hits": [h.model_dump() for h in hits]}, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{query}", show_lines=True)
    for column in ("#", "doc id", "title", "score", "text"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        snippet = hit.text if len(hit.text) <= 160 else hit.text[:160] + "…"
        table.add_row(
            str(hit.rank),
            f"{hit.doc_id}\n{hit.type}/{hit.lang}",
            hit.title,
            f"{hit.score:.4f}\n{hit.dense_score}",
            snippet,
        )
    out.print(table)


@app.command()
def ask(
    text: Annotated[str, typer.Argument(help="A question or objection, Japanese or English.")],
    department: Annotated[str | None, typer.Option(help="The asker's department, for the reports.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
) -> None:
    """The full pipeline once: answer with citations, root cause, and a review item in the queue."""
    from service.bootstrap import build_triage, clients
    from service.triage.models import QuestionSource
    from service.triage.service import ask as ask_question

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        with clients(settings) as opened:
            if not opened.knowledge.store.exists():
                raise NotReady("the knowledge base is not indexed yet: run `nemawashi ingest`")
            triage = build_triage(settings, opened)
            result = ask_question(
                triage, opened.sessionmaker, question=text, source=QuestionSource.cli, department=department
            )
    except NemawashiError as exc:
        raise _fail(exc) from exc
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    label = {
        "approved": "承認済みの回答 / approved",
        "faq": "FAQの回答 / FAQ answer",
        "llm": "AI下書き（確認中）/ AI draft under review",
        "extractive": "抜粋（確認中）/ extract under review",
        "abstain": "担当チームに引き継ぎ / handed to the project team",
    }
    out.print(f"[bold]{label[result.mode]}[/]\n{result.answer}\n")
    for citation in result.citations:
        out.print(f"  [{citation.n}] {citation.title} ({citation.url})")
    cause = result.root_cause
    secondary = f", {cause.secondary}" if cause.secondary else ""
    out.print(f"\nroot cause: [bold]{cause.primary}[/]{secondary} ({cause.confidence:.2f}, {cause.classifier})")
    out.print(f"  {cause.rationale}")
    if result.flags:
        out.print(f"flags: {', '.join(result.flags)}")


@app.command("mock-llm")
def mock_llm(
    host: Annotated[str, typer.Option(help="Interface to listen on (keep it on loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8009,
    fault: Annotated[
        str | None,
        typer.Option(
            help="Fault for every request: 429, 500, hang, malformed, bad_citation, injection, hostile_rationale, "
            "latency:MS."
        ),
    ] = None,
    latency_ms: Annotated[int, typer.Option(help="Delay before every chat answer.")] = 0,
) -> None:
    """A deterministic OpenAI-compatible fake LLM (chat, structured output, embeddings) for tests and demos."""
    from service.llm.mock_server import serve_mock

    err.print(f"mock LLM on http://{host}:{port}/v1 (OPENAI_BASE_URL=http://{host}:{port}/v1)")
    serve_mock(host, port, fault=fault, latency_ms=latency_ms)


@app.command("eval")
def eval_suite(
    llm: Annotated[
        str,
        typer.Option(
            help="mock (offline, starts the mock LLM), live (the configured LLM provider; `openai` is an alias) "
            "or none (no LLM: local classifier, extractive drafts)."
        ),
    ] = "mock",
    report: Annotated[
        Path | None, typer.Option(help="Where to write the JSON report (the HTML goes beside it).")
    ] = None,
    compare: Annotated[Path | None, typer.Option(help="An older JSON report: print what changed.")] = None,
    thresholds: Annotated[
        Path | None, typer.Option(help="Gate file (default for --llm mock and none: evals/thresholds.yaml).")
    ] = None,
) -> None:
    """The offline eval suite; exits non-zero when a metric is below its threshold."""
    import json as json_module

    from service.config import PROJECT_ROOT
    from service.evals.report import check_thresholds, print_table, write_reports
    from service.evals.runner import run_suite

    llm = "live" if llm == "openai" else llm  # the flag's old name, before other providers
    if llm not in ("mock", "live", "none"):
        raise typer.BadParameter("use mock, live or none", param_hint="--llm")
    settings = get_settings()
    configure_logging("WARNING" if settings.log_level.upper() == "INFO" else settings.log_level, json=settings.log_json)
    try:
        with _progress() as bar:
            tasks: dict[str, object] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done)  # type: ignore[arg-type]

            result = run_suite(settings, llm=llm, progress=progress)  # type: ignore[arg-type]
    except NemawashiError as exc:
        raise _fail(exc) from exc
    target = report or settings.data_dir / "eval" / f"report-{llm}.json"
    html = write_reports(result, target)
    print_table(result, err)
    err.print(f"JSON → {target}\nHTML → {html}")
    if compare:
        from service.evals.report import compare as compare_reports

        compare_reports(result, json_module.loads(compare.read_text(encoding="utf-8")), err)
    gate = thresholds or (PROJECT_ROOT / "evals" / "thresholds.yaml" if llm in ("mock", "none") else None)
    failures = check_thresholds(result, gate) if gate and gate.exists() else []
    for failure in failures:
        err.print(f"[bold red]below threshold:[/] {failure}")
    if failures:
        raise typer.Exit(code=1)


app.add_typer(users_app, name="users")
app.add_typer(kb_app, name="kb")
app.add_typer(report_app, name="report")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
