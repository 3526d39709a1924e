"""Batch queue figures in the Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

from service.batches.backend import BackendHealth


def render_metrics(counts: dict[str, int], health: BackendHealth) -> str:
    """Per-state item counts, broker queue depth, consuming workers, readiness."""
    lines = [
        "# HELP draftmark_batch_items Batch items in each state, over all batches.",
        "# TYPE draftmark_batch_items gauge",
        *(f'draftmark_batch_items{{state="{state}"}} {n}' for state, n in sorted(counts.items())),
        "# HELP draftmark_batch_workers Batch workers consuming (in-process tasks, or Celery workers with a fresh "
        "heartbeat).",
        "# TYPE draftmark_batch_workers gauge",
        f'draftmark_batch_workers{{mode="{health.mode}"}} {health.workers}',
        "# HELP draftmark_batch_ready 1 if queued batch items will make progress.",
        "# TYPE draftmark_batch_ready gauge",
        f"draftmark_batch_ready {int(health.ready)}",
    ]
    if health.broker is not None:
        lines += [
            "# HELP draftmark_broker_up 1 if the Redis broker answers.",
            "# TYPE draftmark_broker_up gauge",
            f"draftmark_broker_up {int(health.broker == 'ok')}",
        ]
    if health.queue_depth is not None:
        lines += [
            "# HELP draftmark_batch_queue_depth Tasks waiting at the broker (not yet taken by a worker).",
            "# TYPE draftmark_batch_queue_depth gauge",
            f"draftmark_batch_queue_depth {health.queue_depth}",
        ]
    return "\n".join(lines) + "\n"
