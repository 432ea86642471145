"""Suggested changes to the plan: drafted by the LLM when one is configured, from simple rules otherwise."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.config import Settings
from service.errors import LLMUnavailable
from service.llm.client import ChatModel
from service.llm.prompts import Prompt, fence, load_prompt
from service.logging import get_logger
from service.reports.records import NOT_SET, week_start
from service.reports.schemas import CauseSection, QuestionGroup, Suggestion
from service.web.i18n import TEXTS

log = get_logger("reports.suggestions")

PROMPT_FILE = "plan_feedback.md"
PER_CAUSE = 3
RISING_FACTOR = 1.5
RISING_MIN = 3
CONCENTRATION_SHARE = 0.5
CONCENTRATION_MIN = 3


class DraftedSuggestion(BaseModel):
    """One suggestion as the LLM is asked to return it."""

    root_cause: str
    ja: str = Field(max_length=800)
    en: str = Field(max_length=800)
    basis: str = Field(default="", max_length=500)
    basis_ja: str = Field(default="", max_length=500)  # the Japanese report shows it; basis when left out
    doc_ids: list[str] = []


class DraftedSuggestions(BaseModel):
    suggestions: list[DraftedSuggestion] = Field(max_length=40)


def load_plan_prompt(settings: Settings) -> Prompt:
    """The plan-feedback prompt from the prompts folder."""
    return load_prompt(settings.prompts_dir / PROMPT_FILE)


Fallback = Literal["llm_unavailable", "llm_unusable"]


def llm_suggestions(
    llm: ChatModel, prompt: Prompt, sections: list[CauseSection], *, known_doc_ids: set[str]
) -> tuple[dict[str, list[Suggestion]] | None, Fallback | None, str | None]:
    """Suggestions by root cause; or None, why (a reason the reports word in each language) and the error's
    message, when the LLM failed or said nothing usable."""
    with_data = [s for s in sections if s.questions]
    messages = prompt.render(sections=[_prompt_section(s) for s in with_data])
    try:
        drafted, usage = llm.structured(messages, DraftedSuggestions, name="plan_suggestions")
    except LLMUnavailable as exc:
        log.warning("report.llm_unavailable", reason=exc.message)
        return None, "llm_unavailable", exc.message
    tokens = usage.prompt_tokens + usage.completion_tokens
    log.info("report.llm_suggestions", model=llm.model, suggestions=len(drafted.suggestions), tokens=tokens)
    causes = {s.cause.id for s in with_data}
    accepted: dict[str, list[Suggestion]] = {}
    for item in drafted.suggestions:
        if item.root_cause not in causes or len(accepted.get(item.root_cause, [])) >= PER_CAUSE:
            continue
        doc_ids = [d for d in dict.fromkeys(item.doc_ids) if d in known_doc_ids]  # an invented id is dropped
        suggestion = Suggestion(
            ja=item.ja, en=item.en, basis=item.basis, basis_ja=item.basis_ja, doc_ids=doc_ids, by="llm"
        )
        accepted.setdefault(item.root_cause, []).append(suggestion)
    if not accepted:
        return None, "llm_unusable", None
    return accepted, None, None


def _prompt_section(section: CauseSection) -> dict[str, object]:
    """A root cause's numbers and quotes for the prompt; everything staff wrote is fenced."""
    return {
        "id": section.cause.id,
        "name": f"{section.cause.ja} / {section.cause.en}",
        "questions": section.questions,
        "objections": section.objections,
        "weekly": ", ".join(f"{w.week}: {w.questions}" for w in section.weekly),
        "departments": ", ".join(f"{fence(d)}: {n}" for d, n in section.departments.items()),
        "quotes": [f"{fence(g.representative)} (x{g.count})" for g in section.quotes],
        "cited": [
            f"{e.doc_id} [{e.type}] {fence(e.title)}: cited for {e.questions}, not helpful {e.not_helpful}"
            for e in section.answered_by
        ],
        "missing": [f"{fence(g.representative)} (x{g.count})" for g in section.missing],
        "comments": [fence(c) for g in section.missing for c in g.comments],
    }


def rule_suggestions(section: CauseSection) -> list[Suggestion]:
    """What the numbers alone point at: unanswered questions, unhelpful entries, a rising trend, a hot spot."""
    if not section.questions:
        return []
    found = [*_missing_faq(section), *_unhelpful_entries(section), *_rising(section), *_hot_spot(section)]
    found += _no_risk_entry(section)
    if found:
        return found
    return [
        Suggestion(
            ja="この期間のデータからは、計画の変更が必要な点は見当たりません。",
            en="Nothing in this period's data calls for a change.",
            basis=f"{section.questions} questions, all answered, none marked not helpful",
            basis_ja=f"質問 {section.questions} 件、すべて回答済み、低評価なし",
            by="rules",
        )
    ]


def _missing_faq(section: CauseSection) -> list[Suggestion]:
    if section.cause.id != "other":
        return [_missing_one(group) for group in section.missing[:PER_CAUSE]]
    # Root cause "other" and sent on: questions about something else (「今日の天気は？」, a printer) that the
    # project's FAQ should not answer. One pointer to the general help desks instead of an FAQ entry for each.
    answered_badly = [g for g in section.missing if not g.abstained]
    sent_on = [g for g in section.missing if g.abstained]
    found = [_missing_one(group) for group in answered_badly[:PER_CAUSE]]
    if sent_on:
        n = sum(g.abstained for g in sent_on)
        example = sent_on[0].representative
        found.append(
            Suggestion(
                ja=f"プロジェクトと関係のない質問が{n}件、担当チームに引き継がれました（例：「{example}」）。"
                "社内の総合窓口（人事・情報システム・総務）の案内を説明資料や FAQ の冒頭に載せてください。",
                en=f"{n} question(s) unrelated to the project were sent to the team (e.g. “{example}”): point staff "
                "to the general help desks (HR, IT, facilities) in the briefing material or at the top of the FAQ.",
                basis=f"{n} abstained with root cause other",
                basis_ja=f"根本原因「その他」で回答保留 {n} 件",
                by="rules",
            )
        )
    return found


