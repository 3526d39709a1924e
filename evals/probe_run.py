"""``draftmark eval probe``: the model's level distributions for a dataset's essays, resumable and cached.

Each line of ``probes.jsonl`` holds one essay's probe (no essay text): item id, model, prompt hash
and per objective the level probabilities and expected mark. A rerun skips what is there, so a
long run on 2 cores can be stopped and resumed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from evals.dataset import Dataset, EvalItem
from service.calibration.probe import probe_essay
from service.llm.port import NextTokenProbe
from service.prompting import load_prompt

PROBES_FILE = "probes.jsonl"


def read_probes(out: Path) -> dict[str, dict[str, float]]:
    """Expected marks per item id from a probe run folder (the latest line per item wins)."""
    path = out / PROBES_FILE
    if not path.exists():
        return {}
    probes: dict[str, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            probes[record["item_id"]] = {k: v["expected_mark"] for k, v in record["objectives"].items()}
    return probes


async def run_probes(
    dataset: Dataset,
    items: list[EvalItem],
    llm: NextTokenProbe,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Probe every item not yet in ``out``; returns how many ran."""
    out.mkdir(parents=True, exist_ok=True)
    prompt = load_prompt("probe")
    done = set(read_probes(out))
    todo = [i for i in items if i.id not in done]
    for number, item in enumerate(todo, start=1):
        probe = await probe_essay(llm, dataset.scheme_for(item), item.essay, prompt)
        record = {"item_id": item.id, **probe.model_dump(mode="json")}
        with (out / PROBES_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if progress:
            progress(number, len(todo))
    return len(todo)
