"""Celery mode against a real Redis: two `draftmark worker` processes and an API process (issue 13).

Needs redis-server (Debian package); scripts/test installs and starts one (TEST_REDIS_URL).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.llm.fake import FakeMarker
from service.testing import OpenAIStub, StubReply, fake_marker_responder
from service.testing.cluster import Cluster, stored_per_item
from tests.api_support import free_port, wait_for_batch

SCHEME = "stalin-power-1929"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis database of its own: TEST_REDIS_URL's server (flushed), or a throwaway redis-server."""
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        subprocess.run(["redis-cli", "-u", given, "FLUSHDB"], check=True, capture_output=True)
        yield given
        return
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (apt-get install redis-server) or TEST_REDIS_URL")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=(tmp_path / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-u", url, "PING"], capture_output=True).stdout.strip() != b"PONG":
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def new_cluster(db_url: str, redis_url: str, stub_url: str, log: Path, **extra: str) -> Cluster:
    """Short leases, timeouts and back-off, so redelivery and retries happen within a test."""
    settings = {
        "DRAFTMARK_REQUEST_TIMEOUT_S": "5",
        "DRAFTMARK_TRANSPORT_RETRIES": "0",
        "DRAFTMARK_BROKER_VISIBILITY_TIMEOUT_S": "20",
        "DRAFTMARK_BATCH_LEASE_S": "3",
        "DRAFTMARK_BATCH_RETRY_BACKOFF_S": "0.1",
    }
    return Cluster(db_url, redis_url, stub_url, log, **(settings | extra))


def counting_responder(seen: Counter[str], times: list[float], delay_s: float) -> Any:
    good = fake_marker_responder(FakeMarker(delay_s=delay_s))
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> StubReply:
        content = body["messages"][-1]["content"]
        with lock:
            seen[content.split("ITEM-", 1)[1].split(".", 1)[0]] += 1
            times.append(time.monotonic())
        if "POISON" in content:
            return StubReply(raw_body=b"<html>x</html>")
        return good(body)

    return respond


def test_two_workers_kill_9_one_every_item_once_poison_fails_alone(
    db_url: str, redis_url: str, essay: str, tmp_path: Path
) -> None:
    seen: Counter[str] = Counter()
    with OpenAIStub(responder=counting_responder(seen, [], delay_s=0.05)) as stub:
        cluster = new_cluster(db_url, redis_url, stub.base_url, tmp_path / "cluster.log")
        try:
            victim = cluster.worker()
            cluster.worker()
            cluster.api(workers=2)
            items = [{"external_id": f"s{i:03d}", "essay": f"ITEM-{i:03d}. {essay[:300]}"} for i in range(200)]
            items[7]["essay"] = "ITEM-007. POISON " + essay[:300]
            with httpx.Client(base_url=cluster.url, timeout=30) as client:
                batch_id = client.post("/v1/batches", json={"scheme_id": SCHEME, "items": items}).json()["id"]
                deadline = time.monotonic() + 60
                while client.get(f"/v1/batches/{batch_id}").json()["counts"]["done"] < 40:
                    assert time.monotonic() < deadline, cluster.log.read_text()[-3000:]
                    time.sleep(0.05)
                victim.send_signal(signal.SIGKILL)
                victim.wait(timeout=10)
                batch = wait_for_batch(client, batch_id, timeout_s=120)
                metrics = client.get("/metrics").text
        finally:
            cluster.stop()
    assert batch["counts"] == {"queued": 0, "running": 0, "done": 199, "failed": 1, "total": 200}, batch["counts"]
    poison = next(i for i in batch["items"] if i["external_id"] == "s007")
    assert poison["error"]["code"] == "model_bad_response" and poison["error"]["retryable"] is True
    stored = stored_per_item(db_url, batch_id)
    assert len(stored) == 199 and set(stored.values()) == {1}, "every item stored exactly once"
    assert 'draftmark_batch_items{state="done"} 199' in metrics and "draftmark_broker_up 1" in metrics
    assert seen["007"] == 3, "the poison item was tried batch_max_attempts times"


def test_global_rate_limit_holds_across_two_workers(db_url: str, redis_url: str, essay: str, tmp_path: Path) -> None:
    seen: Counter[str] = Counter()
    times: list[float] = []
    rpm = 120  # one request per 500 ms, across the cluster
    with OpenAIStub(responder=counting_responder(seen, times, delay_s=0.0)) as stub:
        cluster = new_cluster(
            db_url,
            redis_url,
            stub.base_url,
            tmp_path / "cluster.log",
            DRAFTMARK_LLM_REQUESTS_PER_MINUTE=str(rpm),
            DRAFTMARK_LLM_MAX_CONCURRENCY="3",
        )
        try:
            cluster.worker()
            cluster.worker()
            cluster.api(workers=2)
            items = [{"external_id": f"r{i:02d}", "essay": f"ITEM-{i:02d}. {essay[:300]}"} for i in range(12)]
            with httpx.Client(base_url=cluster.url, timeout=30) as client:
                batch_id = client.post("/v1/batches", json={"scheme_id": SCHEME, "items": items}).json()["id"]
                batch = wait_for_batch(client, batch_id, timeout_s=60)
        finally:
            cluster.stop()
    assert batch["counts"]["done"] == 12 and set(seen.values()) == {1}
    times.sort()
    interval = 60 / rpm
    # Granted at least `interval` apart by Redis's clock; arrivals at the stub add the client's own
    # latency (tens of ms on a loaded machine), so a 2 s window may see one request more.
    worst = max(sum(1 for t in times if start <= t < start + 2.0) for start in times)
    assert worst <= 2.0 / interval + 1, f"{worst} requests in two seconds at {rpm}/min"
    assert times[-1] - times[0] >= (len(times) - 1) * interval * 0.9


def test_sigterm_finishes_in_flight_items_and_exits_cleanly(
    db_url: str, redis_url: str, essay: str, tmp_path: Path
) -> None:
    seen: Counter[str] = Counter()
    with OpenAIStub(responder=counting_responder(seen, [], delay_s=0.2)) as stub:
        cluster = new_cluster(db_url, redis_url, stub.base_url, tmp_path / "cluster.log")
        try:
            leaving = cluster.worker()
            cluster.worker()
            cluster.api(workers=2)
            items = [{"external_id": f"t{i:03d}", "essay": f"ITEM-{i:03d}. {essay[:300]}"} for i in range(80)]
            with httpx.Client(base_url=cluster.url, timeout=30) as client:
                batch_id = client.post("/v1/batches", json={"scheme_id": SCHEME, "items": items}).json()["id"]
                deadline = time.monotonic() + 60
                while client.get(f"/v1/batches/{batch_id}").json()["counts"]["done"] < 15:
                    assert time.monotonic() < deadline, cluster.log.read_text()[-3000:]
                    time.sleep(0.05)
                leaving.send_signal(signal.SIGTERM)
                code = leaving.wait(timeout=60)
                batch = wait_for_batch(client, batch_id, timeout_s=120)
        finally:
            cluster.stop()
    assert code == 0, "a warm shutdown: the worker finishes what it holds and exits cleanly"
    assert batch["counts"]["done"] == 80 and batch["counts"]["failed"] == 0, batch["counts"]
    assert set(stored_per_item(db_url, batch_id).values()) == {1}
    assert len(seen) == 80 and set(seen.values()) == {1}, "nothing the leaving worker held was marked twice"
