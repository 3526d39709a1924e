"""``draftmark eval probe``: the model's level distributions for a dataset's essays, resumable and cached.

Each line of ``probes.jsonl`` holds one essay's probe (no essay text): item id, model, prompt hash
and per objective the level probabilities and expected mark. A rerun skips what is there, so a
long run on 2 cores can be stopped and resumed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from evals.dataset import Dataset, EvalItem
from service.calibration.descriptors import descriptor_probe
from service.calibration.probe import probe_essay
from service.errors import CallerError
from service.llm.port import NextTokenProbe
from service.prompting import load_prompt

ProbeKind = Literal["levels", "descriptors"]

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
    kind: ProbeKind = "levels",
) -> int:
    """Probe every item not yet in ``out``; returns how many ran.

    ``levels``: one "which level?" question per objective; ``descriptors``: one "does this
    descriptor fit?" question per level. A folder holds one kind (mixing them is refused).
    """
    out.mkdir(parents=True, exist_ok=True)
    prompt = load_prompt("probe" if kind == "levels" else "descriptors")
    _check_kind(out, kind)
    done = set(read_probes(out))
    todo = [i for i in items if i.id not in done]
    ask = probe_essay if kind == "levels" else descriptor_probe
    for number, item in enumerate(todo, start=1):
        probe = await ask(llm, dataset.scheme_for(item), item.essay, prompt)
        record = {"item_id": item.id, **probe.model_dump(mode="json")}
        with (out / PROBES_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if progress:
            progress(number, len(todo))
    return len(todo)


def probe_kind(out: Path) -> str | None:
    """Which questions a probe folder holds (``levels`` or ``descriptors``); None when it is empty."""
    path = out / PROBES_FILE
    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            return str(json.loads(line).get("kind", "levels"))
    return None


def _check_kind(out: Path, kind: ProbeKind) -> None:
    found = probe_kind(out)
    if found is not None and found != kind:
        raise CallerError(f"{out / PROBES_FILE} holds '{found}' probes; use another --out for '{kind}'")
