"""Every moment the API sends carries its offset, whichever database stored it (issue 15: SQLite's are naive)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope, utcnow
from service.jobs.models import JobStatus
from service.jobs.schemas import JobOut
from service.jobs.service import JobOptions, create_job, get_job


def test_a_finished_jobs_times_are_sent_with_their_utc_offset(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    survey = tmp_path / "survey.csv"
    survey.write_text("comment\nボーナスは減りますか\n", encoding="utf-8")
    with session_scope(sessions) as session:
        job = create_job(session, source="cli", path=survey, name=survey.name, options=JobOptions())
        job.status, job.finished_at = JobStatus.done, utcnow()
        job_id = job.public_id
    with session_scope(sessions) as session:  # read back: SQLite hands back naive datetimes
        sent = json.loads(JobOut.of(get_job(session, job_id=job_id)).model_dump_json())
    for field in ("created_at", "finished_at"):
        assert datetime.fromisoformat(sent[field]).utcoffset() == timedelta(0), sent[field]
