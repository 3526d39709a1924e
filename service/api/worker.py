"""Background batch workers inside the service process, with state in the database.

Workers claim queued items atomically, so concurrency to the LLM is bounded by the number of
workers. Items a dead process left 'running' are re-queued at start-up; a result is stored and
its item marked done in one transaction, so every item ends up done exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from service.api.store import ClaimedItem, Store
from service.api.webhooks import deliver
from service.errors import CallerError, DraftmarkError
from service.llm.port import LLM
from service.pipeline import mark_essay
from service.settings import Settings

log = logging.getLogger("draftmark.batches")


class BatchRunner:
    """A pool of worker tasks draining the batch queue."""

    def __init__(self, store: Store, llm: LLM, settings: Settings) -> None:
        self._store = store
        self._llm = llm
        self._settings = settings
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._webhook_tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Re-queue interrupted work, start the workers, retry undelivered webhooks."""
        requeued = await asyncio.to_thread(self._store.requeue_interrupted)
        if requeued:
            log.info("re-queued %d batch item(s) interrupted by a previous shutdown", requeued)
        self._tasks = [
            asyncio.create_task(self._work(), name=f"batch-worker-{i}") for i in range(self._settings.batch_concurrency)
        ]
        for batch_id, url in await asyncio.to_thread(self._store.pending_webhooks):
            self._spawn_webhook(batch_id, url)
        self._wake.set()

    def wake(self) -> None:
        """New work has arrived."""
        self._wake.set()

    async def stop(self) -> None:
        """Cancel the workers; interrupted items are re-queued at the next start."""
        for task in [*self._tasks, *self._webhook_tasks]:
            task.cancel()
        for task in [*self._tasks, *self._webhook_tasks]:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _work(self) -> None:
        while True:
            item = await asyncio.to_thread(self._store.claim_item)
            if item is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                continue
            await self._mark(item)

    async def _mark(self, item: ClaimedItem) -> None:
        owner = item.owner
        try:
            scheme = await asyncio.to_thread(self._store.get_scheme, item.scheme_id, item.scheme_version)
            if scheme is None:
                raise CallerError(f"scheme {item.scheme_id}@{item.scheme_version} is no longer registered")
            result = await mark_essay(item.essay, scheme, llm=self._llm, settings=self._settings, samples=item.samples)
        except CallerError as exc:
            await asyncio.to_thread(self._store.fail_item, item, code=exc.code, message=exc.message, retryable=False)
        except DraftmarkError as exc:
            log.warning("batch %s item %s failed: %s", item.batch_id, item.external_id, exc.code)
            await asyncio.to_thread(self._store.fail_item, item, code=exc.code, message=exc.message, retryable=True)
        else:
            await asyncio.to_thread(self._store.complete_item, item, result, owner=owner)
        url = await asyncio.to_thread(self._store.finish_batch_if_complete, item.batch_id)
        if url:
            self._spawn_webhook(item.batch_id, url)

    def _spawn_webhook(self, batch_id: str, url: str) -> None:
        task = asyncio.create_task(self._send_webhook(batch_id, url))
        self._webhook_tasks.add(task)
        task.add_done_callback(self._webhook_tasks.discard)

    async def _send_webhook(self, batch_id: str, url: str) -> None:
        secret = self._settings.webhook_secret
        if secret is None:
            return
        view = await asyncio.to_thread(self._store.get_batch, batch_id, with_items=False)
        payload = {"event": "batch.completed", "batch_id": view.id, "status": view.status, "counts": view.counts}
        ok = await deliver(url, payload, secret=secret.get_secret_value(), attempts=self._settings.webhook_attempts)
        await asyncio.to_thread(self._store.set_webhook_status, batch_id, "delivered" if ok else "failed")
