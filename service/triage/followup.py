"""Follow-up questions: a question that leans on the previous turn is searched together with it.

Offline the follow-up is joined to the previous question ("それっていつから？" after a question about
reassignment is searched as both); with an LLM, prompts/rewrite.md turns it into one standalone question."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import BadInput, LLMUnavailable
from service.llm.client import ChatModel, Usage
from service.llm.prompts import Prompt, fence
from service.logging import get_logger
from service.triage.models import Question
from service.triage.schemas import Turn

log = get_logger("triage.followup")

# Words that point back at the previous turn; a question with one of them means little on its own.
_JA_REFERENCE = re.compile(r"(それ|その|そこ|あれ|あの|これ|この件|そっち|そう|同じ|上記|先ほど|さっき)")
_EN_REFERENCE = re.compile(r"\b(it|its|that|this|those|these|they|them|their|there|then|same|above)\b", re.IGNORECASE)
_EN_OPENERS = re.compile(r"^(and|but|so|also|what about|how about)\b", re.IGNORECASE)
_JA_SHORT = 10  # characters, like 「上限はあるの？」
_EN_SHORT = 5  # words


def refers_back(text: str, lang: str) -> bool:
    """Whether a question points at the previous turn in words: それ/その/あれ, it/that/they, "and…"/"what about…"."""
    if lang == "ja":
        return bool(_JA_REFERENCE.search(text))
    return bool(_EN_REFERENCE.search(text) or _EN_OPENERS.match(text))


def depends_on_previous(text: str, lang: str) -> bool:
    """Whether a question leans on the previous turn: short, or with それ/その/あれ/it/that/they."""
    short = len(text) <= _JA_SHORT if lang == "ja" else len(text.split()) <= _EN_SHORT
    return short or refers_back(text, lang)


def joined_question(text: str, history: list[Turn]) -> str:
    """The previous question and the follow-up as one search text (offline)."""
    return f"{history[-1].question.strip()}\n{text}"


def standalone_question(
    text: str,
    history: list[Turn],
    *,
    lang: str,
    llm: ChatModel | None,
    prompt: Prompt | None,
    usage: Usage,
    off_topic: Callable[[str], bool] | None = None,
) -> str | None:
    """The follow-up as a question that stands alone, or None when it does not depend on the history.

    off_topic, when given, says whether a question on its own is clearly about something else: a short question that
    does not refer back (「今日の天気は？」 after a question about the FAQ) is then a new topic, not a follow-up."""
    if not history or not depends_on_previous(text, lang):
        return None
    if off_topic is not None and not refers_back(text, lang) and off_topic(text):
        return None
    if llm is None or prompt is None:
        return joined_question(text, history)
    messages = prompt.render(
        lang=lang,
        question=fence(text),
        history=[{"question": fence(t.question), "answer": fence((t.answer or "")[:600])} for t in history],
    )
    try:
        rewritten = llm.complete_text(messages, usage).strip()
    except LLMUnavailable as exc:
        log.warning("followup.llm_unavailable", reason=exc.message)
        return joined_question(text, history)
    # A rewrite that is empty or runs on is not a question; searching with both turns is the safe fallback.
    if not rewritten or len(rewritten) > 2 * (len(text) + len(history[-1].question)) + 40:
        return joined_question(text, history)
    return rewritten.splitlines()[0].strip()


def check_history(session: Session, *, conversation_id: str | None, history: list[Turn]) -> None:
    """Every turn that names an answer id must be an answer of this conversation: 422 otherwise, so an asker
    cannot pull another conversation in (the server uses the text sent, never reads stored turns back)."""
    ids = [t.id for t in history if t.id]
    if not ids:
        return
    rows = session.execute(select(Question.public_id, Question.conversation_id).where(Question.public_id.in_(ids)))
    owner = {public_id: conv for public_id, conv in rows}
    for n, turn in enumerate(history):
        if turn.id and owner.get(turn.id, "") != conversation_id:
            raise BadInput(
                f"history[{n}].id: not an answer of conversation {conversation_id!r}",
                detail={"field": f"history[{n}].id"},
            )
