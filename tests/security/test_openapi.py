"""/openapi.json documents the errors each operation can answer with, in the one shape they all share (issue 15)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.main import create_app
from tests.conftest import make_settings

ERROR_REF = "#/components/schemas/ErrorOut"
ADMIN_ONLY = {"/v1/review/users", "/v1/review/users/{name}", "/v1/admin/outbox", "/v1/admin/outbox/{row_id}/retry"}
RATE_LIMITED = {"/v1/ask", "/v1/search", "/v1/followups/check", "/v1/followups/{token}"}


@pytest.fixture(scope="module")
def operations(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, dict[str, Any]]]:
    """Every /v1 operation as (path, method, operation); building the schema starts nothing."""
    schema = create_app(make_settings(Path(tmp_path_factory.mktemp("openapi")))).openapi()
    assert schema["components"]["schemas"]["ErrorOut"]["required"] == ["error"]
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith("/v1/")
        for method, operation in item.items()
    ]


def documented(operation: dict[str, Any], status: int) -> bool:
    """Whether the operation lists the status with the shared error body."""
    response = operation["responses"].get(str(status))
    return bool(response) and response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}


def test_every_operation_that_needs_a_token_documents_401(operations: list[tuple[str, str, Any]]) -> None:
    secured = [(path, method) for path, method, op in operations if op.get("security")]
    assert len(secured) >= 14
    missing = [(path, method) for path, method, op in operations if op.get("security") and not documented(op, 401)]
    assert missing == []


def test_admin_operations_document_403(operations: list[tuple[str, str, Any]]) -> None:
    admin = [(path, method, op) for path, method, op in operations if path in ADMIN_ONLY]
    assert len(admin) == 5
    assert [(path, method) for path, method, op in admin if not documented(op, 403)] == []


def test_every_operation_with_a_body_or_parameters_documents_422_and_bodies_413(
    operations: list[tuple[str, str, Any]],
) -> None:
    with_input = [(p, m, op) for p, m, op in operations if op.get("requestBody") or op.get("parameters")]
    assert [(p, m) for p, m, op in with_input if not documented(op, 422)] == []
    assert [(p, m) for p, m, op in operations if op.get("requestBody") and not documented(op, 413)] == []
    # FastAPI's own HTTPValidationError is not what the service answers: the shared body replaced it everywhere.
    assert all("HTTPValidationError" not in str(op) for _, _, op in operations)


def test_rate_limited_operations_document_429_with_retry_after(operations: list[tuple[str, str, Any]]) -> None:
    limited = [(path, op) for path, _, op in operations if path in RATE_LIMITED]
    assert len(limited) == 4
    for path, op in limited:
        assert documented(op, 429), path
        assert "Retry-After" in op["responses"]["429"]["headers"], path


def test_operations_on_one_item_document_404_and_state_changes_409(operations: list[tuple[str, str, Any]]) -> None:
    by_id = [(p, m) for p, m, op in operations if "{" in p and not documented(op, 404)]
    assert by_id == []
    conflicts = {("/v1/review/items/{item_id}/decisions", "post"), ("/v1/review/users", "post")}
    conflicts |= {("/v1/jobs/{job_id}/result", "get"), ("/v1/jobs/{job_id}/report", "get")}
    ops = {(p, m): op for p, m, op in operations}
    assert [key for key in conflicts if not documented(ops[key], 409)] == []
