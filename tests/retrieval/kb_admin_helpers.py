"""The whole service on the fake embedder with a small knowledge folder, for the knowledge admin tests."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.auth import service as auth
from service.config import Settings
from service.db import session_scope
from service.main import create_app
from tests.conftest import KNOWLEDGE, make_settings
from tests.fakes import HashedNgramEmbedder

MEMO = "# 在宅勤務の申請手順\n\n## 申請\n\n在宅勤務は前日までに上長へ申請してください。\n"


def small_knowledge(folder: Path) -> Path:
    """A few FAQ files and the configuration files triage reads, copied from the sample knowledge base."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("taxonomy.yaml", "synonyms.yaml", "off_topic.yaml"):
        shutil.copy(KNOWLEDGE / name, folder / name)
    (folder / "faq").mkdir(exist_ok=True)
    for path in sorted((KNOWLEDGE / "faq").glob("faq-job-0*-ja.md"))[:3]:
        shutil.copy(path, folder / "faq" / path.name)
    return folder


@dataclass
class KbSite:
    app: Any
    client: TestClient
    settings: Settings
    admin: str
    reviewer: str

    def as_admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin}"}

    def as_reviewer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.reviewer}"}


@contextmanager
def kb_site(tmp_path: Path, database_url: str, **overrides: object) -> Iterator[KbSite]:
    """The real app (fake embedder) with an admin and a reviewer."""
    settings = make_settings(
        tmp_path / "data", database_url=database_url, knowledge_dir=small_knowledge(tmp_path / "knowledge"), **overrides
    )
    app = create_app(settings, embedder=HashedNgramEmbedder())
    with TestClient(app) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").text
            time.sleep(0.1)
        with session_scope(app.state.sessionmaker) as session:
            admin = auth.add_user(session, name="admin", role="admin")[1]
            reviewer = auth.add_user(session, name="田中", role="reviewer")[1]
        yield KbSite(app, client, settings, admin, reviewer)
