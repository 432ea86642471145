"""One colour per root-cause label, for every page, report and chart (the dashboard, the job report, SVG and PNG)."""

from __future__ import annotations

CAUSE_COLOURS = {
    "job_fear": "#d64545",
    "security": "#0b5cad",
    "cost": "#e3a008",
    "process": "#2f9e66",
    "other": "#9aa5b1",
}
SPARE_COLOURS = ("#7b5ea7", "#e07b39", "#3b9fb5", "#b5487e", "#6b8e23", "#8d6e63")


def cause_colour(cause: str, index: int) -> str:
    """The fixed colour of a root cause; labels added to the taxonomy later get spare colours by taxonomy index."""
    return CAUSE_COLOURS.get(cause, SPARE_COLOURS[index % len(SPARE_COLOURS)])
