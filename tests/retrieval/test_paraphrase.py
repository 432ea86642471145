"""The check before an approved answer is reused: a paraphrase agrees with the approved question, a near miss not."""

from __future__ import annotations

from pathlib import Path

import chromadb
import pytest
import yaml
from chromadb.config import Settings as ChromaSettings

from service.config import PROJECT_ROOT
from service.retrieval.approved import ApprovedAnswers
from service.retrieval.lexical import Synonyms
from service.retrieval.paraphrase import agreement, content_words, numbers, question_kinds
from service.retrieval.store import ChunkStore
from tests.fakes import HashedNgramEmbedder

SYNONYMS = Synonyms(yaml.safe_load((PROJECT_ROOT / "knowledge" / "synonyms.yaml").read_text("utf-8"))["groups"])
QUALITY = "委託先の営業の品質は、どうやって確保するのですか？"
QUALITY_ANSWER = (
    "委託先の専任チームには、パイロット開始前に製品知識と当社の応対基準の研修を行います。"
    "見積は標準カタログ品に限り、週次の定例で見積の訂正やクレームを確認します。"
)
CRM = "委託先はCRMでどの顧客のデータを見ることができますか？"
CRM_ANSWER = "委託先の担当者は、割り当てられた顧客のデータだけを閲覧できます。"
QUOTES = "Who approves quotes above 3 million yen or discounts for accounts the vendor handles?"
QUOTES_ANSWER = "Quotes above 3 million yen and any discount go back to in-house staff for the usual approval."


def agrees(question: str, phrasing: str, answer: str) -> bool:
    return agreement(question, phrasing, answer, expand=SYNONYMS.expand).agrees


def test_a_question_about_the_vendors_fee_is_not_answered_with_the_vendor_quality_answer() -> None:
    verdict = agreement("委託先の委託料は、どうやって決めるのですか？", QUALITY, QUALITY_ANSWER, expand=SYNONYMS.expand)
    assert not verdict.agrees and "委託料" in verdict.reason
    assert not agrees("委託先に払う委託料はいくらですか？", QUALITY, QUALITY_ANSWER)
    assert not agrees("How much is the vendor's fee?", "How is the quality of the vendor's work checked?", "")


def test_a_paraphrase_in_other_words_agrees_with_the_approved_question() -> None:
    assert agrees("委託先の品質は、どうやって確保するのですか？", QUALITY, QUALITY_ANSWER)
    # 閲覧 (view) is not in the approved question but its answer says it; ベンダー is 委託先 in synonyms.yaml.
    assert agrees("ベンダーがCRMで閲覧できるのは、どの顧客のデータですか？", CRM, CRM_ANSWER)
    assert agrees("Who has to approve a discount on an account SalesBridge handles?", QUOTES, QUOTES_ANSWER)


def test_a_near_miss_that_changes_one_word_does_not_agree() -> None:
    assert not agrees("委託先はCRMでどの顧客のデータを編集できますか？", CRM, CRM_ANSWER)  # edit, not view
    assert not agrees("委託先のセキュリティはどうやって確保するのですか？", QUALITY, QUALITY_ANSWER)


def test_other_numbers_or_another_kind_of_question_do_not_agree() -> None:
    assert not agrees("Who approves quotes above 5 million yen for accounts the vendor handles?", QUOTES, QUOTES_ANSWER)
    assert not agrees("When are quotes above 3 million yen approved for accounts the vendor handles?", QUOTES, "")
    assert not agrees("委託先はCRMでいつまで顧客のデータを見ることができますか？", CRM, CRM_ANSWER)


def test_numbers_kinds_and_words_are_read_in_either_language_and_width() -> None:
    assert numbers("３００万円、1,800万円") == {"300", "1800"}
    assert question_kinds("研修はいつまでですか？") == {"until"}
    assert question_kinds("研修の日程を教えてください") == {"when"}
    assert question_kinds("If the vendor finds a lead, who gets the credit?") == {"who"}
    assert question_kinds("Where do people go when their accounts move?") == {"where"}
    assert content_words("ｾｰﾙｽﾌﾞﾘｯｼﾞの人は何を見るの？") == ["セールスブリッジ", "見"]
    assert content_words("Can vendor staff export the records?") == ["vendor", "export", "record"]


@pytest.fixture
def store(tmp_path: Path, fake_embedder: HashedNgramEmbedder) -> ApprovedAnswers:
    client = chromadb.PersistentClient(path=str(tmp_path), settings=ChromaSettings(anonymized_telemetry=False))
    return ApprovedAnswers(ChunkStore(client, "approved", fake_embedder))


def test_every_close_phrasing_of_an_answer_is_a_candidate_not_only_the_closest(store: ApprovedAnswers) -> None:
    alternate = "委託先に見せる顧客データはどこまでですか？"
    store.publish(answer_id="approved-1", question=CRM, answer=CRM_ANSWER, lang="ja", alternates=[alternate])
    store.publish(answer_id="approved-2", question=QUALITY, answer=QUALITY_ANSWER, lang="ja")
    asked = "委託先に見せる顧客データはどこまで？"
    found = store.phrasings(asked, n=3)
    assert [(p.answer_id, p.question) for p in found[:2]] == [("approved-1", alternate), ("approved-1", CRM)]
    assert [a.answer_id for a in store.matches(asked, n=2)] == ["approved-1", "approved-2"]
