"""`nemawashi eval --llm live` runs against whichever provider is configured; `openai` is its old name."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.errors import NemawashiError


@pytest.mark.parametrize(("flag", "runs"), [("live", "live"), ("openai", "live"), ("mock", "mock")])
def test_the_llm_flag_names_the_suites_llm(flag: str, runs: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def stop_at_start(settings: object, *, llm: str, progress: object = None) -> None:
        seen.append(llm)
        raise NemawashiError("stopped before running the suite")

    monkeypatch.setattr("service.evals.runner.run_suite", stop_at_start)
    result = CliRunner().invoke(app, ["eval", "--llm", flag])
    assert seen == [runs] and result.exit_code != 0


def test_an_unknown_llm_flag_names_the_choices() -> None:
    result = CliRunner().invoke(app, ["eval", "--llm", "claude"])
    assert result.exit_code == 2 and "use mock, live or none" in result.output
