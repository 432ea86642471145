"""Schemathesis over /openapi.json: generated requests to every operation, as an admin, never get a 5xx or a
response outside the documented schema (issue 15). Bounded: a few examples per operation, about a minute."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.review.helpers import ReviewApp
from tests.security.helpers import database, fast_app

pytestmark = pytest.mark.slow  # about a minute: left out of `make test-fast`
EXAMPLES = 12  # per operation; ~25 operations
# Not checked: that every schema-valid request is taken. Some refusals are rules no schema states (a CSV needs a data
# row, history needs a conversation_id, a user name must be printable); they are 422s with a message, not 5xx.


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReviewApp, dict[str, str]]]:
    """The whole service (hashed n-gram embedder, no LLM) with a few questions in the queue, and an admin's header."""
    with database("sqlite") as url, fast_app(Path(tmp_path_factory.mktemp("fuzz")), url) as running:
        for question in ("ボーナスは減りますか？", "How will my overtime be paid?"):
            running.ask(question)
        yield running, running.user("fuzz-admin", role="admin")


def fuzz(operation: Any, headers: dict[str, str]) -> None:
    """Generated requests to one operation; the first failing one (shrunk) is raised."""

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    run()


def test_no_operation_answers_a_5xx_or_outside_its_schema(fuzzed: tuple[ReviewApp, dict[str, str]]) -> None:
    running, headers = fuzzed
    api = schemathesis.openapi.from_asgi("/openapi.json", running.app)
    failures = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        try:
            fuzz(operation, headers)
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failure is listed, not only the first
            failures.append(f"{operation.label}: {exc}")
    assert failures == [], "\n\n".join(failures)