def _missing_one(group: QuestionGroup) -> Suggestion:
    basis = f"{group.abstained} abstained, {group.not_helpful} marked not helpful"
    basis_ja = f"回答保留 {group.abstained} 件、低評価 {group.not_helpful} 件"
    if group.abstained:
        return Suggestion(
            ja=f"「{group.representative}」という質問に答えられる FAQ がありません（{group.count}件）。"
            "回答を FAQ に追加してください。",
            en=f"No FAQ entry answered {group.count} question(s) like “{group.representative}”: add one to the FAQ.",
            basis=basis,
            basis_ja=basis_ja,
            by="rules",
        )
    return Suggestion(
        ja=f"「{group.representative}」への回答が{group.not_helpful}件「役に立たなかった」と評価されました。"
        "FAQ の回答を見直すか、新しい項目を追加してください。",
        en=f"Answers to {group.count} question(s) like “{group.representative}” were marked not helpful: revise "
        "the FAQ answer or add an entry.",
        basis=basis,
        basis_ja=basis_ja,
        by="rules",
    )


def _unhelpful_entries(section: CauseSection) -> list[Suggestion]:
    return [
        Suggestion(
            ja=f"「{entry.title}」を引用した回答が{entry.not_helpful}件「役に立たなかった」と評価されました。"
            "内容を見直してください。",
            en=f"Answers citing “{entry.title}” were marked not helpful {entry.not_helpful} time(s): revise it.",
            basis=f"cited for {entry.questions} question(s), {entry.not_helpful} not helpful",
            basis_ja=f"引用 {entry.questions} 件、低評価 {entry.not_helpful} 件",
            doc_ids=[entry.doc_id],
            by="rules",
        )
        for entry in section.answered_by
        if entry.not_helpful >= 2 and entry.not_helpful * 2 >= entry.questions
    ]


def _rising(section: CauseSection) -> list[Suggestion]:
    if len(section.weekly) < 2:
        return []
    before, last = section.weekly[-2], section.weekly[-1]
    if last.questions < RISING_MIN or last.questions < RISING_FACTOR * max(before.questions, 1):
        return []
    return [
        Suggestion(
            ja=f"{section.cause.ja}に関する質問が {_week_ja(last.week)}に{before.questions}件から"
            f"{last.questions}件に増えています。次回の説明会や社内報で取り上げてください。",
            en=f"Questions about {section.cause.en.lower()} rose from {before.questions} to {last.questions} "
            f"in {_week_en(last.week)}: address them at the next briefing or in the newsletter.",
            basis=f"{_week_en(before.week)}: {before.questions}, {_week_en(last.week)}: {last.questions}",
            basis_ja=f"{_week_ja(before.week)} {before.questions} 件、{_week_ja(last.week)} {last.questions} 件",
            by="rules",
        )
    ]


def _hot_spot(section: CauseSection) -> list[Suggestion]:
    if len(section.departments) < 2:
        return []
    # Questions without a department are reported as unknown, never as a department to brief.
    known = [(d, n) for d, n in section.departments.items() if d != NOT_SET]
    if not known:
        return []
    department, count = known[0]
    if count < CONCENTRATION_MIN or count < CONCENTRATION_SHARE * section.questions:
        return []
    share = round(100 * count / section.questions)
    return [
        Suggestion(
            ja=f"{section.cause.ja}に関する質問の{share}%が{department}からです。{department}向けの個別説明会を"
            "検討してください。",
            en=f"{share}% of the questions about {section.cause.en.lower()} come from {department}: consider a "
            "session for that department.",
            basis=f"{count} of {section.questions} questions",
            basis_ja=f"質問 {section.questions} 件のうち {count} 件",
            by="rules",
        )
    ]


def _no_risk_entry(section: CauseSection) -> list[Suggestion]:
    if section.cause.id in ("other", "unclassified") or section.objections < 3:
        return []
    if any(entry.type == "risk" for entry in section.answered_by):
        return []
    return [
        Suggestion(
            ja=f"{section.cause.ja}に関する懸念が{section.objections}件ありますが、リスク登録簿の項目は一度も"
            "引用されていません。リスクとして登録するか、既存の対策を明記してください。",
            en=f"{section.objections} objections about {section.cause.en.lower()} were raised, but no risk "
            "register entry answered them: register the risk or spell out the existing mitigation.",
            basis=f"{section.objections} objections ({section.unchecked_objections} not yet checked); cited entries: "
            + (", ".join(e.title for e in section.answered_by[:3]) or "none"),
            basis_ja=f"懸念 {section.objections} 件（うち未確認 {section.unchecked_objections} 件）、引用された資料："
            + ("、".join(e.title for e in section.answered_by[:3]) or "なし"),
            by="rules",
        )
    ]


def _week_ja(week: str) -> str:
    """ "2026-W48" → "11/23の週" (its Monday), as the reports' tables name weeks."""
    return str(TEXTS["ja"]["report"]["week_of"]).format(date=week_start(week))


def _week_en(week: str) -> str:
    return "the " + str(TEXTS["en"]["report"]["week_of"]).format(date=week_start(week))
