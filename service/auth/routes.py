"""HTTP for accounts: who a token belongs to, and (admins only) adding, listing and revoking users."""

from __future__ import annotations

from fastapi import APIRouter

from service.auth import service
from service.auth.deps import AdminDep, ReviewerDep
from service.auth.models import ReviewerAccount
from service.auth.schemas import Me, NewUser, NewUserOut, UserOut
from service.deps import SessionDep
from service.errors import error_responses

router = APIRouter(tags=["review"], responses=error_responses(401))


@router.get("/v1/review/me", response_model=Me)
def me(reviewer: ReviewerDep) -> Me:
    """Who the token belongs to."""
    return Me(name=reviewer.name, role=reviewer.role)


def _user(account: ReviewerAccount) -> UserOut:
    return UserOut(
        name=account.name,
        role=account.role,
        active=account.revoked_at is None,
        created_at=account.created_at,
        revoked_at=account.revoked_at,
    )


@router.get("/v1/review/users", response_model=list[UserOut], responses=error_responses(403))
def list_users(admin: AdminDep, session: SessionDep) -> list[UserOut]:
    """Reviewers and admins (admins only)."""
    return [_user(account) for account in service.list_users(session)]


@router.post(
    "/v1/review/users", response_model=NewUserOut, status_code=201, responses=error_responses(403, 409, 413, 422)
)
def add_user(body: NewUser, admin: AdminDep, session: SessionDep) -> NewUserOut:
    """Add a reviewer or admin (admins only); the token is in this response and nowhere else."""
    account, token = service.add_user(session, name=body.name, role=body.role)
    return NewUserOut(**_user(account).model_dump(), token=token)


@router.delete("/v1/review/users/{name}", response_model=UserOut, responses=error_responses(403, 404, 422))
def revoke_user(name: str, admin: AdminDep, session: SessionDep) -> UserOut:
    """Revoke a user's token at once (admins only)."""
    return _user(service.revoke_user(session, name=name))
