from pathlib import Path

import pytest

from service.errors import BadInput
from service.retrieval.lexical import LexicalIndex, Synonyms, load_synonyms, tokenize


def test_japanese_is_cut_into_character_bigrams_and_english_into_words() -> None:
    assert tokenize("営業部 and the CRM") == ["営業", "業部", "crm"]
    assert tokenize("ＣＲＭ３００万円") == ["crm300", "万円"]


def test_bm25_finds_a_japanese_passage_without_word_boundaries() -> None:
    index = LexicalIndex(["a", "b"], ["賞与の支給額は変わりません。", "引き継ぎシートを作成します。"])
    scores = index.scores("引き継ぎはどうするの")
    assert scores[1] > scores[0] == 0


def test_a_synonym_group_lets_slang_find_the_formal_word() -> None:
    synonyms = Synonyms([["解雇", "クビ"], ["fired", "laid"]])
    assert "解雇" in synonyms.expand("営業はクビになるの？")
    assert "laid" in synonyms.expand("Will I get fired?")
    assert synonyms.expand("unrelated") == "unrelated"


def test_english_synonyms_match_whole_words_only() -> None:
    assert Synonyms([["pay", "salary"]]).expand("payment terms") == "payment terms"


def test_a_broken_synonyms_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "synonyms.yaml"
    path.write_text("groups: {not: a list}", encoding="utf-8")
    with pytest.raises(BadInput, match=r"synonyms\.yaml"):
        load_synonyms(path)
