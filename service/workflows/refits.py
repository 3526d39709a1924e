"""Calibration refits, always off the request: coalesced per owner and scheme, bounded per owner and in total.

An approval, an import or a deletion answers at once (the answer says a refit is pending); the
refit (seconds for tens of scripts, over a minute for hundreds) runs in a worker thread
afterwards. Changes that arrive while a refit runs are folded into one more refit when it ends,
so "approve and go to next" through a class set never queues a refit per script. Fits are CPU
work: at most ``per_owner`` run at once for one owner and ``total`` in the whole process, so a
burst of imports can neither starve the shared thread pool nor let one teacher hold every slot.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from schemas.scheme import MarkScheme
from service.persistence.exemplars import ExemplarStore
from service.persistence.stores import Store

log = logging.getLogger("draftmark.calibration")
Key = tuple[str, str, str]


@dataclass
class Refits:
    """Background refits keyed by (owner, scheme id, version)."""

    total: int = 2
    per_owner: int = 1
    _running: dict[Key, asyncio.Task[None]] = field(default_factory=dict)
    _again: set[Key] = field(default_factory=set)
    _owner_slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.total)  # binds to the running loop on first use, not here

    def request(self, store: Store, owner: str, scheme: MarkScheme) -> None:
        """Refit soon (now, or once the running refit for the same scheme ends)."""
        key = (owner, scheme.id, scheme.version)
        task = self._running.get(key)
        if task is not None and not task.done():
            self._again.add(key)
            return
        self._running[key] = asyncio.create_task(self._run(store, key, owner, scheme), name=f"refit-{scheme.ref}")

    def pending(self, owner: str, scheme: MarkScheme) -> bool:
        """A refit for this owner and scheme version is queued or running (its figures are not out yet)."""
        task = self._running.get((owner, scheme.id, scheme.version))
        return task is not None and not task.done()

    async def _run(self, store: Store, key: Key, owner: str, scheme: MarkScheme) -> None:
        owner_slots = self._owner_slots.setdefault(owner, asyncio.Semaphore(self.per_owner))
        async with owner_slots, self._slots:
            while True:
                self._again.discard(key)
                try:
                    await asyncio.to_thread(ExemplarStore(store).refit, owner, scheme)
                except Exception as exc:  # a failed refit keeps the previous fit; the next change retries
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
