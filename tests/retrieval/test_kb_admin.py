"""The knowledge admin page and API: admins upload, delete and re-index; reviewers read; nobody else gets in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.auth.service import csrf_token
from service.bootstrap import open_clients
from service.db import session_scope
from service.main import create_app
from service.retrieval import kb_files
from service.retrieval.embeddings import EmbeddingError
from service.retrieval.ingest import catch_up_uploads, ingest_knowledge
from service.retrieval.models import KbFile
from service.retrieval.service import KnowledgeIndex, search_passages
from service.retrieval.uploads import Indexing, KnowledgeSync
from tests.fakes import HashedNgramEmbedder
from tests.retrieval.kb_admin_helpers import MEMO, KbSite, kb_site
from tests.retrieval.office_files import make_docx
from tests.review.helpers import browser_session


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[KbSite]:
    with kb_site(tmp_path, database_url) as running:
        yield running


def upload(site: KbSite, name: str, data: bytes, headers: dict[str, str] | None = None) -> Any:
    sent_as = site.as_admin() if headers is None else headers
    return site.client.post("/v1/kb/files", headers=sent_as, files={"file": (name, data)})


def documents(site: KbSite) -> dict[str, dict[str, Any]]:
    body = site.client.get("/v1/kb/documents", headers=site.as_reviewer()).json()
    return {d["doc_id"]: d for d in body["documents"]}


def test_an_uploaded_markdown_file_is_indexed_and_found_by_hit_testing(site: KbSite) -> None:
    sent = upload(site, "在宅勤務.md", MEMO.encode())
    assert sent.status_code == 202, sent.text
    status = site.client.get(sent.json()["url"], headers=site.as_reviewer()).json()
    assert status["status"] == "indexed" and status["percent"] == 100 and status["total"] >= 1
    [doc] = [d for d in documents(site).values() if d["path"] == "uploads/在宅勤務.md"]
    assert doc["title"] == "在宅勤務の申請手順" and doc["lang"] == "ja" and doc["chunks"] >= 1
    hits = site.client.post("/v1/search", json={"query": "在宅勤務の申請は前日まで"}).json()["hits"]
    assert hits[0]["doc_id"] == doc["doc_id"]
    chunks = site.client.get(f"/v1/kb/documents/{doc['doc_id']}/chunks", headers=site.as_reviewer()).json()
    assert chunks[0]["embedded_text"].startswith("在宅勤務の申請手順\n") and "前日まで" in chunks[0]["text"]
    page = site.client.get("/admin/kb", params={"q": "在宅勤務の申請", "lang": "ja"}, headers=site.as_reviewer())
    assert page.status_code == 200 and f'data-doc-id="{doc["doc_id"]}"' in page.text and 'id="kb-hits"' in page.text


def test_a_deleted_upload_leaves_the_index_and_the_database(site: KbSite) -> None:
    upload(site, "memo.md", MEMO.encode())
    before = set(documents(site))
    deleted = site.client.delete("/v1/kb/files/memo.md", headers=site.as_admin())
    assert deleted.status_code == 200 and len(deleted.json()) == 1
    assert set(documents(site)) == before - set(deleted.json())
    hits = site.client.post("/v1/search", json={"query": "在宅勤務の申請は前日まで", "k": 50}).json()["hits"]
    assert not [h for h in hits if h["doc_id"] in deleted.json()]
    with session_scope(site.app.state.sessionmaker) as session:
        assert session.get(KbFile, "memo.md") is None
    assert site.client.get("/v1/kb/files/memo.md", headers=site.as_admin()).status_code == 404


def test_bad_uploads_are_refused_with_the_reason_and_nothing_else_is_lost(site: KbSite, tmp_path: Path) -> None:
    upload(site, "memo.md", MEMO.encode())
    before = documents(site)
    unknown = upload(site, "notes.exe", b"MZ...")
    assert unknown.status_code == 422 and "unsupported file type '.exe'" in unknown.json()["error"]
    corrupt = upload(site, "規程.docx", b"PK\x03\x04 not really a zip")
    assert corrupt.status_code == 422 and ".docx" in corrupt.json()["error"]
    too_big = upload(site, "big.md", b"#" + b" " * (21 * 1024 * 1024))
    assert too_big.status_code == 413 and "limit" in too_big.json()["error"]
    front_matter = "---\nid: faq-job-01-ja\ntype: faq\ntitle: x\nlang: ja\n---\n\n# x\n\n本文\n"
    clash = upload(site, "clash.md", front_matter.encode())
    assert clash.status_code == 422 and "duplicate id 'faq-job-01-ja'" in clash.json()["error"]
    assert documents(site) == before
    with session_scope(site.app.state.sessionmaker) as session:
        assert [row.name for row in kb_files.list_files(session, with_data=False)] == ["memo.md"]


def test_reviewers_read_but_cannot_change_and_anonymous_callers_are_sent_to_sign_in(site: KbSite) -> None:
    page = site.client.get("/admin/kb", headers=site.as_reviewer())
    assert page.status_code == 200 and 'id="kb-read-only"' in page.text
    assert 'id="kb-upload"' not in page.text and "/admin/kb/reindex" not in page.text
    assert upload(site, "memo.md", MEMO.encode(), headers=site.as_reviewer()).status_code == 403
    assert site.client.post("/v1/kb/reindex", headers=site.as_reviewer()).status_code == 403
    assert site.client.post("/admin/kb/reindex", headers=site.as_reviewer()).status_code == 403
    assert site.client.delete("/v1/kb/files/memo.md", headers=site.as_reviewer()).status_code == 403
    assert site.client.get("/v1/kb/documents").status_code == 401
    assert upload(site, "memo.md", MEMO.encode(), headers={}).status_code == 401
    signed_out = site.client.get("/admin/kb")
    assert signed_out.status_code == 401 and 'name="token"' in signed_out.text  # the sign-in form
    admin_page = site.client.get("/admin/kb", headers=site.as_admin())
    assert 'id="kb-upload"' in admin_page.text and 'id="kb-reindex"' in admin_page.text


def test_a_cookie_signed_admin_needs_the_pages_csrf_value(site: KbSite) -> None:
    session_id = browser_session(site.app.state.sessionmaker, site.admin)
    site.client.cookies.set("nemawashi_review", session_id)
    try:
        refused = site.client.post("/admin/kb/reindex", data={"csrf": "forged"}, follow_redirects=False)
        assert refused.status_code == 403
        done = site.client.post("/admin/kb/reindex", data={"csrf": csrf_token(session_id)}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"].startswith("/admin/kb?done=reindexed")
    finally:
        site.client.cookies.clear()


def test_reindex_keeps_uploads_and_lists_skipped_files_with_their_reasons(site: KbSite) -> None:
    upload(site, "memo.md", MEMO.encode())
    (site.settings.knowledge_dir / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    report = site.client.post("/v1/kb/reindex", headers=site.as_admin()).json()
    assert report["skipped"] == [{"path": "old.doc", "reason": report["skipped"][0]["reason"]}]
    assert "uploads-memo" in documents(site) and "uploads-memo" not in report["removed"]
    listed = site.client.get("/v1/kb/documents", headers=site.as_reviewer()).json()["skipped"]
    assert listed[0]["path"] == "old.doc" and "save it as .docx" in listed[0]["reason"]
    page = site.client.get("/admin/kb", params={"lang": "en"}, headers=site.as_reviewer()).text
    assert "old.doc" in page and "save it as .docx" in page
    page = site.client.get("/admin/kb", params={"lang": "ja"}, headers=site.as_reviewer()).text
    assert "old.doc" in page and ".docx で保存し直して" in page and "save it as" not in page


def test_an_uploaded_docx_is_indexed_by_a_fresh_process_and_exported_as_a_file(
    site: KbSite, tmp_path: Path, database_url: str
) -> None:
    docx = make_docx(tmp_path / "規程.docx", title="出張規程", sections=[("申請", "出張は三日前までに申請します。")])
    assert upload(site, "規程.docx", docx.read_bytes()).status_code == 202
    # Another process on the same database with an empty vector store indexes the upload on its first ingest.
    other = site.settings.model_copy(update={"data_dir": tmp_path / "other"})
    clients = open_clients(other, embedder=HashedNgramEmbedder())
    try:
        with session_scope(clients.sessionmaker) as session:
            report = ingest_knowledge(
                session, clients.knowledge.store, knowledge_dir=other.knowledge_dir, max_tokens=400
            )
            written = kb_files.export_files(session, tmp_path / "export")
    finally:
        clients.close()
    assert [d for d in report.added if d.startswith("uploads-")] and not report.skipped
    assert written == ["規程.docx"] and (tmp_path / "export" / "規程.docx").read_bytes() == docx.read_bytes()


def test_a_process_that_loaded_the_index_earlier_finds_an_upload_another_process_indexed(site: KbSite) -> None:
    # Two processes on one vector store: the other one's KnowledgeIndex loaded before the upload.
    other = KnowledgeIndex(site.app.state.knowledge.store)
    other.refresh()
    upload(site, "memo.md", MEMO.encode())
    hits = search_passages(other, query="在宅勤務は前日までに申請", k=3)
    assert hits[0].doc_id == "uploads-memo"


def test_an_upload_whose_embedding_fails_is_listed_as_failed_with_the_reason(
    site: KbSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise EmbeddingError("embedding endpoint failed (APITimeoutError): timed out")

    before = documents(site)
    monkeypatch.setattr("service.retrieval.uploads.embed_and_store", unavailable)
    sent = upload(site, "memo.md", MEMO.encode())
    status = site.client.get(sent.json()["url"], headers=site.as_admin()).json()
    assert status["status"] == "failed" and "timed out" in status["message"]
    listed = site.client.get("/v1/kb/documents", headers=site.as_reviewer()).json()
    assert listed["skipped"] == [{"path": "uploads/memo.md", "reason": status["message"]}]
    assert documents(site) == before


def test_a_process_restarting_on_an_older_index_catches_up_on_uploads(site: KbSite, tmp_path: Path) -> None:
    other = site.settings.model_copy(update={"data_dir": tmp_path / "other"})
    clients = open_clients(other, embedder=HashedNgramEmbedder())
    try:
        with session_scope(clients.sessionmaker) as session:  # its index, built before the upload
            ingest_knowledge(session, clients.knowledge.store, knowledge_dir=other.knowledge_dir, max_tokens=400)
        upload(site, "memo.md", MEMO.encode())
        with session_scope(clients.sessionmaker) as session:  # what its start does when its index exists
            assert catch_up_uploads(session, clients.knowledge.store, max_tokens=400, limits=None) == 1
            assert catch_up_uploads(session, clients.knowledge.store, max_tokens=400, limits=None) == 0
        assert "uploads-memo" in clients.knowledge.store.indexed_docs()
    finally:
        clients.close()


def _hit_docs(client: Any, query: str) -> list[str]:
    found = client.post("/v1/search", json={"query": query, "k": 10})
    assert found.status_code == 200, found.text
    return [h["doc_id"] for h in found.json()["hits"]]


def _wait_for(check: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


def test_another_process_with_its_own_store_gets_uploads_and_loses_deleted_ones_within_seconds(
    site: KbSite, tmp_path: Path
) -> None:
    # A second process on the same database with an embedded store of its own (its own data dir).
    other = site.settings.model_copy(
        update={"data_dir": tmp_path / "other", "knowledge_sync_interval_s": 0.3, "search_rate_limit_per_minute": 1000}
    )
    second = create_app(other, embedder=HashedNgramEmbedder())
    with TestClient(second) as client:
        _wait_for(lambda: client.get("/readyz").status_code == 200, "the second process never got ready", 120)
        assert "uploads-memo" not in _hit_docs(client, "在宅勤務は前日までに申請")
        assert upload(site, "memo.md", MEMO.encode()).status_code == 202
        _wait_for(lambda: "uploads-memo" in _hit_docs(client, "在宅勤務は前日までに申請"), "the upload never arrived")
        assert site.client.delete("/v1/kb/files/memo.md", headers=site.as_admin()).status_code == 200
        _wait_for(lambda: "uploads-memo" not in _hit_docs(client, "在宅勤務は前日までに申請"), "deleted, still found")
        assert "uploads-memo" not in second.state.knowledge.store.indexed_docs()


def test_a_process_sharing_the_store_stops_citing_a_deleted_upload_after_its_sync(site: KbSite) -> None:
    # Two processes on one store (a Chroma server): the other one's keyword index was loaded before the delete.
    other = KnowledgeIndex(site.app.state.knowledge.store)
    sync = KnowledgeSync(site.app.state.sessionmaker, Indexing.from_settings(site.settings, other), shared_store=True)
    upload(site, "memo.md", MEMO.encode())
    assert sync() is True and sync() is False  # nothing changed since
    lexical = search_passages(other, query="在宅勤務は前日までに申請", k=3, method="lexical")
    assert lexical[0].doc_id == "uploads-memo"
    assert site.client.delete("/v1/kb/files/memo.md", headers=site.as_admin()).status_code == 200
    assert sync() is True
    for method in ("lexical", "hybrid"):
        hits = search_passages(other, query="在宅勤務は前日までに申請", k=10, method=method)
        assert "uploads-memo" not in [h.doc_id for h in hits], method


UPLOADED_FAQ = """---
id: faq-parking-01-ja
type: faq
title: 駐車場の利用申請はどこで出せばいいですか？
lang: ja
questions:
  - "社用車の駐車場を使うには、どこに申請すればいい？"
---
## Q: 駐車場の利用申請はどこで出せばいいですか？
総務部の申請フォームから、利用開始の5営業日前までに申請してください。
"""


def test_an_uploaded_faq_file_answers_faq_first_and_stops_when_deleted(tmp_path: Path, database_url: str) -> None:
    fast = {"knowledge_sync_interval_s": 0.3, "ask_rate_limit_per_minute": 1000}
    with kb_site(tmp_path, database_url, **fast) as running:
        question = "駐車場の利用申請はどこで出せばいいですか？"
        assert upload(running, "parking.md", UPLOADED_FAQ.encode()).status_code == 202

        def answered_from_faq() -> bool:
            reply = running.client.post("/v1/ask", json={"question": question}).json()
            return reply["mode"] == "faq" and "5営業日前" in reply["answer"]

        _wait_for(answered_from_faq, "the uploaded FAQ entry never answered", 30)
        assert running.client.delete("/v1/kb/files/parking.md", headers=running.as_admin()).status_code == 200
        _wait_for(lambda: not answered_from_faq(), "the deleted FAQ entry still answers", 30)
