"""``draftmark worker``: a Celery worker that marks batch items, with a heartbeat and a sweeper.

The pool is threads: marking waits on the LLM endpoint, so threads are enough, and one
process per machine keeps one database pool and one Redis connection. SIGTERM (or Ctrl-C)
is Celery's warm shutdown: no new tasks are taken and running ones finish; anything a killed
worker left is redelivered by the broker or republished by a sweep once its lease expires.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import signals

from service.batches.celery_app import QUEUE, WorkerContext, make_celery
from service.batches.dispatch import HEARTBEAT_S, WORKER_KEY, heartbeat, sweep
from service.settings import Settings

log = logging.getLogger("draftmark.batches")


class _Maintenance(threading.Thread):
    """Heartbeat and sweep every few seconds while the worker is consuming."""

    def __init__(self, ctx: WorkerContext, concurrency: int) -> None:
        super().__init__(name="draftmark-maintenance", daemon=True)
        self._ctx = ctx
        self._concurrency = concurrency
        self._celery = make_celery(ctx.settings)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                heartbeat(self._ctx.redis, self._ctx.claimer, self._concurrency)
                sweep(self._celery, self._ctx.store, self._ctx.redis)
            except Exception as exc:  # broker or database trouble: report it and keep beating
                log.error("worker maintenance: %s", type(exc).__name__)
            self.stopping.wait(HEARTBEAT_S)
        try:
            self._ctx.redis.delete(WORKER_KEY + self._ctx.claimer)
        except Exception as exc:  # the heartbeat then simply expires
            log.warning("could not withdraw the worker heartbeat: %s", type(exc).__name__)


def run_worker(settings: Settings, *, concurrency: int, loglevel: str = "INFO") -> None:
    """Consume the batch queue until SIGTERM."""
    ctx = WorkerContext(settings)
    WorkerContext.current = ctx
    app = make_celery(settings)
    maintenance = _Maintenance(ctx, concurrency)

    def ready(**_: Any) -> None:
        maintenance.start()
        log.info("draftmark worker %s consuming %s with %d threads", ctx.claimer, QUEUE, concurrency)

    def shutting_down(**_: Any) -> None:
        maintenance.stopping.set()

    signals.worker_ready.connect(ready, weak=False)
    signals.worker_shutting_down.connect(shutting_down, weak=False)
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            f"--queues={QUEUE}",
            f"--hostname=draftmark-{ctx.claimer.replace(':', '-')}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
