"""Start a real draftmark server process on 127.0.0.1 for benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(env_extra: dict[str, str], *, fake_delay: float | None) -> Iterator[tuple[str, Path]]:
    """Yield (base URL, database file) of a fresh server; stops it afterwards."""
    with server_process(env_extra, fake_delay=fake_delay) as (base, db, _proc):
        yield base, db


@contextmanager
def server_process(
    env_extra: dict[str, str], *, fake_delay: float | None
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """``running_server``, also yielding the server's process (to read its CPU time)."""
    folder = Path(tempfile.mkdtemp(prefix="draftmark-bench-"))
    db = folder / "bench.db"
    port = free_port()
    env = {
        **os.environ,
        "DRAFTMARK_DATABASE_URL": f"sqlite:///{db}",
        "DRAFTMARK_AUTH_DISABLED": "1",
        **env_extra,
    }
    args = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--log-level", "warning"]
    if fake_delay is not None:
        args += ["--fake-model-delay", str(fake_delay)]
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start; see " + str(folder / "server.log"))
            time.sleep(0.1)
        yield base, db, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)
