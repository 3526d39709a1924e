"""Agreement of one call per objective against one call for all, on a multi-objective dataset.

Marks each essay of the dataset (default: the reference set, three objectives) as one
single-objective scheme per objective with the configured model, through ``mark_essay``, and
prints its agreement with the human beside an ``eval run`` folder's one-call marks for the same
essays. Results are kept in ``--out`` (one JSON line per essay), so a rerun resumes.

    .venv/bin/python benchmarks/per_objective.py --one-call docs/evals/diet-ref-after --out reports/per-ao-ref
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from benchmarks.local_model import per_objective_schemes
from evals.cli import load_dataset
from evals.metrics import agreement, mark_scales, with_total
from evals.runner import read_records
from service.errors import ModelError
from service.llm.factory import build_llm
from service.pipeline import mark_essay
from service.settings import Settings


async def mark_all(out: Path, dataset: str) -> dict[str, dict[str, int]]:
    """Mark every essay not yet in ``out`` per objective; all per-objective marks by item id."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "marks.jsonl"
    done = {r["item_id"]: r for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}
    data = load_dataset(dataset, None, None)  # type: ignore[arg-type]
    settings = Settings()
    llm = build_llm(settings)
    for item in data.items:
        if item.id in done:
            continue
        started = time.perf_counter()
        marks: dict[str, int] = {}
        status = "marked"
        for part in per_objective_schemes(data.scheme_for(item)):
            try:
                result = await mark_essay(item.essay, part, llm=llm, settings=settings)
            except ModelError as exc:
                status = f"unmarked: {type(exc).__name__}"
                break
            marks.update({m.ao_id: m.mark for m in result.ao_marks})
        record = {"item_id": item.id, "status": status, "marks": marks, "seconds": time.perf_counter() - started}
        with path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        done[item.id] = record
        print(f"{item.id}: {status} {marks} in {record['seconds']:.0f} s", flush=True)
    return {k: v["marks"] for k, v in done.items() if v["status"] == "marked"}


def main() -> None:
    """Mark, then compare with the one-call run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="reference")
    parser.add_argument("--one-call", type=Path, required=True, help="an eval run folder (items.jsonl)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    per_ao = asyncio.run(mark_all(args.out, args.dataset))
    one_call = {r["item_id"]: r for r in read_records(args.one_call) if r["status"] == "marked" and r["repeat"] == 0}
    data = load_dataset(args.dataset, None, None)  # type: ignore[arg-type]
    items = [i for i in data.items if i.id in per_ao and i.id in one_call]
    scheme = data.scheme_for(items[0])
    print(f"{len(items)} essays marked both ways")
    human, a, b = (
        [with_total(marks, scheme) for marks in column]
        for column in (
            [i.human for i in items],
            [one_call[i.id]["machine"] for i in items],
            [per_ao[i.id] for i in items],
        )
    )
    for name, labels in mark_scales(scheme).items():
        one = agreement([m[name] for m in human], [m[name] for m in a], labels)
        per = agreement([m[name] for m in human], [m[name] for m in b], labels)
        print(
            f"{name:6} one call: QWK {one.qwk}, MAE {one.mae:.2f}, mean {one.mean_b:.2f} | "
            f"per objective: QWK {per.qwk}, MAE {per.mae:.2f}, mean {per.mean_b:.2f} | human mean {one.mean_a:.2f}"
        )


if __name__ == "__main__":
    main()
