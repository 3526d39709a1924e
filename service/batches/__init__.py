"""Batch marking: one task body (``service.batches.task``), run in-process or by Celery workers.

Submodules are imported where used: the Celery and Redis ones only in Celery mode.
"""

from service.batches.backend import BackendHealth, BatchBackend, new_claimer

__all__ = ["BackendHealth", "BatchBackend", "new_claimer"]
