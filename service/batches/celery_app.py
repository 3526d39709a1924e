"""Celery mode: the broker (Redis) carries item ids; the database keeps every item's state.

Delivery: tasks are acknowledged late (after the task body returns) and rejected back to the
queue if their worker process is lost, so a ``kill -9`` means redelivery, after the broker's
visibility timeout. The body (``mark_batch_item``) is idempotent, so a redelivered or duplicated
message for an item that is done, failed, or leased to a live worker does nothing; a result is
stored at most once because the database refuses a second one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task

from service.settings import Settings

log = logging.getLogger("draftmark.batches")

QUEUE = "draftmark.batches"
MARK_ITEM = "draftmark.mark_batch_item"


def make_celery(settings: Settings) -> Celery:
    """The Celery app for this configuration (producers and workers build the same one)."""
    if settings.redis_url is None:
        raise ValueError("Celery mode needs DRAFTMARK_REDIS_URL")
    app = Celery("draftmark", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # outcomes live in the database
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s},
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    app.task(name=MARK_ITEM, bind=True, acks_late=True, max_retries=None)(_mark_item_task)
    return app


@dataclass
class _ThreadContext:
    loop: asyncio.AbstractEventLoop
    llm: Any


class WorkerContext:
    """What a worker process shares (settings, store, Redis) and keeps per thread (loop, LLM client).

    The async HTTP client under the LLM adapter belongs to the event loop it first ran on, so
    each pool thread keeps one loop and one adapter for its whole life.
    """

    current: WorkerContext | None = None

    def __init__(self, settings: Settings) -> None:
        from redis import Redis

        from service.batches.backend import new_claimer
        from service.persistence.db import make_engine, migrate
        from service.persistence.stores import Store

        self.settings = settings
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        self.store = Store(engine)
        self.redis = Redis.from_url(settings.redis_url or "", socket_timeout=10, health_check_interval=30)
        self.claimer = new_claimer()
        self._local = threading.local()

    def thread(self) -> _ThreadContext:
        """The calling pool thread's loop and LLM (made on first use)."""
        found: _ThreadContext | None = getattr(self._local, "ctx", None)
        if found is None:
            from service.batches.limits import RateLimitedLLM, RedisLimiter
            from service.llm.factory import build_llm

            llm = build_llm(self.settings)
            s = self.settings
            if s.llm_requests_per_minute or s.llm_max_concurrency:
                limiter = RedisLimiter(
                    self.redis,
                    requests_per_minute=s.llm_requests_per_minute,
                    max_concurrency=s.llm_max_concurrency,
                    slot_ttl_s=s.request_timeout_s * (s.transport_retries + 1) + 30,
                )
                llm = RateLimitedLLM(llm, limiter)
            found = _ThreadContext(loop=asyncio.new_event_loop(), llm=llm)
            self._local.ctx = found
        return found


def _mark_item_task(task: Task[Any, Any], item_id: int) -> str:
    from service.batches.notify import send_batch_webhook
    from service.batches.task import mark_batch_item

    ctx = WorkerContext.current
    if ctx is None:
        raise RuntimeError("the draftmark worker context is not set up; start workers with 'draftmark worker'")
    local = ctx.thread()

    async def finished(batch_id: str) -> None:
        url = await asyncio.to_thread(ctx.store.finish_batch_if_complete, batch_id)
        if url:
            await send_batch_webhook(ctx.store, ctx.settings, batch_id, url)

    outcome = local.loop.run_until_complete(
        mark_batch_item(ctx.store, local.llm, ctx.settings, claimer=ctx.claimer, item_id=item_id, on_finished=finished)
    )
    kind = outcome.kind if outcome is not None else "not_found"
    if kind in ("retry", "not_due"):
        assert outcome is not None
        raise task.retry(countdown=outcome.delay_s)
    return kind
