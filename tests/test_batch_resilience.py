"""In-process batch marking survives poison replies, bugs, restarts and a second process (issue 13)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from service.batches.worker import BatchRunner
from service.errors import ModelResponseError
from service.llm.fake import FakeMarker
from service.llm.openai_compat import OpenAICompatibleLLM
from service.llm.port import ChatMessage, Completion, CompletionRequest
from service.persistence.db import BUILTIN_OWNER, make_engine, migrate
from service.persistence.stores import Store
from service.schemes import SchemeLibrary
from service.settings import Settings
from service.testing import OpenAIStub, StubReply, fake_marker_responder
from tests.api_support import LiveServer, free_port, wait_for_batch

SCHEME = "stalin-power-1929"


def stub_settings(db_url: str, base_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "backend": "openai",
        "llm_base_url": base_url,
        "llm_model": "stub",
        "database_url": db_url,
        "batch_concurrency": 2,
        "transport_retries": 0,
        "request_timeout_s": 5,
        "batch_retry_backoff_s": 0.05,
        "auth_disabled": True,
    }
    return Settings(**(values | extra))


def poison_responder(poison: bytes) -> Any:
    good = fake_marker_responder()

    def respond(body: dict[str, Any]) -> StubReply:
        if "POISON" in body["messages"][-1]["content"]:
            return StubReply(raw_body=poison)
        return good(body)

    return respond


def adapter(stub: OpenAIStub) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        model="stub",
        base_url=stub.base_url,
        api_key=None,
        structured_output="json_schema",
        timeout_s=5,
        transport_retries=0,
    )


@pytest.mark.parametrize("mode", ["json_schema", "json_mode"])
@pytest.mark.parametrize(
    "body", [b"<html>x</html>", b'{"choices": []}', b'{"choices": [{"message": null}]}', b"[]", b"null"]
)
async def test_a_200_that_is_not_a_completion_is_a_model_response_error(body: bytes, mode: str) -> None:
    request = CompletionRequest(
        messages=(ChatMessage("user", "hi"),),
        json_schema={"type": "object"},
        schema_name="x",
        temperature=0,
        max_output_tokens=10,
    )
    with OpenAIStub([StubReply(raw_body=body)]) as stub:
        llm = OpenAICompatibleLLM(
            model="stub",
            base_url=stub.base_url,
            api_key=None,
            structured_output=mode,  # type: ignore[arg-type]
            timeout_s=5,
            transport_retries=0,
        )
        with pytest.raises(ModelResponseError, match="not a chat completion"):
            await llm.complete(request)


@pytest.mark.parametrize("poison", [b"<html>x</html>", b'{"choices": []}'])
def test_poison_reply_fails_only_its_item_and_marking_goes_on(
    db_url: str, essay: str, poison: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with OpenAIStub(responder=poison_responder(poison)) as stub:
        settings = stub_settings(db_url, stub.base_url)
        live = LiveServer(settings, adapter(stub))
        with live, httpx.Client(base_url=live.url, timeout=30) as client:
            items = [{"external_id": "bad", "essay": "POISON " + essay}, {"external_id": "ok", "essay": essay}]
            first = client.post("/v1/batches", json={"scheme_id": SCHEME, "items": items}).json()["id"]
            batch = wait_for_batch(client, first, timeout_s=30)
            bad = next(i for i in batch["items"] if i["external_id"] == "bad")
            assert bad["status"] == "failed" and bad["error"]["code"] == "model_bad_response"
            assert bad["error"]["retryable"] is True and bad["attempts"] == settings.batch_max_attempts
            assert batch["counts"]["done"] == 1
            later = [{"external_id": f"n{i}", "essay": f"{i}. {essay}"} for i in range(3)]
            second = client.post("/v1/batches", json={"scheme_id": SCHEME, "items": later}).json()["id"]
            assert wait_for_batch(client, second, timeout_s=30)["counts"]["done"] == 3, "workers kept going"
            assert client.get("/readyz").status_code == 200
            assert client.post(f"/v1/batches/{first}/retry").json() == {"requeued": 1}
        assert not live.thread.is_alive(), "shutdown after a poison reply must finish"
    assert "model_bad_response" in caplog.text, "the failure is logged"
    assert essay[100:160] not in caplog.text and "POISON" not in caplog.text, "no essay text in logs"


class ExplodingLLM:
    """An adapter with a bug: raises something outside the error tree for chosen essays."""

    model_id = "exploding"
    endpoint_kind = "fake"
    indicative_only = False

    def __init__(self) -> None:
        self.inner = FakeMarker()

    async def complete(self, request: CompletionRequest) -> Completion:
        if "EXPLODE" in request.messages[-1].content:
            raise KeyError("EXPLODE secret essay words")
        return await self.inner.complete(request)


def make_store(db_url: str) -> Store:
    engine = make_engine(db_url)
    migrate(engine)
    store = Store(engine)
    for scheme in SchemeLibrary().list():
        store.put_scheme(scheme, owner=BUILTIN_OWNER)
    return store


async def test_an_unexpected_exception_fails_its_item_and_stop_still_works(
    db_url: str, essay: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(db_url)
    scheme = SchemeLibrary().get(SCHEME)
    settings = Settings(
        backend="openai", llm_base_url="http://127.0.0.1:9/v1", database_url=db_url, batch_concurrency=1
    )
    runner = BatchRunner(store, ExplodingLLM(), settings)  # type: ignore[arg-type]
    batch_id = store.create_batch(
        scheme, [("boom", "EXPLODE " + essay), ("fine", essay)], samples=1, webhook_url=None, owner=None
    )
    await runner.start()
    try:
        for _ in range(200):
            view = store.get_batch(batch_id)
            if view.status != "running" and view.counts["queued"] == 0 and view.counts["running"] == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await asyncio.wait_for(runner.stop(), timeout=10)
    by_id = {i.external_id: i for i in view.items}
    assert by_id["fine"].status == "done"
    assert by_id["boom"].status == "failed" and by_id["boom"].error_code == "internal_error"
    assert by_id["boom"].retryable is True and by_id["boom"].attempts == 1, "a bug is not retried automatically"
    assert "KeyError" in (by_id["boom"].error_message or "") and "secret" not in (by_id["boom"].error_message or "")
    assert "KeyError" in caplog.text and "secret essay words" not in caplog.text
    store.engine.dispose()


def test_leases_keep_live_work_and_release_dead_work(db_url: str, essay: str, stalin: Any) -> None:
    store = make_store(db_url)
    batch_id = store.create_batch(stalin, [("a", essay)], samples=1, webhook_url=None, owner=None)
    first = store.claim_item("proc-a", lease_s=0.5)
    assert first is not None
    assert store.claim_item("proc-b", lease_s=30) is None, "a live lease is not taken over"
    assert store.renew_lease(first, lease_s=0.5)
    time.sleep(0.7)
    second = store.claim_item("proc-b", lease_s=30)
    assert second is not None and second.id == first.id and second.attempts == 2
    assert not store.renew_lease(first, lease_s=30), "the old holder learns it lost the lease"
    result = asyncio.run(_mark(essay, stalin))
    assert store.complete_item(first, result, owner=None) is None, "only the lease holder records"
    assert store.complete_item(second, result, owner=None) is not None
    # Even a holder that got round the lease (a bug, clock trouble) cannot store a second result.
    with store.engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("UPDATE batch_items SET status='running', claimed_by='proc-b' WHERE batch_id=:b"),
            {"b": batch_id},
        )
    assert store.complete_item(second, result, owner=None) is None
    with store.engine.connect() as conn:
        stored = conn.execute(
            sqlalchemy.text("SELECT COUNT(*) FROM markings WHERE batch_id=:b"), {"b": batch_id}
        ).scalar()
    assert stored == 1
    store.engine.dispose()


async def _mark(essay: str, stalin: Any) -> Any:
    from service.pipeline import mark_essay

    return await mark_essay(
        essay, stalin, llm=FakeMarker(), settings=Settings(backend="openai", llm_base_url="http://127.0.0.1:9/v1")
    )


def _serve(db_url: str, base_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DRAFTMARK_DATABASE_URL": db_url,
        "DRAFTMARK_AUTH_DISABLED": "1",
        "DRAFTMARK_BACKEND": "openai",
        "DRAFTMARK_LLM_BASE_URL": base_url,
        "DRAFTMARK_LLM_MODEL": "stub",
        "DRAFTMARK_BATCH_CONCURRENCY": "2",
        "DRAFTMARK_TRANSPORT_RETRIES": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--log-level", "warning"],
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


def test_two_api_processes_on_one_database_do_not_steal_work(db_url: str, essay: str, tmp_path: Path) -> None:
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    good = fake_marker_responder(FakeMarker(delay_s=0.5))

    def respond(body: dict[str, Any]) -> StubReply:
        with lock:
            seen[body["messages"][-1]["content"].split("ITEM-", 1)[1].split(".", 1)[0]] += 1
        return good(body)

    log = tmp_path / "servers.log"
    with OpenAIStub(responder=respond) as stub:
        port_a, port_b = free_port(), free_port()
        a = _serve(db_url, stub.base_url, port_a, log)
        b = None
        try:
            items = [{"external_id": f"x{i:02d}", "essay": f"ITEM-{i:02d}. {essay[:400]}"} for i in range(24)]
            batch_id = httpx.post(
                f"http://127.0.0.1:{port_a}/v1/batches", json={"scheme_id": SCHEME, "items": items}
            ).json()["id"]
            deadline = time.monotonic() + 20
            while httpx.get(f"http://127.0.0.1:{port_a}/v1/batches/{batch_id}").json()["counts"]["running"] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            b = _serve(db_url, stub.base_url, port_b, log)  # starts while a's items are running
            with httpx.Client(base_url=f"http://127.0.0.1:{port_b}", timeout=10) as client:
                batch = wait_for_batch(client, batch_id, timeout_s=60)
        finally:
            for proc in (a, b):
                if proc is not None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=20)
    assert batch["counts"]["done"] == 24 and batch["counts"]["failed"] == 0
    assert sorted(seen) == [f"{i:02d}" for i in range(24)]
    assert set(seen.values()) == {1}, f"an item was marked twice: {seen}"
    assert all(i["attempts"] == 1 for i in batch["items"])


async def test_stop_wins_even_when_it_races_a_wake_up(db_url: str) -> None:
    """A wake-up landing with the cancel must not swallow it (asyncio.wait_for in 3.11 did)."""
    store = make_store(db_url)
    settings = Settings(
        backend="openai", llm_base_url="http://127.0.0.1:9/v1", database_url=db_url, batch_concurrency=2
    )
    for _ in range(30):
        runner = BatchRunner(store, FakeMarker(), settings)
        await runner.start()
        await asyncio.sleep(0.02)  # the workers find nothing and wait for a wake-up
        runner.wake()
        await asyncio.wait_for(runner.stop(), timeout=5)
