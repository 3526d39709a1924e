"""Mark one batch item: the one task body that the in-process runner and Celery workers share.

The database is the source of truth. The task leases the item (so two workers never mark it at
once), renews the lease while the model works, and records exactly one outcome: a stored result,
a retry after a backoff (retryable model trouble, bounded by ``batch_max_attempts``), or a
failure with its reason (the dead-letter state). It is idempotent: run for an item that is
done, failed, or leased to a live worker, it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.exc import SQLAlchemyError

from service.errors import (
    CallerError,
    DraftmarkError,
    ModelResponseError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from service.llm.port import LLM
from service.persistence.db import LOCAL_OWNER, as_utc
from service.persistence.exemplars import ExemplarStore
from service.persistence.stores import ClaimedItem, Store
from service.pipeline import mark_essay
from service.settings import Settings

log = logging.getLogger("draftmark.batches")

_MAX_BACKOFF_S = 300.0

OutcomeKind = Literal["done", "failed", "retry", "lost", "leased", "not_due", "not_found", "finished"]
"""done/failed/retry: this run recorded that; lost: its lease was taken over first; leased, not_due,
finished, not_found: nothing was claimed (a live worker holds it, its backoff has not ended, it has
an outcome, it does not exist)."""


@dataclass(frozen=True)
class ItemOutcome:
    """What one run of the task did. ``delay_s``: when to run it again (retry, busy)."""

    kind: OutcomeKind
    item_id: int | None = None
    batch_id: str | None = None
    delay_s: float = 0.0
    code: str | None = None


def backoff_s(settings: Settings, tries: int, hint: float | None) -> float:
    """Exponential backoff with jitter for the ``tries``-th failure; never sooner than the endpoint asked."""
    base = settings.batch_retry_backoff_s * (2.0 ** max(0, tries - 1))
    delay = min(_MAX_BACKOFF_S, base) * random.uniform(0.8, 1.2)
    return max(delay, hint or 0.0)


def _where(exc: BaseException) -> str:
    """file:line of the innermost frame: enough to find the bug, and no essay text."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 2)[-1]}:{last.lineno}"


def _not_ours(item: ClaimedItem) -> ItemOutcome:
    log.warning("batch %s item %s: lease lost before the outcome was recorded", item.batch_id, item.id)
    return ItemOutcome("lost", item.id, item.batch_id)


async def _renew_forever(store: Store, item: ClaimedItem, lease_s: float) -> None:
    while True:
        await asyncio.sleep(lease_s / 3)
        try:
            if not await asyncio.to_thread(store.renew_lease, item, lease_s=lease_s):
                log.warning("batch %s item %s: lease taken over by another worker", item.batch_id, item.id)
                return
        except SQLAlchemyError as exc:  # keep marking; the next renewal may get through
            log.warning("batch %s item %s: lease renewal failed: %s", item.batch_id, item.id, type(exc).__name__)


async def _mark_claimed(store: Store, llm: LLM, settings: Settings, item: ClaimedItem) -> ItemOutcome:
    try:
        scheme = await asyncio.to_thread(
            store.get_scheme, item.scheme_id, item.scheme_version, owner=item.owner or LOCAL_OWNER
        )
        if scheme is None:
            raise CallerError(f"scheme {item.scheme_id}@{item.scheme_version} is no longer registered")
        calibrator = (
            await asyncio.to_thread(ExemplarStore(store).current, item.owner, scheme.id, scheme.version)
            if item.owner is not None
            else None
        )
        result = await mark_essay(
            item.essay, scheme, llm=llm, settings=settings, samples=item.samples, calibrator=calibrator
        )
    except CallerError as exc:
        ok = await asyncio.to_thread(store.fail_item, item, code=exc.code, message=exc.message, retryable=False)
        return ItemOutcome("failed", item.id, item.batch_id, code=exc.code) if ok else _not_ours(item)
    except Exception as exc:
        # Anything but a caller mistake fails only this item and the worker goes on. Transient
        # model trouble is retried with backoff; the rest (including a bug in us, or an upstream
        # reply nobody mapped) fails at once, retryable, so a person may re-queue it once fixed.
        # Logged by code, or by class and place: never essay text.
        return await _record_failure(store, settings, item, exc)
    marking_id = await asyncio.to_thread(store.complete_item, item, result, owner=item.owner)
    if marking_id is None:
        return _not_ours(item)
    return ItemOutcome("done", item.id, item.batch_id)


_TRANSIENT = (ModelUnavailableError, ModelTimeoutError, ModelResponseError)
"""Worth trying again as it is; truncation, content filtering and exhausted re-asks are not."""


async def _record_failure(store: Store, settings: Settings, item: ClaimedItem, exc: Exception) -> ItemOutcome:
    if isinstance(exc, DraftmarkError):
        code, message = exc.code, exc.message
        log.warning("batch %s item %s try %d failed: %s", item.batch_id, item.id, item.tries, code)
    else:
        code = "internal_error"
        message = f"marking failed unexpectedly ({type(exc).__name__} at {_where(exc)}); retry the batch"
        log.error(
            "batch %s item %s failed unexpectedly: %s at %s", item.batch_id, item.id, type(exc).__name__, _where(exc)
        )
    if isinstance(exc, _TRANSIENT) and item.tries < settings.batch_max_attempts:
        delay = backoff_s(settings, item.tries, exc.retry_after)
        ok = await asyncio.to_thread(store.defer_item, item, delay_s=delay, code=code, message=message)
        return ItemOutcome("retry", item.id, item.batch_id, delay_s=delay, code=code) if ok else _not_ours(item)
    ok = await asyncio.to_thread(store.fail_item, item, code=code, message=message, retryable=True)
    return ItemOutcome("failed", item.id, item.batch_id, code=code) if ok else _not_ours(item)


async def mark_batch_item(
    store: Store,
    llm: LLM,
    settings: Settings,
    *,
    claimer: str,
    item_id: int | None = None,
    on_finished: Callable[[str], Awaitable[None]] | None = None,
) -> ItemOutcome | None:
    """Claim (the given item, or the oldest claimable one), mark, record. None: nothing to claim.

    Cancelled while marking (shutdown), the item is released to the queue and the cancellation
    propagates. ``on_finished(batch_id)`` runs after a final outcome (the batch may be complete).
    """
    item = await asyncio.to_thread(store.claim_item, claimer, lease_s=settings.batch_lease_s, item_id=item_id)
    if item is None:
        if item_id is None:
            return None
        return await asyncio.to_thread(_why_not_claimed, store, item_id)
    renewer = asyncio.create_task(_renew_forever(store, item, settings.batch_lease_s))
    try:
        outcome = await _mark_claimed(store, llm, settings, item)
    except asyncio.CancelledError:
        await asyncio.shield(asyncio.to_thread(store.release_item, item))
        log.info("batch %s item %s released at shutdown", item.batch_id, item.id)
        raise
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
    if outcome.kind in ("done", "failed") and on_finished is not None:
        await on_finished(item.batch_id)
    return outcome


def _why_not_claimed(store: Store, item_id: int) -> ItemOutcome:
    state = store.item_state(item_id)
    if state is None:
        return ItemOutcome("not_found", item_id)
    status, _lease, not_before = state
    if status in ("done", "failed"):
        return ItemOutcome("finished", item_id)
    if status == "running":
        return ItemOutcome("leased", item_id)
    wait = 1.0
    if not_before is not None:
        wait = max(0.5, (as_utc(not_before) - datetime.now(UTC)).total_seconds() + 0.2)
    return ItemOutcome("not_due", item_id, delay_s=wait)
