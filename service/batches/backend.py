"""What the API needs from whatever runs batches: in-process tasks, or Celery workers."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Protocol


def new_claimer() -> str:
    """A lease holder's name: host, process and a random part (pids repeat across restarts)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class BackendHealth:
    """Whether batches will make progress: ``workers`` consuming, and what is wrong if none."""

    mode: str
    ready: bool
    workers: int
    detail: str | None = None
    broker: str | None = None
    queue_depth: int | None = None


class BatchBackend(Protocol):
    """Started and stopped in the API's lifespan; woken when items are queued."""

    mode: str

    async def start(self) -> None:
        """Begin running (or dispatching) queued work."""
        ...

    async def stop(self) -> None:
        """Stop; never raises."""
        ...

    def wake(self) -> None:
        """Items were queued (a new batch, or a retry)."""
        ...

    async def health(self) -> BackendHealth:
        """For /readyz and /metrics."""
        ...
