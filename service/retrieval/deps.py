"""The knowledge index as a FastAPI dependency (the app lifespan opens it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.retrieval.service import KnowledgeIndex


def get_knowledge_index(request: Request) -> KnowledgeIndex:
    return request.app.state.knowledge  # type: ignore[no-any-return]


KnowledgeDep = Annotated[KnowledgeIndex, Depends(get_knowledge_index)]
