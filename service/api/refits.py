"""Calibration refits after an approval, off the request: one at a time per owner and scheme, coalesced.

An approval answers at once; the refit (seconds for tens of scripts) runs in a worker thread
afterwards. Approvals that arrive while a refit runs are folded into one more refit when it
ends, so "approve and go to next" through a class set never queues a refit per script.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from schemas.scheme import MarkScheme
from service.api.exemplars import ExemplarStore
from service.api.stores import Store

log = logging.getLogger("draftmark.calibration")
Key = tuple[str, str, str]


@dataclass
class Refits:
    """Background refits keyed by (owner, scheme id, version)."""

    _running: dict[Key, asyncio.Task[None]] = field(default_factory=dict)
    _again: set[Key] = field(default_factory=set)

    def request(self, store: Store, owner: str, scheme: MarkScheme) -> None:
        """Refit soon (now, or once the running refit for the same scheme ends)."""
        key = (owner, scheme.id, scheme.version)
        task = self._running.get(key)
        if task is not None and not task.done():
            self._again.add(key)
            return
        self._running[key] = asyncio.create_task(self._run(store, key, owner, scheme), name=f"refit-{scheme.ref}")

    async def _run(self, store: Store, key: Key, owner: str, scheme: MarkScheme) -> None:
        while True:
            self._again.discard(key)
            try:
                await asyncio.to_thread(ExemplarStore(store).refit, owner, scheme)
            except Exception as exc:  # a failed refit keeps the previous fit; the next approval retries
                log.warning("calibration refit for %s failed: %s", scheme.ref, type(exc).__name__)
            if key not in self._again:
                return

    async def drain(self) -> None:
        """Wait for every running refit (shutdown, tests)."""
        while self._running:
            tasks = list(self._running.values())
            self._running = {k: t for k, t in self._running.items() if not t.done()}
            if not tasks or all(t.done() for t in tasks):
                self._running.clear()
                return
            await asyncio.gather(*tasks, return_exceptions=True)
