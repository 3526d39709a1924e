"""The batch-completed webhook, sent by whichever process recorded a batch's last outcome."""

from __future__ import annotations

import asyncio

from service.persistence.db import LOCAL_OWNER
from service.persistence.stores import Store
from service.settings import Settings
from service.workflows.webhooks import deliver, owner_secret


async def send_batch_webhook(store: Store, settings: Settings, batch_id: str, url: str) -> None:
    """Deliver ``batch.completed`` signed with the batch owner's secret (with retries); record whether it arrived."""
    secret = settings.webhook_secret
    if secret is None:
        return
    view = await asyncio.to_thread(store.get_batch, batch_id, with_items=False)
    payload = {"event": "batch.completed", "batch_id": view.id, "status": view.status, "counts": view.counts}
    ok = await deliver(
        url,
        payload,
        secret=owner_secret(secret.get_secret_value(), view.owner or LOCAL_OWNER),
        attempts=settings.webhook_attempts,
        allow_private=settings.webhook_allow_private,  # the address is checked again at delivery
    )
    await asyncio.to_thread(store.set_webhook_status, batch_id, "delivered" if ok else "failed")
