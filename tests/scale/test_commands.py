"""`nemawashi serve --workers N` refuses several processes on one embedded vector store, with the fix in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.config import get_settings


def test_serve_with_several_workers_and_the_embedded_store_is_refused_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEMAWASHI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("NEMAWASHI_CHROMA_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "NEMAWASHI_CHROMA_URL" in message and "--workers 2" in message and "chroma run" in message
    assert not (tmp_path / "nemawashi.db").exists()  # refused before anything was opened
