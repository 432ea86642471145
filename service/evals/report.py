"""Reading an eval report: the terminal table, the HTML page, deltas against an older run, the gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from service.web.pages import templates

HEADLINE = (
    "classification.accuracy",
    "classification.macro_f1",
    "classification.calibration_error",
    "is_objection.recall",
    "retrieval.recall_at_3",
    "retrieval.mrr",
    "retrieval.context_precision",
    "citations.validity",
    "citations.support",
    "abstention.precision",
    "abstention.recall",
    "abstention.answered_in_scope",
    "approved.precision",
    "approved.recall",
    "faq.precision",
    "faq.recall",
    "faq.wrong",
    "followup.recall_at_3",
    "followup.recall_at_3_standalone",
    "followup.recall_at_3_alone",
    "crosslingual.recall_at_3",
    "article.recall_at_3",
)


def lookup(metrics: dict[str, Any], path: str) -> float | None:
    """A number inside the nested metrics by dotted path ("retrieval.mrr")."""
    value: Any = metrics
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


def print_table(report: dict[str, Any], console: Console) -> None:
    table = Table(title=f"nemawashi eval · llm={report['meta']['llm']} · model={report['meta']['model']}")
    columns = [(split, group) for split in ("dev", "test") for group in ("all", "ja", "en")]
    table.add_column("metric")
    for split, group in columns:
        table.add_column(f"{split}/{group}", justify="right")
    for path in HEADLINE:
        values = [lookup(report["metrics"][split][group], path) for split, group in columns]
        table.add_row(path, *("–" if v is None else f"{v:.3f}" for v in values))
    wide = Console(stderr=console.stderr, width=max(console.width, 120))
    wide.print(table)
    if cv := report.get("cross_validation"):
        wide.print(
            f"local classifier, 5-fold cross-validation over the taxonomy's {cv['n']} examples: "
            f"accuracy {cv['accuracy']:.3f} · macro-F1 {cv['macro_f1']:.3f}"
        )
    timing = report["timing"]
    console.print(
        f"asks {timing['asks']} · p50 {timing['p50_ms']} ms · p95 {timing['p95_ms']} ms · "
        f"{timing['tokens_per_item']} tokens/item · ${timing['cost_usd_per_item']}/item · "
        f"faithfulness {report['faithfulness'] if report['faithfulness'] is not None else '– (real LLM only)'}"
    )


def compare(report: dict[str, Any], old: dict[str, Any], console: Console) -> list[tuple[str, float, float]]:
    """Headline metrics (test/all and dev/all) that changed since an older report."""
    changes = []
    for split in ("dev", "test"):
        for path in HEADLINE:
            now = lookup(report["metrics"][split]["all"], path)
            before = lookup(old.get("metrics", {}).get(split, {}).get("all", {}), path)
            if now is not None and before is not None and abs(now - before) >= 0.0005:
                changes.append((f"{split}/{path}", before, now))
    table = Table(title="changes since the older report")
    for column in ("metric", "before", "now", "delta"):
        table.add_column(column)
    for name, before, now in changes:
        colour = "green" if (now > before) != name.endswith("calibration_error") else "red"
        table.add_row(name, f"{before:.3f}", f"{now:.3f}", f"[{colour}]{now - before:+.3f}[/]")
    console.print(table if changes else "no headline metric changed")
    return changes


def check_thresholds(report: dict[str, Any], thresholds_path: Path) -> list[str]:
    """Every metric below its minimum (or above its maximum), said so a person knows what dropped."""
    spec = yaml.safe_load(thresholds_path.read_text(encoding="utf-8"))
    # A run without an LLM is held to its own section: the local classifier and extractive drafts.
    rules = spec["none"] if report.get("meta", {}).get("llm") == "none" and "none" in spec else spec["metrics"]
    failures = []
    for key, rule in rules.items():
        split, group, path = key.split(":", 2) if key.count(":") == 2 else ("test", "all", key)
        value = lookup(report["metrics"][split][group], path)
        if value is None:
            failures.append(f"{key}: missing from the report")
        elif "min" in rule and value < rule["min"]:
            failures.append(f"{key} = {value:.3f}, below the threshold {rule['min']} (measured {rule.get('measured')})")
        elif "max" in rule and value > rule["max"]:
            failures.append(f"{key} = {value:.3f}, above the threshold {rule['max']} (measured {rule.get('measured')})")
    return failures


def write_reports(report: dict[str, Any], json_path: Path) -> Path:
    """The JSON report, and the HTML page with the confusion heatmap and the drill-down beside it."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    html_path = json_path.with_suffix(".html")
    page = templates.env.get_template("eval_report.html").render(report=report, headline=HEADLINE, lookup=lookup)
    html_path.write_text(page, encoding="utf-8")
    return html_path
