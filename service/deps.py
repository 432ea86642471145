"""FastAPI dependencies as Annotated aliases, so tests swap them with dependency_overrides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import session_scope


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed once on success (before the response is sent, see SessionDep), rolled back
    on error."""
    with session_scope(request.app.state.sessionmaker) as session:
        yield session


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    """For work that outlives the request (a streamed answer stores its result at the end)."""
    return request.app.state.sessionmaker  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# scope="function": the commit happens before the response is sent, so a failed commit is never reported as done.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]
