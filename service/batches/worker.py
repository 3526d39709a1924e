"""Batch marking inside the service process (the default: no extra servers), state in the database.

A pool of asyncio tasks runs the shared task body (``service.batches.mark_batch_item``), so
concurrency to the LLM is bounded by the number of tasks. Items are leased, not owned: a
process starting up leaves other processes' live work alone and takes over only items whose
lease has expired. A failing item never stops a worker, and stopping always succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from service.batches.backend import BackendHealth, new_claimer
from service.batches.notify import send_batch_webhook
from service.batches.task import mark_batch_item
from service.llm.port import LLM
from service.persistence.stores import Store
from service.settings import Settings

log = logging.getLogger("draftmark.batches")

_IDLE_POLL_S = 1.0
"""How often an idle worker looks again without a wake-up (retries fall due, leases expire)."""


class BatchRunner:
    """A pool of worker tasks draining the batch queue in this process."""

    mode = "in-process"

    def __init__(self, store: Store, llm: LLM, settings: Settings) -> None:
        self._store = store
        self._llm = llm
        self._settings = settings
        self.claimer = new_claimer()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._webhook_tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start the workers and retry undelivered webhooks."""
        self._tasks = [
            asyncio.create_task(self._work(), name=f"batch-worker-{i}") for i in range(self._settings.batch_concurrency)
        ]
        for batch_id, url in await asyncio.to_thread(self._store.pending_webhooks):
            self._spawn_webhook(batch_id, url)
        self._wake.set()

    def wake(self) -> None:
        """New work has arrived."""
        self._wake.set()

    async def health(self) -> BackendHealth:
        """In-process workers are alive while any of their tasks is."""
        alive = sum(1 for t in self._tasks if not t.done())
        return BackendHealth(mode=self.mode, ready=alive > 0, workers=alive, detail=None if alive else "no workers")

    async def stop(self) -> None:
        """Cancel the workers: items being marked go back to the queue for the next process."""
        self._stopping = True  # a cancel that races a wake-up can be lost; the loop checks this too
        tasks = [*self._tasks, *self._webhook_tasks]
        for task in tasks:
            task.cancel()
        for task, outcome in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
            if isinstance(outcome, Exception):
                log.error("%s ended with %s at shutdown", task.get_name(), type(outcome).__name__)

    async def _work(self) -> None:
        while not self._stopping:
            try:
                outcome = await mark_batch_item(
                    self._store, self._llm, self._settings, claimer=self.claimer, on_finished=self._finished
                )
            except Exception as exc:  # the database failed us: say so, keep the worker alive, try again
                log.error("batch worker: %s; retrying in %.0f s", type(exc).__name__, _IDLE_POLL_S)
                outcome = None
            if outcome is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_IDLE_POLL_S):  # not wait_for: in 3.11 it can swallow a cancel
                        await self._wake.wait()

    async def _finished(self, batch_id: str) -> None:
        url = await asyncio.to_thread(self._store.finish_batch_if_complete, batch_id)
        if url:
            self._spawn_webhook(batch_id, url)

    def _spawn_webhook(self, batch_id: str, url: str) -> None:
        task = asyncio.create_task(self._send_webhook(batch_id, url))
        self._webhook_tasks.add(task)
        task.add_done_callback(self._webhook_tasks.discard)

    async def _send_webhook(self, batch_id: str, url: str) -> None:
        await send_batch_webhook(self._store, self._settings, batch_id, url)
