"""A second process on the same embedded store is refused with a message pointing to the Chroma server setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.retrieval.lock import EmbeddedStoreLock

HOLD = """
import sys, time
from pathlib import Path
from service.retrieval.lock import EmbeddedStoreLock
lock = EmbeddedStoreLock(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_process_on_the_same_embedded_store_is_refused_until_the_first_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "held"
        refused = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; "
                "from service.retrieval.lock import EmbeddedStoreLock; EmbeddedStoreLock(Path(sys.argv[1]))",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode != 0
        assert "NEMAWASHI_CHROMA_URL" in refused.stderr
        assert f"process {holder.pid}" in refused.stderr
    finally:
        holder.kill()  # like kill -9: the OS drops the lock with the process
        holder.wait()
    EmbeddedStoreLock(tmp_path).release()


def test_one_process_may_open_its_own_store_twice(tmp_path: Path) -> None:
    first, second = EmbeddedStoreLock(tmp_path), EmbeddedStoreLock(tmp_path)
    first.release()
    second.release()
    again = EmbeddedStoreLock(tmp_path)  # the last release unlocked the file
    again.release()
