"""The job report's department chart: every root cause in its legend, full name, inside the chart."""

from __future__ import annotations

import re

from service.jobs.report import CHART_WIDTH, department_chart, report_labels
from service.jobs.results import Summary
from tests.reports.helpers import taxonomy


def test_the_legend_names_every_root_cause_in_full_within_the_chart() -> None:
    summary = Summary(
        rows=3, classified=3, errors=0, needs_review=0, objections=3, unique=3,
        by_cause={"security": 2, "process": 1},
        department_column="部署",
        by_department={"営業部": {"security": 2, "process": 1}},
    )  # fmt: skip
    for lang in ("ja", "en"):
        labels = report_labels(taxonomy(), lang)
        svg = str(department_chart(summary, labels, title="部署別"))
        legend = re.findall(r'<text x="(\d+)" y="(\d+)" class="legend">([^<]+)</text>', svg)
        assert [name for _, _, name in legend] == [label.name for label in labels]  # none cut to 「…個人…」
        height = int(re.search(r'height="(\d+)"', svg.split(">", 1)[0]).group(1))  # type: ignore[union-attr]
        assert all(int(y) < height for _, y, _ in legend)  # every row inside the SVG's height
        assert all(int(x) < CHART_WIDTH for x, _, _ in legend)
        assert len({y for _, y, _ in legend}) >= (2 if lang == "ja" else 1)  # the Japanese names take two rows
