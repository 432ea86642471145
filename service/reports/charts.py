"""Stacked bar charts for the dashboard and the plan-feedback report: SVG for HTML, PNG for Markdown.

matplotlib is imported inside the functions, so importing the service stays fast and does no I/O. Japanese
labels use IPAexGothic from the matplotlib-fontja wheel (registered without importing that package, whose
import changes matplotlib's global settings); the same charts look the same on every machine.
"""

from __future__ import annotations

import importlib.util
import io
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

ChartFormat = Literal["svg", "png"]
FONT_FAMILY = "IPAexGothic"
# rcParams are global: charts drawn at once by two request threads would see each other's settings.
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Series:
    """One stack of a stacked bar chart: a label, a value per category, a colour."""

    label: str
    values: list[int]
    colour: str


@cache
def _register_font() -> list[str]:
    """Register the bundled Japanese font once; the family list charts use (a fallback if it is missing)."""
    from matplotlib import font_manager

    spec = importlib.util.find_spec("matplotlib_fontja")
    folders = list(spec.submodule_search_locations or []) if spec else []
    font = next(
        (Path(f) / "fonts" / "ipaexg.ttf" for f in folders if (Path(f) / "fonts" / "ipaexg.ttf").exists()), None
    )
    if font is None:
        return ["Noto Sans CJK JP", "DejaVu Sans"]
    font_manager.fontManager.addfont(str(font))
    return [FONT_FAMILY, "DejaVu Sans"]


def _safe_label(text: str) -> str:
    """Text shown as written: a "$" would start mathtext, a leading "_" would hide a legend entry."""
    text = text.replace("$", r"\$")
    return f" {text}" if text.startswith("_") else text


def stacked_bars(
    *,
    categories: list[str],
    series: list[Series],
    title: str,
    fmt: ChartFormat,
    horizontal: bool = False,
    value_label: str = "件数 / questions",
    height: float | None = None,
) -> bytes:
    """A stacked bar chart as SVG or PNG bytes. SVG text is drawn as glyph outlines: the file looks the same on a
    machine without a Japanese font, and labels cannot overflow because a browser measured them differently."""
    import matplotlib
    from matplotlib.figure import Figure

    families = _register_font()
    rc: dict[Any, Any] = {"font.family": families, "svg.fonttype": "path", "font.size": 9, "svg.hashsalt": "nemawashi"}
    with _LOCK, matplotlib.rc_context(rc):
        height = height or (max(2.6, 0.42 * len(categories) + 1.6) if horizontal else 3.8)
        fig = Figure(figsize=(8.6, height), dpi=110, layout="constrained")
        ax = fig.subplots()
        labels = [_safe_label(c) for c in categories]
        stacks = [Series(_safe_label(s.label), s.values, s.colour) for s in series]
        _draw(ax, labels, stacks, horizontal=horizontal)
        ax.set_title(_safe_label(title), loc="left", fontsize=11)
        (ax.set_xlabel if horizontal else ax.set_ylabel)(value_label)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x" if horizontal else "y", color="#d9e2ec", linewidth=0.6)
        ax.set_axisbelow(True)
        if len(series) > 1 and any(sum(s.values) for s in series):
            fig.legend(loc="outside lower center", ncols=min(2, len(series)), frameon=False, fontsize=8)
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {}  # no timestamp: the same data gives the same file
        fig.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def _draw(ax, categories: list[str], series: list[Series], *, horizontal: bool) -> None:  # type: ignore[no-untyped-def]
    from matplotlib.ticker import MaxNLocator

    positions = list(range(len(categories)))
    base = [0] * len(categories)
    for stack in series:
        if horizontal:
            ax.barh(positions, stack.values, left=base, color=stack.colour, label=stack.label, height=0.62)
        else:
            ax.bar(positions, stack.values, bottom=base, color=stack.colour, label=stack.label, width=0.68)
        base = [b + v for b, v in zip(base, stack.values, strict=True)]
    if horizontal:
        ax.set_yticks(positions, categories)
        ax.invert_yaxis()  # the largest department (listed first) on top
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_xticks(positions, categories)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
