"""Job I/O for the API."""

from __future__ import annotations

from pydantic import BaseModel

from service.db import UTCTime
from service.jobs.models import Job
from service.jobs.service import job_options


class JobOut(BaseModel):
    """A job and its progress."""

    id: str
    status: str  # queued | running | done | failed
    input_name: str
    text_column: str | None
    department_column: str | None
    total_rows: int
    done_rows: int
    error_rows: int
    review_rows: int
    unique_texts: int
    percent: float
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    classifier_version: int | None = None  # the reviewers' relabels the classifier had learnt when the run started
    message: str | None
    created_at: UTCTime
    finished_at: UTCTime | None
    links: dict[str, str]

    @classmethod
    def of(cls, job: Job) -> JobOut:
        options = job_options(job)
        base = f"/v1/jobs/{job.public_id}"
        links = {"self": base, "events": f"{base}/events"}
        if job.status == "done":
            links |= {
                "csv": f"{base}/result?format=csv",
                "xlsx": f"{base}/result?format=xlsx",
                "report": f"/jobs/{job.public_id}",  # the report page (also at {base}/report for API clients)
            }
        return cls(
            id=job.public_id,
            status=job.status,
            classifier_version=job.classifier_version,
            input_name=job.input_name,
            text_column=options.text_column,
            department_column=options.department_column,
            total_rows=job.total_rows,
            done_rows=job.done_rows,
            error_rows=job.error_rows,
            review_rows=job.review_rows,
            unique_texts=job.unique_texts,
            percent=round(100 * job.done_rows / job.total_rows, 1) if job.total_rows else 100.0,
            llm_calls=job.llm_calls,
            prompt_tokens=job.prompt_tokens,
            completion_tokens=job.completion_tokens,
            cost_usd=job.cost_usd,
            message=job.message,
            created_at=job.created_at,
            finished_at=job.finished_at,
            links=links,
        )
