"""The pipeline as a FastAPI dependency (`TriageDep`), for routes that run or read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.errors import NotReady
from service.triage.service import Triage


def get_triage(request: Request) -> Triage:
    triage: Triage | None = getattr(request.app.state, "triage", None)
    if triage is None:
        raise NotReady("the service is still starting: the classifier is being trained")
    return triage


TriageDep = Annotated[Triage, Depends(get_triage)]
