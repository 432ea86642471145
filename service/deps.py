"""FastAPI dependencies as Annotated aliases, so tests swap them with dependency_overrides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import NotReady
from service.retrieval.service import KnowledgeIndex
from service.triage.service import Triage


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed once on success, rolled back on error."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_knowledge_index(request: Request) -> KnowledgeIndex:
    return request.app.state.knowledge  # type: ignore[no-any-return]


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    """For work that outlives the request (a streamed answer stores its result at the end)."""
    return request.app.state.sessionmaker  # type: ignore[no-any-return]


def get_triage(request: Request) -> Triage:
    triage: Triage | None = getattr(request.app.state, "triage", None)
    if triage is None:
        raise NotReady("the service is still starting: the classifier is being trained")
    return triage


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# scope="function": the commit happens before the response is sent, so a failed commit is never reported as done.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
KnowledgeDep = Annotated[KnowledgeIndex, Depends(get_knowledge_index)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]
TriageDep = Annotated[Triage, Depends(get_triage)]
