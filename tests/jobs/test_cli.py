"""`nemawashi classify` as people run it: offline on Excel's files, dry runs, kill -9 and --resume, bad files."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from service.config import Settings
from tests.conftest import mock_requests, set_mock_fault
from tests.jobs.helpers import (
    NEMAWASHI,
    cli_env,
    distinct_comments,
    read_output,
    run_classify,
    survey_rows,
    write_csv,
    write_jsonl,
    write_xlsx,
)

pytestmark = pytest.mark.timeout(900)


def test_a_shift_jis_csv_from_excel_is_classified_offline_with_a_summary_and_a_report(
    indexed_settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "survey.csv", survey_rows(12))
    env = cli_env(indexed_settings.data_dir, f"sqlite:///{tmp_path / 'db.sqlite'}")
    result = run_classify(str(path), "-o", str(tmp_path / "out.csv"), "--json", env=env)
    assert result.returncode == 0, result.stderr
    header, *body = read_output(tmp_path / "out.csv")
    assert header[:3] == ["回答ID", "部署", "コメント"] and "root_cause" in header and "matched_doc_id" in header
    assert [r[:3] for r in body] == survey_rows(12)
    summary = json.loads(result.stdout)
    assert summary["rows"] == 12 and summary["unique"] == 6 and sum(summary["by_cause"].values()) == 12
    assert "root cause" in result.stderr and "root cause × 部署" in result.stderr and "営業一課" in result.stderr
    report = (tmp_path / "out.report.html").read_text(encoding="utf-8")
    assert report.count("<svg") == 2 and "営業二課" in report
    assert not any(comment in report for comment in (r[2] for r in survey_rows(6))), "comments stay out of the report"


def test_an_xlsx_is_classified_into_an_xlsx_with_its_cells_carried_through(
    indexed_settings: Settings, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    rows: list[list[object]] = [[1, "営業一課", "ボーナスは減りますか？"], [2, None, "顧客情報は大丈夫？"]]
    path = write_xlsx(tmp_path / "survey.xlsx", rows)
    env = cli_env(indexed_settings.data_dir, f"sqlite:///{tmp_path / 'db.sqlite'}")
    result = run_classify(str(path), "-o", str(tmp_path / "out.xlsx"), env=env)
    assert result.returncode == 0, result.stderr
    sheet = load_workbook(tmp_path / "out.xlsx").active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][:4] == ["回答ID", "部署", "コメント", "root_cause"]
    assert [v[:3] for v in values[1:]] == rows  # numbers stay numbers, empty cells stay empty
    root_cause, confidence, is_objection = values[1][3], values[1][5], values[1][6]
    assert isinstance(confidence, float) and 0 < confidence <= 1
    assert is_objection is (root_cause != "other"), "is_objection is a real boolean cell, true for an objection"


def test_a_jsonl_file_is_classified(indexed_settings: Settings, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [{"id": 1, "comment": "委託料が高すぎる"}, {"id": 2, "comment": ""}])
    env = cli_env(indexed_settings.data_dir, f"sqlite:///{tmp_path / 'db.sqlite'}")
    result = run_classify(str(path), "-o", str(tmp_path / "out.csv"), env=env)
    assert result.returncode == 0, result.stderr
    header, *body = read_output(tmp_path / "out.csv")
    assert header[:2] == ["id", "comment"] and body[0][header.index("root_cause")] == "cost"
    assert body[1][header.index("error")] == "no comment in column 'comment'"


def test_a_dry_run_counts_rows_comments_and_tokens_without_calling_the_llm(
    indexed_settings: Settings, mock_llm: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "survey.csv", survey_rows(30))
    env = cli_env(indexed_settings.data_dir, f"sqlite:///{tmp_path / 'db.sqlite'}", OPENAI_BASE_URL=mock_llm)
    result = run_classify(str(path), "--dry-run", "--json", env=env)
    assert result.returncode == 0, result.stderr
    estimate = json.loads(result.stdout)
    assert (estimate["rows"], estimate["unique"], estimate["mode"]) == (30, 6, "cascade")
    assert estimate["requests"] == 1 and estimate["prompt_tokens"] > 100 and estimate["cost_usd"] > 0
    assert mock_requests(mock_llm) == []
    assert not (tmp_path / "survey.classified.csv").exists()


def stored_rows(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM job_rows").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not migrated yet


def test_a_run_killed_with_sigkill_and_resumed_has_every_row_exactly_once(
    indexed_settings: Settings, mock_llm: str, tmp_path: Path
) -> None:
    total = 400
    rows = [[str(i + 1), "営業一課", text] for i, text in enumerate(distinct_comments(total))]
    path = write_csv(tmp_path / "survey.csv", rows)
    db = tmp_path / "db.sqlite"
    env = cli_env(indexed_settings.data_dir, f"sqlite:///{db}", OPENAI_BASE_URL=mock_llm, NEMAWASHI_CLASSIFIER="llm")
    set_mock_fault(mock_llm, "latency:300")
    out = tmp_path / "out.csv"
    process = subprocess.Popen([NEMAWASHI, "classify", str(path), "-o", str(out)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while stored_rows(db) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = stored_rows(db)
    assert 0 < done_before < total, f"killed at {done_before} of {total}: not mid-run"
    assert not out.exists()

    resumed = run_classify(str(path), "-o", str(out), "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done_before:,} of {total:,} rows done" in resumed.stderr
    header, *body = read_output(out)
    assert [r[0] for r in body] == [str(i + 1) for i in range(total)]  # every row once, in order
    assert all(r[header.index("root_cause")] and not r[header.index("error")] for r in body)
    assert stored_rows(db) == total


def test_a_file_that_cannot_be_classified_exits_2_with_a_message(indexed_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "survey.csv"
    path.write_text("id,ご意見,自由記述\n1,外注には反対です,引き継ぎが心配です\n", encoding="utf-8")
    env = cli_env(indexed_settings.data_dir, f"sqlite:///{tmp_path / 'db.sqlite'}")
    result = run_classify(str(path), "--dry-run", env=env)
    assert result.returncode == 2
    assert "cannot tell which column" in result.stderr and "--text-column" in result.stderr
