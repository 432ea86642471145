"""Proxy trust through the real server: X-Forwarded-For is believed only from NEMAWASHI_TRUSTED_PROXIES."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from service.auth.proxy import forwarded_client
from tests.conftest import free_port, stop, wait_for_http
from tests.retrieval.helpers import write_doc

NEMAWASHI = str(Path(sys.executable).parent / "nemawashi")
pytestmark = pytest.mark.slow


@contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[str]:
    knowledge = tmp_path / "knowledge"
    write_doc(knowledge, "plan-one", "## 目的\n\n営業事務の一部を委託します。", doc_type="plan", title="計画")
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_", "FORWARDED_"))}
    clean |= {"NEMAWASHI_DATA_DIR": str(tmp_path), "NEMAWASHI_KNOWLEDGE_DIR": str(knowledge), **env}
    clean |= {"NEMAWASHI_ASK_RATE_LIMIT_PER_MINUTE": "1", "NEMAWASHI_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([NEMAWASHI, "serve", "--port", str(port)], env=clean, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def ask_as(base: str, forwarded_for: str) -> int:
    # The limiter counts the request before the pipeline runs, so a 503 while the index loads counts too.
    headers = {"X-Forwarded-For": forwarded_for, "X-Forwarded-User": "spoofed-ceo"}
    return httpx.post(f"{base}/v1/ask", json={"question": "いつから？"}, headers=headers, timeout=60).status_code


def test_a_local_client_cannot_pose_as_another_address_to_dodge_the_rate_limit(tmp_path: Path) -> None:
    with serving(tmp_path) as base:
        assert ask_as(base, "10.0.0.5") != 429
        assert ask_as(base, "10.0.0.6") == 429, "X-Forwarded-For from an untrusted peer must not change the client"


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(tmp_path: Path) -> None:
    with serving(tmp_path, NEMAWASHI_TRUSTED_PROXIES='["127.0.0.1"]') as base:
        assert ask_as(base, "10.0.0.5") != 429
        assert ask_as(base, "10.0.0.6") != 429
        assert ask_as(base, "10.0.0.6") == 429


def test_the_client_is_the_right_most_address_that_is_not_one_of_our_proxies() -> None:
    proxies = ["127.0.0.1", "10.1.0.0/16"]
    assert forwarded_client("203.0.113.9, 10.1.2.3", proxies) == "203.0.113.9"
    assert forwarded_client("6.6.6.6, 198.51.100.4, 10.1.2.3", proxies) == "198.51.100.4"  # a forged left part
    assert forwarded_client("not-an-ip", proxies) is None
