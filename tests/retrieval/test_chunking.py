from service.retrieval.chunking import chunk_document, split_sentences
from service.tokens import count_tokens
from tests.retrieval.helpers import make_document

LONG_ANSWER = "基本給は少なくとも2年間維持されます。" * 80


def test_a_long_faq_answer_is_split_but_every_piece_carries_its_question() -> None:
    doc = make_document(f"## Q: 外注が始まったら解雇されますか？\n{LONG_ANSWER}", doc_type="faq")
    chunks = chunk_document(doc, max_tokens=200)
    assert len(chunks) > 1
    assert all(c.text.startswith("## Q: 外注が始まったら解雇されますか？") for c in chunks)


def test_an_faq_answer_a_little_over_the_budget_stays_one_chunk_so_it_is_cited_and_served_whole() -> None:
    answer = "基本給は少なくとも2年間維持されます。" * 20  # over 400 tokens, under what the embedder reads
    doc = make_document(f"## Q: 外注が始まったら解雇されますか？\n{answer}", doc_type="faq")
    assert count_tokens(doc.body) > 400
    [chunk] = chunk_document(doc, max_tokens=400)
    assert chunk.text.endswith(answer)


def test_faq_entries_in_one_file_never_share_or_split_a_chunk() -> None:
    body = "## Q: 給料は下がりますか？\n下がりません。\n\n## Q: 研修はありますか？\nあります。60時間です。"
    chunks = chunk_document(make_document(body, doc_type="faq"), max_tokens=400)
    assert [c.text for c in chunks] == [
        "## Q: 給料は下がりますか？\n下がりません。",
        "## Q: 研修はありますか？\nあります。60時間です。",
    ]


def test_chunks_stay_within_the_token_budget_and_end_on_sentence_marks() -> None:
    chunks = chunk_document(make_document(f"## 背景\n{LONG_ANSWER}"), max_tokens=120)
    assert all(c.tokens <= 120 and c.tokens == count_tokens(c.text) for c in chunks)
    assert all(c.text.endswith("。") for c in chunks)


def test_no_sentence_is_lost_when_chunking() -> None:
    body = (
        "## 目的\n売上を伸ばします！本当ですか？はい。\n### 詳細\n"
        + "詳細な説明です。" * 50
        + "\n## 予算\n1,800万円です。"
    )
    text = "".join(c.text for c in chunk_document(make_document(body), max_tokens=100))
    for sentence in split_sentences(body):
        assert sentence.strip() in text


def test_small_sections_are_merged_with_their_headings_and_the_section_path_is_kept() -> None:
    body = "## リスク: 情報漏えい\n- 担当: 山本\n### 対策\n- VDIを使います。\n### 兆候\n- ログの異常。"
    chunks = chunk_document(make_document(body, doc_type="risk"), max_tokens=400)
    assert len(chunks) == 1
    assert "### 対策" in chunks[0].text and "### 兆候" in chunks[0].text
    assert chunks[0].section == "リスク: 情報漏えい"


def test_japanese_sentence_marks_stay_with_their_sentence() -> None:
    assert split_sentences("雇用は守られます。給与は？変わりません！Yes. OK.") == [
        "雇用は守られます。",
        "給与は？",
        "変わりません！",
        "Yes.",
        "OK.",
    ]


def test_a_chunk_knows_the_headings_above_it_without_repeating_its_own() -> None:
    body = (
        "## 3つの誤解\n"
        + "誤解を解きます。" * 60
        + "\n### 誤解1：丸投げではない\n協力して進めます。\n#### 例\n定例で確認します。"
    )
    chunks = chunk_document(make_document(body), max_tokens=120)
    last = chunks[-1]
    assert last.text.startswith("### 誤解1：丸投げではない") and "#### 例" in last.text
    assert (last.section, last.context) == ("3つの誤解 > 誤解1：丸投げではない", "3つの誤解")
    assert all(c.context == "" for c in chunks[:-1])  # the section's own pieces start with its heading


def test_a_table_cut_in_two_repeats_its_header_rows() -> None:
    rows = "\n".join(f"| 方法{i} | 社内説明会で計画と役割分担を説明します |" for i in range(12))
    body = f"## 情報共有\n| 方法 | 内容 |\n|---|---|\n{rows}"
    chunks = chunk_document(make_document(body), max_tokens=120)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.text.startswith("## 情報共有\n| 方法 | 内容 |\n|---|---|\n| 方法"), chunk.text
    assert sum(c.text.count("社内説明会") for c in chunks) == 12  # no row lost or doubled
