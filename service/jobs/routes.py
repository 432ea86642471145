"""HTTP for bulk classification jobs (/v1/jobs/...) and the reviewers' upload page (/jobs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.datastructures import UploadFile

from service.auth.deps import ReaderDep, signed_in_reviewer
from service.deps import SessionDep, SessionsDep, SettingsDep
from service.errors import BadInput, error_responses, problem
from service.jobs.delivery import job_events, refuse_oversized, report_html, result_file, submit_upload
from service.jobs.problems import FileProblem
from service.jobs.runner import JobRunner, start_job_runner, stop_job_runner
from service.jobs.schemas import JobOut
from service.jobs.service import JobOptions, get_job
from service.web.i18n import request_lang


@asynccontextmanager
async def jobs_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Nested in the app's lifespan by include_router: the job thread starts after the clients and stops before."""
    if app.state.settings.serve_runs_jobs:
        start_job_runner(app)
    try:
        yield
    finally:
        stop_job_runner(app)


# Survey comments are confidential: uploading, progress, results and the page are for reviewers only.
router = APIRouter(
    tags=["jobs"],
    lifespan=jobs_lifespan,
    dependencies=[Depends(signed_in_reviewer)],
    responses=error_responses(401, 422),
)
MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "CSV, TSV, XLSX or JSONL"},
                        "text_column": {"type": "string"},
                        "department_column": {"type": "string"},
                        "encoding": {"type": "string", "description": "default: detected (utf-8, cp932...)"},
                        "sheet": {"type": "string"},
                        "suggest": {"type": "boolean", "default": False},
                    },
                }
            }
        },
    }
}


def get_runner(request: Request) -> JobRunner | None:
    """This process's job thread; None when jobs are left to `nemawashi worker` (NEMAWASHI_SERVE_RUNS_JOBS=false)."""
    return start_job_runner(request.app) if request.app.state.settings.serve_runs_jobs else None


RunnerDep = Annotated[JobRunner | None, Depends(get_runner)]


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


@router.post(
    "/v1/jobs/classify",
    status_code=202,
    response_model=JobOut,
    openapi_extra=UPLOAD_SCHEMA,
    responses=error_responses(403, 413),
)
async def classify_file(request: Request, settings: SettingsDep, sessions: SessionsDep, runner: RunnerDep) -> JobOut:
    """Upload a survey file (multipart field `file`); 202 with the job id, 413 over the size limit."""
    refuse_oversized(request.headers.get("content-length"), settings)
    form = await request.form(max_files=1, max_fields=10)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadInput("send the survey file as the multipart field `file`", detail=problem(FileProblem.no_file))
    options = JobOptions(
        text_column=_text(form.get("text_column")),
        department_column=_text(form.get("department_column")),
        encoding=_text(form.get("encoding")),
        sheet=_text(form.get("sheet")),
        suggest=str(form.get("suggest", "")).lower() in ("1", "true", "on", "yes"),
    )
    job = await run_in_threadpool(
        submit_upload, settings, sessions, filename=upload.filename or "upload.csv", stream=upload.file, options=options
    )
    if runner is not None:  # otherwise a worker finds it at its next scan
        runner.submit(job.public_id)
    return JobOut.of(job)


@router.get("/v1/jobs/{job_id}", response_model=JobOut, responses=error_responses(404))
def read_job(job_id: str, session: SessionDep) -> JobOut:
    """A job's status and progress."""
    return JobOut.of(get_job(session, job_id=job_id))


def _progress(
    job_id: str,
    sessions: SessionsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
) -> Iterator[ServerSentEvent]:
    # Resolved as a dependency: an unknown job is a 404, not a stream.
    return job_events(sessions, job_id=job_id, last_event_id=last_event_id)


@router.get("/v1/jobs/{job_id}/events", response_class=EventSourceResponse, responses=error_responses(404))
def job_progress_events(events: Annotated[Iterator[ServerSentEvent], Depends(_progress)]) -> Iterator[ServerSentEvent]:
    """Progress as Server-Sent Events: `progress` while it runs, then `done` or `failed`; `: ping` while idle."""
    yield from events


@router.get("/v1/jobs/{job_id}/result", responses=error_responses(404, 409))
def job_result(
    request: Request,
    job_id: str,
    settings: SettingsDep,
    sessions: SessionsDep,
    format: Literal["csv", "xlsx"] = Query("csv"),
) -> FileResponse:
    """Every input row, in order, with its classification; 409 until the job is done. An XLSX file names the root
    causes in the page language (?lang=) beside their ids."""
    path = result_file(settings, sessions, job_id=job_id, fmt=format, lang=request_lang(request))
    return FileResponse(path, media_type=MEDIA[format], filename=f"classified-{job_id}.{format}")


@router.get("/v1/jobs/{job_id}/report", response_class=HTMLResponse, responses=error_responses(404, 409))
def job_report(job_id: str, request: Request, settings: SettingsDep, sessions: SessionsDep) -> HTMLResponse:
    """The HTML report with charts, in the reader's language (?lang=); 409 until the job is done."""
    return HTMLResponse(report_html(settings, sessions, job_id=job_id, lang=request_lang(request)))


@router.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
def job_report_page(job_id: str, request: Request, settings: SettingsDep, sessions: SessionsDep) -> HTMLResponse:
    """The same report at a page's address, where the /jobs page links: a browser signed out gets the sign-in form and
    an unknown job the error page, in the reader's language, instead of the API's JSON."""
    return HTMLResponse(report_html(settings, sessions, job_id=job_id, lang=request_lang(request)))


@router.get("/jobs", response_class=HTMLResponse, include_in_schema=False)
def upload_page(request: Request, settings: SettingsDep, reviewer: ReaderDep) -> Response:
    """A small page for reviewers: upload a survey file, watch the progress, download the results."""
    from service.web.pages import render_page

    context = {"limit_mb": settings.upload_max_mb, "reviewer": reviewer}
    return render_page(request, "jobs_upload.html", context, section="jobs")
