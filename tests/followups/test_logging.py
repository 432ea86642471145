"""Follow-up tokens never reach the access log."""

from __future__ import annotations

import logging

from service.followups.routes import TokenRedactingFilter


def test_the_access_log_shows_followup_paths_without_their_token() -> None:
    token = "Zx9_-abcDEF0123456789abcdefghijklmnopqrstuvw"
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/v1/followups/{token}?x=1", "1.1", 200), None,
    )  # fmt: skip
    TokenRedactingFilter().filter(record)
    line = record.getMessage()
    assert token not in line and "/v1/followups/…?x=1" in line


def test_the_check_endpoint_path_is_left_alone() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "POST /v1/followups/check", None, None)
    TokenRedactingFilter().filter(record)
    assert record.getMessage() == "POST /v1/followups/check"
