"""Persistence operations (sync; the API calls them from worker threads), one module per resource.

``Store`` combines the per-resource stores over one engine, one session factory and one write lock,
so every caller keeps holding a single object.
"""

from __future__ import annotations

from service.persistence.stores.base import StoreBase, new_id
from service.persistence.stores.batches import BatchStore, BatchView, ItemView
from service.persistence.stores.comments import CommentStore, SavedComment
from service.persistence.stores.idempotency import IdempotencyStore
from service.persistence.stores.keys import KeyStore, hash_key
from service.persistence.stores.lms import LmsConnectionStore
from service.persistence.stores.lti import Link, LtiStore, Platform, QueuedScore, ScoreQueueStore
from service.persistence.stores.markings import MarkingStore, StoredMarking
from service.persistence.stores.queue import ClaimedItem, QueueStore
from service.persistence.stores.reviews import ReviewStore
from service.persistence.stores.schemes import RegisteredScheme, SchemeStore
from service.persistence.stores.users import User, UserStore
from service.persistence.stores.webhooks import WebhookStore


class Store(
    UserStore,
    KeyStore,
    LtiStore,
    ScoreQueueStore,
    LmsConnectionStore,
    SchemeStore,
    ReviewStore,
    CommentStore,
    BatchStore,
    QueueStore,
    WebhookStore,
    IdempotencyStore,
):
    """All database access for the API and the batch workers."""


__all__ = [
    "BatchStore",
    "BatchView",
    "ClaimedItem",
    "CommentStore",
    "IdempotencyStore",
    "ItemView",
    "KeyStore",
    "Link",
    "LmsConnectionStore",
    "LtiStore",
    "MarkingStore",
    "Platform",
    "QueueStore",
    "QueuedScore",
    "RegisteredScheme",
    "ReviewStore",
    "SavedComment",
    "SchemeStore",
    "ScoreQueueStore",
    "Store",
    "StoreBase",
    "StoredMarking",
    "User",
    "UserStore",
    "WebhookStore",
    "hash_key",
    "new_id",
]
