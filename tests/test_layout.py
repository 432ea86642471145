"""The README's Layout table is the rule: every import of one part of service/ by another follows an arrow in it."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from service.config import PROJECT_ROOT

SERVICE = PROJECT_ROOT / "service"
CORE = "core"


@dataclass
class Layout:
    core: set[str]  # module names of the thin core (config, db, ...)
    may_import: dict[str, set[str]]  # part → parts it may import (core always)


def read_layout(readme: str) -> Layout:
    """The table under "## Layout": | part | owns | may import |."""
    section = readme.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    core: set[str] = set()
    may_import: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or "`" not in cells[0] + cells[2] or set(cells[0]) <= {"-", ":"}:
            continue
        names = [n.removesuffix("/").removesuffix(".py") for n in re.findall(r"`([^`]+)`", cells[0])]
        targets = {n.removesuffix("/").removesuffix(".py") for n in re.findall(r"`([^`]+)`", cells[2])}
        if cells[0].startswith(CORE):
            core |= set(names)
            may_import[CORE] = set()
        else:
            may_import[names[0]] = targets | ({"*"} if "everything" in cells[2] else set())
    return Layout(core, may_import)


def part_of(module: str, core: set[str]) -> str:
    """service.triage.service → triage; service.db → core."""
    top = module.split(".")[1]
    return CORE if top in core else top


def service_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every `service.…` import in a file, wherever it stands (also inside functions)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("service."):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("service.")]
    return found


def arrows_against(layout: Layout, root: Path) -> list[str]:
    """Every import from one part to another that the table does not allow."""
    wrong = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).with_suffix("")
        if relative.name == "__init__" and len(relative.parts) == 1:
            continue
        source = part_of("service." + ".".join(relative.parts), layout.core)
        allowed = layout.may_import.get(source, set()) | {CORE, source}
        for line, module in service_imports(path):
            target = part_of(module, layout.core)
            if (target not in allowed and "*" not in allowed) or target == "main":
                wrong.append(f"service/{relative}.py:{line} {source} → {target} ({module})")
    return wrong


def readme_layout() -> Layout:
    return read_layout((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))


def test_every_part_of_service_is_in_the_layout_table() -> None:
    layout = readme_layout()
    parts = {p.name for p in SERVICE.iterdir() if (p / "__init__.py").exists()}
    parts |= {p.stem for p in SERVICE.glob("*.py") if p.stem != "__init__"}
    assert parts - layout.core - set(layout.may_import) == set(), "add these to the README's Layout table"


def test_imports_follow_the_layout_table_and_nothing_imports_main() -> None:
    assert arrows_against(readme_layout(), SERVICE) == []


def test_an_import_against_the_table_is_reported(tmp_path: Path) -> None:
    layout = readme_layout()
    (tmp_path / "triage").mkdir()
    (tmp_path / "triage" / "sneaky.py").write_text("from service.review.service import SqlReviewQueue\n")
    (tmp_path / "cli.py").write_text("def serve():\n    from service.main import create_app\n")
    assert arrows_against(layout, tmp_path) == [
        "service/cli.py:2 cli → main (service.main)",
        "service/triage/sneaky.py:1 triage → review (service.review.service)",
    ]
