"""Celery mode, API side and worker side: publish queued items, recover lost ones, report health.

The database is an outbox: an item is published when the broker has no task for it. New
items are published by the API process that queued them (woken by the route); a sweep that
any process may run (one at a time, under a Redis lock) publishes what is left over: items whose
publication failed, items whose worker died (expired lease: faster than waiting for the
broker's visibility timeout), and queued items the broker lost (an empty queue while the
database still has work). Duplicate tasks are harmless: the task body is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from service.batches.backend import BackendHealth
from service.batches.celery_app import MARK_ITEM, QUEUE, make_celery
from service.batches.notify import send_batch_webhook
from service.persistence.db import utcnow
from service.persistence.stores import Store
from service.settings import Settings

if TYPE_CHECKING:
    from celery import Celery
    from redis import Redis

log = logging.getLogger("draftmark.batches")

WORKER_KEY = "draftmark:workers:"
HEARTBEAT_S = 5.0
HEARTBEAT_TTL_S = 15
_SWEEP_LOCK = "draftmark:sweep"
_SWEEP_EVERY_S = 5.0
_LOST_AFTER_S = 30.0


def publish(celery: Celery, store: Store, item_ids: list[int]) -> int:
    """Send one task per item; ids the broker refused are left for the next sweep. Returns the number sent."""
    sent: list[int] = []
    try:
        with celery.producer_or_acquire() as producer:
            for item_id in item_ids:
                celery.send_task(MARK_ITEM, args=[item_id], queue=QUEUE, producer=producer)
                sent.append(item_id)
    except Exception as exc:  # the broker is down or refused: the database still has every item
        log.error("broker refused %d task(s): %s", len(item_ids) - len(sent), type(exc).__name__)
        store.unpublish([i for i in item_ids if i not in set(sent)])
    return len(sent)


def publish_new(celery: Celery, store: Store) -> int:
    """Publish every queued item that has no task yet."""
    total = 0
    while ids := store.take_unpublished():
        sent = publish(celery, store, ids)
        total += sent
        if sent < len(ids):
            break
    return total


def queue_depth(redis: Redis) -> int:
    """Tasks waiting at the broker (not counting those workers hold)."""
    return int(redis.llen(QUEUE))


def sweep(celery: Celery, store: Store, redis: Redis) -> int:
    """Republish leftovers (see the module docstring); at most one process per interval does it."""
    if not redis.set(_SWEEP_LOCK, "1", nx=True, px=int(_SWEEP_EVERY_S * 1000 * 0.8)):
        return 0
    sent = publish_new(celery, store)
    expired = store.expired_leases()
    if expired:
        log.info("republishing %d item(s) whose worker stopped renewing its lease", len(expired))
        sent += publish(celery, store, expired)
    if queue_depth(redis) == 0:
        lost = store.queued_published_before(utcnow() - timedelta(seconds=_LOST_AFTER_S))
        if lost:
            log.warning("the broker has no task for %d queued item(s); republishing", len(lost))
            sent += publish(celery, store, lost)
    return sent


def worker_count(redis: Redis) -> int:
    """Workers whose heartbeat is fresh."""
    return sum(1 for _ in redis.scan_iter(match=WORKER_KEY + "*", count=100))


def heartbeat(redis: Redis, claimer: str, concurrency: int) -> None:
    """Say this worker is consuming, for HEARTBEAT_TTL_S seconds."""
    body = json.dumps({"concurrency": concurrency, "at": time.time()})
    redis.set(WORKER_KEY + claimer, body, ex=HEARTBEAT_TTL_S)


def health(redis: Redis) -> BackendHealth:
    """Broker reachable, workers consuming, queue depth."""
    try:
        redis.ping()
        workers = worker_count(redis)
        depth = queue_depth(redis)
    except Exception as exc:  # any client error means the broker is not usable: report, do not raise
        return BackendHealth(
            mode="celery", ready=False, workers=0, detail=f"broker unreachable: {type(exc).__name__}", broker="down"
        )
    return BackendHealth(
        mode="celery",
        ready=workers > 0,
        workers=workers,
        detail=None if workers else "no draftmark workers are consuming the batch queue",
        broker="ok",
        queue_depth=depth,
    )


class CeleryDispatcher:
    """The API's batch backend in Celery mode: it publishes and reports; workers do the marking."""

    mode = "celery"

    def __init__(self, store: Store, settings: Settings) -> None:
        from redis import Redis

        self._store = store
        self._settings = settings
        self._celery = make_celery(settings)
        self._redis = Redis.from_url(settings.redis_url or "", socket_timeout=5, socket_connect_timeout=5)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._webhook_tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Publish what is queued and keep sweeping; deliver webhooks a dead process left pending."""
        self._task = asyncio.create_task(self._loop(), name="batch-dispatcher")
        for batch_id, url in await asyncio.to_thread(self._store.pending_webhooks):
            task = asyncio.create_task(send_batch_webhook(self._store, self._settings, batch_id, url))
            self._webhook_tasks.add(task)
            task.add_done_callback(self._webhook_tasks.discard)
        self._wake.set()

    def wake(self) -> None:
        """New items: publish them now."""
        self._wake.set()

    async def health(self) -> BackendHealth:
        """Broker and worker health."""
        return await asyncio.to_thread(health, self._redis)

    async def stop(self) -> None:
        """Stop publishing; queued items stay in the database for the next process or sweep."""
        self._stopping = True  # a cancel that races a wake-up can be lost; the loop checks this too
        tasks = [t for t in (self._task, *self._webhook_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            self._redis.close()

    async def _loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SWEEP_EVERY_S):  # not wait_for: in 3.11 it can swallow a cancel
                    await self._wake.wait()
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                if woken:
                    await asyncio.to_thread(publish_new, self._celery, self._store)
                await asyncio.to_thread(sweep, self._celery, self._store, self._redis)
            except Exception as exc:  # database or broker trouble: say so, try again next round
                log.error("batch dispatcher: %s", type(exc).__name__)
