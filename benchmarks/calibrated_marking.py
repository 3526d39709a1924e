"""What calibration adds to a marking's time on the embedded model (issue 10's 25% budget).

    .venv/bin/python benchmarks/calibrated_marking.py [--asap ../shared/data/asap-aes] [--essays 3]

Fits a calibrator on 50 ASAP set 1 scripts (text signals, as a teacher's 50 marked scripts would
give; the first split seed whose fit is *used*, since an unused fit changes nothing), then marks
the same other essays with the embedded model twice each: all uncalibrated, then all calibrated
(the decided marks fixed in the prompt and the answer schema). One warm-up marking of each kind
first fills the prefix cache. Prints and writes
docs/bench-calibrated-marking.json: wall seconds, generated tokens and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from evals.loaders import load_asap
from schemas.calibration import Calibrator
from schemas.scheme import MarkScheme
from service.calibration.fit import Script, fit_calibrator
from service.llm.factory import build_llm
from service.llm.port import LLM
from service.pipeline import mark_essay
from service.settings import Settings


def _used_calibrator(items: list[Any], scheme: MarkScheme) -> tuple[Calibrator, int]:
    for seed in range(10):
        train = random.Random(seed).sample(items, 50)
        calibrator = fit_calibrator([Script(essay=i.essay, marks=i.human) for i in train], scheme)
        if calibrator.used:
            return calibrator, seed
    raise SystemExit("no split seed in 0-9 gave a calibrator that beats the baselines")


def _mark(essay: str, scheme: MarkScheme, llm: LLM, settings: Settings, cal: Calibrator | None) -> dict[str, Any]:
    started = time.perf_counter()
    result = asyncio.run(mark_essay(essay, scheme, llm=llm, settings=settings, calibrator=cal))
    return {
        "calibrated": cal is not None,
        "wall_s": round(time.perf_counter() - started, 2),
        "generated_tokens": result.provenance.usage.completion_tokens,
        "status": result.provenance.calibration.status,
        "total": result.total,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--asap", type=Path, default=Path("../shared/data/asap-aes"))
    parser.add_argument("--essays", type=int, default=3, help="at least 2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/bench-calibrated-marking.json"))
    args = parser.parse_args()
    if args.essays < 2:
        parser.error("--essays must be at least 2 (each marking must follow another essay's)")
    data = load_asap(args.asap, 1)
    scheme = data.scheme_for(data.items[0])
    calibrator, seed = _used_calibrator(list(data.items), scheme)
    train_ids = {i.id for i in random.Random(seed).sample(list(data.items), 50)}
    others = [i for i in data.items if i.id not in train_ids]
    essays = [i.essay for i in random.Random(100).sample(others, args.essays + 1)]
    settings = Settings(backend="local", local_threads=args.threads, max_reasks=0)
    llm = build_llm(settings)
    warm_up = [_mark(essays[0], scheme, llm, settings, c) for c in (None, calibrator)]
    # Every marking follows a marking of a *different* essay, so each pays for reading its essay
    # (llama.cpp reuses the longest common prompt prefix: marking one essay twice in a row would
    # make the second marking look cheap).
    rows = []
    for cal in (None, calibrator):
        for essay in essays[1:]:
            rows.append(_mark(essay, scheme, llm, settings, cal))
            print(json.dumps(rows[-1]))
    plain = [r["wall_s"] for r in rows if not r["calibrated"]]
    calibrated = [r["wall_s"] for r in rows if r["calibrated"]]
    summary = {
        "model": llm.model_id,
        "calibrator": calibrator.version,
        "split_seed": seed,
        "essays": args.essays,
        "uncalibrated_s_median": statistics.median(plain),
        "calibrated_s_median": statistics.median(calibrated),
        "ratio": round(sum(calibrated) / sum(plain), 3),
        "warm_up": warm_up,
        "rows": rows,
    }
    print(json.dumps({k: v for k, v in summary.items() if k not in ("rows", "warm_up")}))
    args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
