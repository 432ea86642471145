"""The offline excerpt reads as an answer: whole sentences of one paragraph, the asker's language first."""

from __future__ import annotations

from service.retrieval.schemas import Hit
from service.triage.drafting import Passage
from service.triage.extractive import extractive_answer


def make_passage(
    n: int, text: str, *, lang: str = "ja", doc_id: str = "risk-08-ja", title: str = "引き継ぎ"
) -> Passage:
    hit = Hit(
        rank=n, doc_id=doc_id, chunk_id=f"{doc_id}#{n}", title=title, type="risk", lang=lang, section="",
        score=0.5, dense_score=0.85, lexical_score=None, text=text, url=f"/kb/{doc_id}",
    )  # fmt: skip
    return Passage(n, hit)


CUT_CHUNK = """ーバーに保存されます。これは前の段落の続きです。

| 項目 | 費用 |
|---|---|
| 初期費用 | 1,800万円 |

## 対策
引き継ぐすべてのアカウントについて引き継ぎシートを作成します。シートは社内担当者が記入し、課長が確認します。全面展開の前に項目を見直"""


def test_a_table_a_heading_and_cut_sentences_never_reach_the_asker() -> None:
    answer = extractive_answer("引き継ぎシートは誰が記入しますか？", [make_passage(1, CUT_CHUNK)], lang="ja")
    lines = answer.splitlines()
    assert lines[0].startswith("ナレッジベースの「引き継ぎ」")
    wanted = "引き継ぐすべてのアカウントについて引き継ぎシートを作成します。"
    wanted += "シートは社内担当者が記入し、課長が確認します。"
    assert lines[1] == wanted + "[1]"
    assert not any(line.startswith("ー") or "|" in line or "#" in line for line in lines)


def test_the_passage_in_the_askers_language_is_preferred() -> None:
    passages = [
        make_passage(1, "社内担当者が記入します。"),
        make_passage(2, "The in-house rep fills in the sheet.", lang="en", doc_id="risk-08-en", title="Handover"),
    ]
    answer = extractive_answer("Who fills in the handover sheet?", passages, lang="en")
    assert answer.splitlines()[1] == "The in-house rep fills in the sheet. [2]"


def test_a_japanese_only_source_quoted_to_an_english_asker_says_so() -> None:
    answer = extractive_answer("Who fills in the sheet?", [make_passage(1, "社内担当者が記入します。")], lang="en")
    assert answer.startswith("Only a Japanese document covers this")
    assert answer.endswith("社内担当者が記入します。[1]")
