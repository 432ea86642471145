"""The gate: a run without an LLM is held to the thresholds' `none:` section, a mock run to `metrics:`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from service.evals.report import check_thresholds


def make_report(llm: str, accuracy: float) -> dict[str, Any]:
    return {"meta": {"llm": llm}, "metrics": {"test": {"all": {"classification": {"accuracy": accuracy}}}}}


def write_gate(path: Path) -> Path:
    gate = {
        "metrics": {"classification.accuracy": {"min": 0.7, "measured": 0.75}},
        "none": {"classification.accuracy": {"min": 0.85, "measured": 0.9}},
    }
    path.write_text(yaml.safe_dump(gate), "utf-8")
    return path


def test_a_run_without_an_llm_must_meet_the_none_section(tmp_path: Path) -> None:
    gate = write_gate(tmp_path / "thresholds.yaml")
    failures = check_thresholds(make_report("none", 0.8), gate)
    assert failures == ["classification.accuracy = 0.800, below the threshold 0.85 (measured 0.9)"]
    assert check_thresholds(make_report("none", 0.9), gate) == []


def test_a_mock_run_is_held_to_the_metrics_section_only(tmp_path: Path) -> None:
    gate = write_gate(tmp_path / "thresholds.yaml")
    assert check_thresholds(make_report("mock", 0.8), gate) == []
    assert len(check_thresholds(make_report("mock", 0.6), gate)) == 1


def test_the_project_gate_has_a_section_for_runs_without_an_llm() -> None:
    spec = yaml.safe_load((Path(__file__).parents[2] / "evals" / "thresholds.yaml").read_text("utf-8"))
    assert {"classification.accuracy", "classification.macro_f1", "approved.precision"} <= set(spec["none"])
