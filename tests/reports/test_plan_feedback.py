"""The plan-feedback report: sections per root cause, charts embedded, suggestions by rules or by the LLM."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from service.config import PROJECT_ROOT
from service.db import session_scope
from service.llm.client import OpenAIChat, Usage
from service.llm.prompts import load_prompt
from service.reports.render import write_plan_feedback
from service.reports.schemas import PlanFeedbackReport, ReportQuery
from service.reports.service import plan_feedback_report
from service.reports.suggestions import load_plan_prompt
from tests.conftest import make_settings, set_mock_fault
from tests.reports.helpers import TOKYO, add_document, add_question, jst, make_sessions, taxonomy

PLAN_PROMPT = PROJECT_ROOT / "prompts" / "plan_feedback.md"
LAYOFF = "外注が始まったら営業はクビになるの？"
EMAIL = "taro.yamada@minato-seiki.example"


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    factory = make_sessions(database_url)
    yield factory
    factory.kw["bind"].dispose()


def seed_rollout(session: Session) -> None:
    """Two weeks of questions: job fear rising (one thumbs-down, two abstentions), security, cost."""
    add_document(session, "faq-job-01-ja", "BRIDGEの導入で、営業担当者が解雇されることはありますか？")
    add_document(session, "risk-01-ja", "雇用不安による中核人材の離職", "risk")
    add_document(session, "faq-sec-04-ja", "ベンダーから情報漏えいが起きたらどうなりますか？")
    add_document(session, "faq-cost-02-ja", "自社で営業を雇う方が安いのでは？")
    add_question(session, LAYOFF, at=jst("2026-11-17"), cited=("faq-job-01-ja", "risk-01-ja"))
    add_question(session, LAYOFF, at=jst("2026-11-24"), cited=("faq-job-01-ja",))
    add_question(
        session,
        "外注が始まったら、営業はクビになるの？",
        at=jst("2026-11-25"),
        cited=("faq-job-01-ja",),
        feedback=((False, f"答えになっていない。{EMAIL} まで連絡ください"),),
    )
    for _ in range(2):
        add_question(session, "定年後の再雇用はどうなる？", at=jst("2026-11-26"), mode="abstain")
    add_question(session, "顧客データが漏れたら？", cause="security", department="情シス", cited=("faq-sec-04-ja",))
    for _ in range(2):
        add_question(session, "委託料が高すぎる", cause="cost", department="経理部", cited=("faq-cost-02-ja",))


def build(sessions: sessionmaker[Session], **kwargs: Any) -> PlanFeedbackReport:
    with session_scope(sessions) as session:
        return plan_feedback_report(
            session, query=ReportQuery(), taxonomy=taxonomy(), embedder=None, zone=TOKYO, **kwargs
        )


def sections_in(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, flags=re.MULTILINE)


def test_the_html_report_embeds_its_charts_and_has_a_section_per_root_cause(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        seed_rollout(session)
    written = write_plan_feedback(build(sessions), tmp_path / "report.html", base_url="http://nemawashi.intra")
    assert written == [tmp_path / "report.html"]  # one self-contained file
    html = written[0].read_text(encoding="utf-8")
    charts = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert len(charts) == 2 + 3  # by week, by department, and a trend per root cause with questions
    assert all(base64.b64decode(c).lstrip().startswith(b"<?xml") for c in charts)
    for cause in taxonomy().labels[:4]:  # job_fear, security, cost, process
        assert f"{cause.name.ja}</h2>" in html
    for part in ("社員の声", "回答に使われた資料", "不足している点", "計画への提案"):
        assert part in html
    assert "What staff said" not in html and "職員の声" not in html  # one language per file
    assert 'href="http://nemawashi.intra/kb/faq-job-01-ja"' in html
    assert "この期間の質問はありません" in html  # process had no questions: said so, not left out


def test_the_markdown_report_links_png_charts_written_beside_it(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        seed_rollout(session)
    output = tmp_path / "out" / "steering.md"
    written = write_plan_feedback(build(sessions), output, base_url="http://nemawashi.intra")
    text = output.read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert sorted(linked) == sorted(p.name for p in written[1:])
    assert {"steering-by-week.png", "steering-by-department.png", "steering-trend-job_fear.png"} <= set(linked)
    for png in written[1:]:
        assert png.parent == output.parent and png.read_bytes().startswith(b"\x89PNG")
    assert sections_in(text)[:4] == [
        "概要",
        "雇用・キャリアへの不安",  # the biggest worry first
        "費用・予算・投資対効果",
        "情報セキュリティ・個人情報",
    ]
    assert text.count("### 社員の声") == 3
    assert " / " not in text  # one language: no label doubled as 「日本語 / English」
    assert re.search(r"作成: \d{4}-\d\d-\d\d \d\d:\d\d JST", text)  # in NEMAWASHI_TIMEZONE, with the zone's name


def test_the_markdown_report_is_written_in_the_language_asked_for(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        seed_rollout(session)
    text = write_plan_feedback(build(sessions), tmp_path / "en.md", base_url="", lang="en")[0].read_text("utf-8")
    assert sections_in(text)[:2] == ["Overview", "Job and career fear"]
    assert text.count("### What staff said") == 3 and "社員の声" not in text and "概要" not in text
    assert "| Week |" in text and "week of 11/23" in text
    assert "| of them not yet checked (the classifier's guess) | 8 |" in text  # every seeded item is pending


def test_each_section_lists_what_staff_said_what_answered_it_and_what_is_missing(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        seed_rollout(session)
    job = build(sessions).sections[0]
    assert (job.cause.id, job.questions, job.abstained, job.not_helpful) == ("job_fear", 5, 2, 1)
    assert [(w.week, w.questions) for w in job.weekly] == [("2026-W47", 1), ("2026-W48", 4)]
    assert [(q.count, q.representative) for q in job.quotes] == [(3, LAYOFF), (2, "定年後の再雇用はどうなる？")]
    assert [(e.doc_id, e.title, e.type, e.questions, e.not_helpful) for e in job.answered_by] == [
        ("faq-job-01-ja", "BRIDGEの導入で、営業担当者が解雇されることはありますか？", "faq", 3, 1),
        ("risk-01-ja", "雇用不安による中核人材の離職", "risk", 1, 0),
    ]
    assert [(g.representative, g.abstained, g.not_helpful) for g in job.missing] == [
        ("定年後の再雇用はどうなる？", 2, 0),
        ("外注が始まったら、営業はクビになるの？", 0, 1),
    ]


def test_rule_based_suggestions_name_the_missing_faq_and_the_rising_trend(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        seed_rollout(session)
    report = build(sessions)
    assert report.suggestions_by == "rules" and report.suggestions_fallback is None
    job = [s.en for s in report.sections[0].suggestions]
    assert "No FAQ entry answered 2 question(s) like “定年後の再雇用はどうなる？”: add one to the FAQ." in job
    assert any(s.startswith("Questions about job and career fear rose from 1 to 4 in the week of 11/23") for s in job)
    basis = [s.basis_ja for s in report.sections[0].suggestions]
    assert "回答保留 2 件、低評価 0 件" in basis and "11/16の週 1 件、11/23の週 4 件" in basis  # no English in ja
    assert all(s.by == "rules" for section in report.sections for s in section.suggestions)


def test_off_topic_questions_sent_on_get_a_help_desk_pointer_not_an_faq_entry_each(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        seed_rollout(session)
        for text in ("今日の天気は？", "今日の天気は？", "3階の複合機が紙詰まりしています"):
            add_question(session, text, cause="other", mode="abstain", objection=False)
    other = next(s for s in build(sessions).sections if s.cause.id == "other")
    texts = [s.ja for s in other.suggestions]
    assert not any("FAQ がありません" in t for t in texts), texts  # never "add 「今日の天気は？」 to the FAQ"
    assert any(t.startswith("プロジェクトと関係のない質問が3件、担当チームに引き継がれました") for t in texts), texts


def test_questions_without_a_department_are_reported_as_unknown_and_never_get_a_briefing(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        for _ in range(4):
            add_question(session, "委託料が高すぎる", cause="cost", department=None)
        add_question(session, "予算の根拠が分からない", cause="cost", department="経理部")
        neutral = "月額費用の620万円って、消費税は別ですか？"
        add_question(session, neutral, cause="cost", department=None, objection=False)
    report = build(sessions)
    [cost] = [s for s in report.sections if s.cause.id == "cost"]
    assert (cost.questions, cost.objections, report.overview.rates.objections) == (6, 5, 5)  # the neutral one: no
    assert all("不明" not in g.ja and "未設定" not in g.ja and "unknown" not in g.en for g in cost.suggestions)
    assert not [g for g in cost.suggestions if "説明会" in g.ja]  # 経理部 asked 1 of 6: no hot spot either
    html = write_plan_feedback(report, tmp_path / "report.html", base_url="")[0].read_text(encoding="utf-8")
    assert "不明 5" in html and "未設定" not in html and "not set" not in html


def test_a_department_that_asked_most_questions_gets_a_briefing_suggestion(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        for _ in range(3):
            add_question(session, "委託料が高すぎる", cause="cost", department="経理部")
        add_question(session, "予算の根拠が分からない", cause="cost", department=None)
    [cost] = [s for s in build(sessions).sections if s.cause.id == "cost"]
    assert any("経理部向けの個別説明会" in g.ja for g in cost.suggestions)


class ScriptedLLM:
    """A ChatModel that answers with a fixed payload and remembers what it was sent."""

    model = "scripted-llm"

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.sent: list[list[dict[str, str]]] = []

    def structured(
        self, messages: list[dict[str, str]], schema: type[BaseModel], *, name: str, deadline: float | None = None
    ) -> tuple[Any, Usage]:
        self.sent.append(messages)
        return schema.model_validate(self.payload), Usage(calls=1, prompt_tokens=100, completion_tokens=50)


def test_llm_suggestions_are_marked_as_ai_drafts_and_cannot_cite_invented_entries(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        seed_rollout(session)
    llm = ScriptedLLM(
        {
            "suggestions": [
                {
                    "root_cause": "job_fear",
                    "ja": "定年後の再雇用について FAQ を追加する。",
                    "en": "Add an FAQ entry on re-employment after retirement.",
                    "basis": "2 abstentions",
                    "basis_ja": "回答できなかった質問 2 件",
                    "doc_ids": ["faq-job-01-ja", "faq-invented-99"],
                },
                {"root_cause": "made_up_cause", "ja": "無視される", "en": "ignored", "basis": "", "doc_ids": []},
            ]
        }
    )
    report = build(sessions, llm=llm, prompt=load_prompt(PLAN_PROMPT))
    assert (report.suggestions_by, report.suggestions_model) == ("llm", "scripted-llm")
    job = report.sections[0].suggestions
    assert [(s.en, s.doc_ids, s.by) for s in job] == [
        ("Add an FAQ entry on re-employment after retirement.", ["faq-job-01-ja"], "llm")
    ]
    assert all(not s.suggestions for s in report.sections[1:])
    html = write_plan_feedback(report, tmp_path / "r.html", base_url="")[0].read_text(encoding="utf-8")
    assert "AI作成の提案" in html and "AI（scripted-llm）が作成した案" in html
    markdown = write_plan_feedback(report, tmp_path / "r.md", base_url="")[0].read_text(encoding="utf-8")
    assert "AI作成の提案" in markdown and "AI（scripted-llm）が作成した案" in markdown
    assert "回答できなかった質問 2 件" in markdown and "2 abstentions" not in markdown  # the basis in Japanese
    english = write_plan_feedback(report, tmp_path / "en.md", base_url="", lang="en")[0].read_text(encoding="utf-8")
    assert "2 abstentions" in english and "回答できなかった質問" not in english
    prompt = "\n".join(m["content"] for m in llm.sent[0])
    assert "<quote>定年後の再雇用はどうなる？ (x2)</quote>" in prompt and EMAIL not in prompt
    for section in report.sections:  # an entry cited beyond a section's ten most cited is still linked by title
        section.answered_by = []
    markdown = write_plan_feedback(report, tmp_path / "r.md", base_url="")[0].read_text(encoding="utf-8")
    assert "BRIDGEの導入で、営業担当者が解雇されることはありますか？](/kb/faq-job-01-ja)" in markdown
    assert "[faq-job-01-ja]" not in markdown


@pytest.mark.parametrize("fault", [None, "500"])
def test_an_llm_that_fails_or_answers_nonsense_leaves_rule_based_suggestions_and_says_why(
    tmp_path: Path, mock_llm: str, fault: str | None
) -> None:
    sessions = make_sessions(f"sqlite:///{tmp_path / 'r.db'}")
    with session_scope(sessions) as session:
        seed_rollout(session)
    settings = make_settings(tmp_path, openai_base_url=mock_llm, llm_max_retries=0, llm_timeout_s=5.0)
    set_mock_fault(mock_llm, fault)
    report = build(sessions, llm=OpenAIChat.from_settings(settings), prompt=load_plan_prompt(settings))
    assert report.suggestions_by == "rules" and report.suggestions_fallback in ("llm_unavailable", "llm_unusable")
    assert report.sections[0].suggestions and all(s.by == "rules" for s in report.sections[0].suggestions)
    for lang, says in (("ja", "ため、ルールに基づく提案です"), ("en", "so the suggestions are rule-based")):
        for name in (f"{lang}.html", f"{lang}.md"):
            written = write_plan_feedback(report, tmp_path / name, base_url="", lang=lang)[0].read_text("utf-8")
            assert says in written, name


def test_quotes_in_the_written_reports_are_redacted(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with session_scope(sessions) as session:
        seed_rollout(session)
        add_question(session, f"{EMAIL} です。電話は 090-1234-5678。クビですか？", mode="abstain")
    report = build(sessions)
    for name in ("r.md", "r.html"):
        text = write_plan_feedback(report, tmp_path / name, base_url="")[0].read_text(encoding="utf-8")
        assert "minato-seiki.example" not in text and "1234-5678" not in text
        assert "[email]" in text.replace("\\", "") and "[phone]" in text.replace("\\", "")


def test_markup_written_by_staff_is_shown_as_text_in_html_and_markdown(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        for _ in range(2):
            add_question(session, "<script>alert(1)</script> [押して](javascript:alert(1)) | 表 |", mode="abstain")
    report = build(sessions)
    html = write_plan_feedback(report, tmp_path / "r.html", base_url="")[0].read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    markdown = write_plan_feedback(report, tmp_path / "r.md", base_url="")[0].read_text(encoding="utf-8")
    # Rendered by a permissive viewer (raw HTML allowed), the quote is still only text.
    shown = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    assert "<script>" not in shown and 'href="javascript:' not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt; [押して](javascript:alert(1)) | 表 |" in shown


def test_an_empty_database_writes_a_report_that_says_there_is_no_data(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    report = build(sessions, llm=ScriptedLLM({"suggestions": []}), prompt=load_prompt(PLAN_PROMPT))
    assert report.empty and all(s.questions == 0 and not s.suggestions for s in report.sections)
    html = write_plan_feedback(report, tmp_path / "empty.html", base_url="")
    markdown = write_plan_feedback(report, tmp_path / "empty.md", base_url="")
    assert html == [tmp_path / "empty.html"] and markdown == [tmp_path / "empty.md"]  # no charts of nothing
    assert "この期間のデータはありません" in html[0].read_text(encoding="utf-8")
    assert "この期間のデータはありません" in markdown[0].read_text(encoding="utf-8")
