"""Run a dataset through ``mark_essay`` (the production pipeline): resumable, bounded concurrency."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.dataset import Dataset, EvalItem
from evals.robustness import Perturbation
from schemas.calibration import Calibrator
from service.calibration.text import words
from service.errors import DraftmarkError
from service.llm.port import LLM
from service.pipeline import mark_essay
from service.settings import Settings

ITEMS_FILE = "items.jsonl"


@dataclass(frozen=True)
class Task:
    """One marking to do."""

    item: EvalItem
    repeat: int
    perturbation: Perturbation | None

    @property
    def key(self) -> tuple[str, int, str | None]:
        """Identity in items.jsonl."""
        return (self.item.id, self.repeat, self.perturbation.name if self.perturbation else None)


def read_records(out: Path) -> list[dict[str, Any]]:
    """Every record in a run's items.jsonl (latest wins per key when reporting)."""
    path = out / ITEMS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _finished(out: Path) -> set[tuple[str, int, str | None]]:
    return {
        (r["item_id"], r["repeat"], r["perturbation"])
        for r in read_records(out)
        if r["status"] in ("marked", "refused")
    }


async def _mark(
    task: Task, dataset: Dataset, llm: LLM, settings: Settings, seed: int, calibrator: Calibrator | None = None
) -> dict[str, Any]:
    item = task.item
    scheme = dataset.scheme_for(item)
    essay = item.essay
    if task.perturbation is not None:
        essay = task.perturbation.apply(essay, random.Random(f"{seed}:{item.id}"))
    # A repeat is an independent marking: vary the seed so sampling (temperature > 0) can differ.
    run_settings = settings.model_copy(update={"seed": (settings.seed or 0) + 1000 * task.repeat})
    record: dict[str, Any] = {
        "item_id": item.id,
        "repeat": task.repeat,
        "perturbation": task.perturbation.name if task.perturbation else None,
        "expect": task.perturbation.expect if task.perturbation else None,
        "scheme_id": scheme.id,
        "human": item.human,
        "human2": item.human2,
        "words": len(words(essay)),
        "sample": item.metadata.get("sample"),
    }
    try:
        result = await mark_essay(essay, scheme, llm=llm, settings=run_settings, calibrator=calibrator)
    except DraftmarkError as exc:
        status = "refused" if exc.status_code < 500 and exc.status_code != 404 else "unmarked"
        return record | {
            "status": status,
            "machine": None,
            "levels": None,
            "flags": [],
            "error": {"code": exc.code, "message": exc.message},
            "provenance": None,
        }
    return record | {
        "status": "marked",
        "machine": {m.ao_id: m.mark for m in result.ao_marks},
        "levels": {m.ao_id: m.level for m in result.ao_marks},
        "flags": [f.code.value for f in result.flags],
        "error": None,
        "provenance": result.provenance.model_dump(mode="json"),
    }


async def run_dataset(
    dataset: Dataset,
    tasks: list[Task],
    *,
    llm: LLM,
    settings: Settings,
    out: Path,
    concurrency: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    calibrator: Calibrator | None = None,
) -> int:
    """Mark every unfinished task, appending each record as it completes; returns how many ran.

    With ``calibrator`` (fitted on other items), every marking, perturbed ones included, goes through
    calibration, so the report and robustness suite measure the calibrated system.
    """
    out.mkdir(parents=True, exist_ok=True)
    done = _finished(out)
    todo = [t for t in tasks if t.key not in done]
    semaphore = asyncio.Semaphore(concurrency)
    lock = asyncio.Lock()
    completed = 0

    async def one(task: Task) -> None:
        nonlocal completed
        async with semaphore:
            record = await _mark(task, dataset, llm, settings, seed, calibrator)
        async with lock:
            with (out / ITEMS_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            completed += 1
            if progress:
                progress(completed, len(todo))

    await asyncio.gather(*(one(t) for t in todo))
    return len(todo)


def plan(items: list[EvalItem], *, repeats: int, perturbations: list[Perturbation]) -> list[Task]:
    """Each item ``repeats`` times, plus each perturbation once."""
    tasks = [Task(item, r, None) for item in items for r in range(repeats)]
    tasks += [Task(item, 0, p) for item in items for p in perturbations]
    return tasks
