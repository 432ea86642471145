"""Citations link the cited passage, and its /kb page marks exactly the part of the document the passage came from."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.retrieval.chunking import chunk_document
from service.retrieval.documents import load_documents
from service.retrieval.passages import citation_url, mark_passage
from service.web.pages import render_markdown
from tests.conftest import KNOWLEDGE, make_settings
from tests.fakes import HashedNgramEmbedder
from tests.retrieval.helpers import make_document


def squashed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_a_citation_links_its_page_at_the_passage_and_anything_else_at_the_page() -> None:
    assert citation_url("plan-kpi-ja", "plan-kpi-ja#3") == "/kb/plan-kpi-ja?passage=3#passage"
    assert citation_url("faq-job-01-ja", "faq-job-01-ja") == "/kb/faq-job-01-ja"  # an FAQ not (yet) indexed
    assert citation_url("plan-kpi-ja", "plan-roles-ja#1") == "/kb/plan-kpi-ja"


def test_every_passage_of_the_knowledge_base_is_found_and_marked_where_it_stands() -> None:
    for doc in load_documents(KNOWLEDGE).documents:
        whole = squashed(render_markdown(doc.body))
        for chunk in chunk_document(doc, max_tokens=400):
            marked = mark_passage(doc.body, chunk.text)
            assert marked is not None, chunk.chunk_id
            body = chunk.text.partition("\n")[2] if chunk.text.startswith("#") else chunk.text
            # A piece of a long table repeats the table's header rows: every line is marked, not one run.
            assert all(squashed(line) in squashed(marked.passage) for line in body.splitlines()), chunk.chunk_id
            parts = (render_markdown(part) for part in (marked.before, marked.passage, marked.after))
            assert squashed("".join(parts)) == whole, chunk.chunk_id  # cut, the page reads as before


def test_a_later_piece_of_a_long_section_marks_its_own_paragraphs_not_the_start() -> None:
    first, second = "外注の範囲は小口顧客です。" * 30, "費用は月額620万円です。" * 30
    doc = make_document(f"# 計画\n\n## 費用\n\n{first}\n\n{second}\n\n## 次へ\n\nおわり。")
    chunks = chunk_document(doc, max_tokens=200)
    later = next(c for c in chunks if "費用は月額" in c.text and "外注の範囲" not in c.text)
    marked = mark_passage(doc.body, later.text)
    assert marked is not None
    assert "外注の範囲" not in marked.passage and "費用は月額" in marked.passage
    assert "## 費用" in marked.before and "## 次へ" in marked.after


def test_a_passage_the_document_no_longer_holds_marks_nothing() -> None:
    assert mark_passage("## 費用\n\n月額620万円です。", "## 費用\n月額700万円です。") is None


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app on the fake embedder over the sample knowledge base, no LLM (FAQ and extractive answers)."""
    folder: Path = tmp_path_factory.mktemp("passages")
    settings = make_settings(folder, database_url=f"sqlite:///{folder / 'db.sqlite'}")
    with TestClient(create_app(settings, embedder=HashedNgramEmbedder())) as running:
        deadline = time.monotonic() + 120
        while running.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, running.get("/readyz").text
            time.sleep(0.1)
        yield running


@pytest.mark.parametrize(
    "question",
    [
        "費用と事業性について教えて",  # an extractive answer from a plan page
        "When are the handover waves?",  # the curated FAQ answer
    ],
)
def test_citations_in_an_answer_open_their_page_with_the_passage_marked(client: TestClient, question: str) -> None:
    body = client.post("/v1/ask", json={"question": question}).json()
    assert body["citations"], body
    for citation in body["citations"]:
        doc_id, _, n = citation["chunk_id"].rpartition("#")
        assert citation["url"] == f"/kb/{doc_id}?passage={n}#passage"
        page = client.get(citation["url"])
        assert page.status_code == 200
        marked = page.text.split('id="passage"', 1)[1].split("</section>", 1)[0]
        heading = client.app.state.knowledge.chunks[citation["chunk_id"]].text.splitlines()[0].lstrip("# ")  # type: ignore[attr-defined]
        assert heading in marked


def test_search_hits_link_their_passage(client: TestClient) -> None:
    hits = client.post("/v1/search", json={"query": "費用と事業性", "k": 3}).json()["hits"]
    assert [h["url"] for h in hits] == [
        f"/kb/{h['doc_id']}?passage={h['chunk_id'].rpartition('#')[2]}#passage" for h in hits
    ]


@pytest.mark.parametrize("passage", ["999", "abc", "-1", "１", "9" * 40, "1.5", ""])
def test_an_unknown_or_garbled_passage_shows_the_page_unmarked(client: TestClient, passage: str) -> None:
    page = client.get("/kb/plan-kpi-ja", params={"passage": passage})
    assert page.status_code == 200 and "<h1>" in page.text
    assert 'id="passage"' not in page.text
