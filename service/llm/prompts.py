"""Prompts are files in prompts/: front matter (id, version) and Jinja2 `# system` / `# user` sections."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frontmatter
from jinja2 import Environment, StrictUndefined, Template

from service.errors import NemawashiError

_SECTION = re.compile(r"^# (system|user)\s*$", re.MULTILINE)
_env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)  # plain text, not HTML
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Prompt:
    id: str
    version: int
    hash: str  # sha256 of the file, first 16 hex chars: which prompt made a stored result
    system: Template
    user: Template

    def render(self, **variables: Any) -> Messages:
        """Chat messages with the variables filled in."""
        return [
            {"role": "system", "content": self.system.render(**variables).strip()},
            {"role": "user", "content": self.user.render(**variables).strip()},
        ]


def fence(text: str) -> str:
    """User text made safe to place inside a <tag>: it cannot close the fence or open a new one."""
    return text.replace("<", "＜").replace(">", "＞")


def load_prompt(path: Path) -> Prompt:
    """One prompt file; a clear error naming the file when it is malformed."""
    raw = path.read_text(encoding="utf-8")
    post = frontmatter.loads(raw)
    parts = _SECTION.split(post.content)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    if set(sections) != {"system", "user"} or "id" not in post.metadata:
        raise NemawashiError(f"{path}: a prompt needs front matter with `id` and `# system` and `# user` sections")
    return Prompt(
        id=str(post.metadata["id"]),
        version=int(str(post.metadata.get("version", 1))),
        hash=hashlib.sha256(raw.encode()).hexdigest()[:16],
        system=_env.from_string(sections["system"]),
        user=_env.from_string(sections["user"]),
    )


def load_prompts(folder: Path) -> dict[str, Prompt]:
    """Every prompt in the folder by id, loaded once at start-up."""
    prompts = [load_prompt(path) for path in sorted(folder.glob("*.md"))]
    return {p.id: p for p in prompts}
