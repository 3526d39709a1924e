"""Durability: kill -9 the server mid-batch, restart it, and every item completes exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.testing.cluster import stored_per_item
from tests.api_support import free_port, wait_for_batch


def start_server(db_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DRAFTMARK_DATABASE_URL": db_url,
        "DRAFTMARK_AUTH_DISABLED": "1",
        "DRAFTMARK_BATCH_CONCURRENCY": "4",
        "DRAFTMARK_BATCH_LEASE_S": "3",  # a killed process's items are taken over after this
        "DRAFTMARK_BACKEND": "openai",
        "DRAFTMARK_LLM_BASE_URL": "http://127.0.0.1:9/v1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--fake-model-delay", "0.2"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not become ready:\n" + log.read_text())


def test_kill_9_mid_batch_then_restart_completes_each_item_once(db_url: str, tmp_path: Path, essay: str) -> None:
    port, log = free_port(), tmp_path / "server.log"
    server = start_server(db_url, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        items = [{"external_id": f"stu-{i:02d}", "essay": f"{i}. {essay[:300]}"} for i in range(40)]
        batch_id = httpx.post(f"{base}/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()[
            "id"
        ]
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/v1/batches/{batch_id}").json()["counts"]["done"] < 8:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        counts_before = httpx.get(f"{base}/v1/batches/{batch_id}").json()["counts"]
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        assert 0 < counts_before["done"] < 40, counts_before

        server = start_server(db_url, port, log)
        with httpx.Client(base_url=base, timeout=10) as client:
            batch = wait_for_batch(client, batch_id, timeout_s=60)
        assert batch["counts"]["done"] == 40 and batch["counts"]["failed"] == 0
    finally:
        server.kill()
        server.wait(timeout=10)
    stored = stored_per_item(db_url, batch_id)
    assert sorted(stored) == [f"stu-{i:02d}" for i in range(40)]
    assert all(count == 1 for count in stored.values()), "an item was stored twice"
