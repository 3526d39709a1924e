"""Helpers for API tests: a real uvicorn server in a thread, databases, a counting fake."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn

from service.api import create_app
from service.llm.fake import FakeMarker
from service.llm.port import Completion, CompletionRequest
from service.settings import Settings
from tests.conftest import POSTGRES_ENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database(kind: str, tmp_path: object) -> Iterator[str]:
    """A fresh, empty database URL of the given kind."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/api-{uuid.uuid4().hex[:8]}.db"
        return
    admin_url = os.environ[POSTGRES_ENV]
    import sqlalchemy

    name = f"dm_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@dataclass
class CountingFake:
    """FakeMarker that records peak concurrency and can fail chosen essays."""

    delay_s: float = 0.0
    fail_when: str | None = None
    error: Exception | None = None
    inner: FakeMarker = field(default_factory=FakeMarker)
    active: int = 0
    peak: int = 0
    calls: int = 0
    model_id: str = "counting-fake"
    indicative_only: bool = False

    @property
    def endpoint_kind(self) -> str:
        return "fake"

    async def complete(self, request: CompletionRequest) -> Completion:
        self.active += 1
        self.calls += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.error is not None and (self.fail_when is None or self.fail_when in request.messages[-1].content):
                raise self.error
            return await self.inner.complete(request)
        finally:
            self.active -= 1


class LiveServer:
    """uvicorn serving the real app on 127.0.0.1 in a background thread."""

    def __init__(self, settings: Settings, llm: object) -> None:
        self.port = free_port()
        self.app = create_app(settings, llm=llm)  # type: ignore[arg-type]
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def wait_for_batch(client: httpx.Client, batch_id: str, timeout_s: float = 60) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while True:
        body = client.get(f"/v1/batches/{batch_id}").json()
        if body["status"] in ("done", "done_with_failures"):
            return body  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"batch not finished: {body['counts']}")
        time.sleep(0.1)


def settled_calibration(client: httpx.Client, scheme_url: str, timeout_s: float = 60) -> dict:  # type: ignore[type-arg]
    """``GET {scheme_url}/calibration`` once no refit is pending (imports, deletions, refits run in the background)."""
    deadline = time.monotonic() + timeout_s
    while (body := client.get(f"{scheme_url}/calibration").json())["refit_pending"]:
        assert time.monotonic() < deadline, "the refit did not finish"
        time.sleep(0.05)
    return body  # type: ignore[no-any-return]
