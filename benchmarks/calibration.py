"""How long calibration takes: fitting on N marked scripts, and scoring one essay with the fit.

    .venv/bin/python benchmarks/calibration.py [--asap ../shared/data/asap-aes] [--set 1]

Fitting runs in a worker thread when exemplars change (import, delete, approval); scoring runs in
every calibrated marking, so its time is compared with a marking's (the 25% budget of issue 10).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from evals.loaders import load_asap
from service.calibration.apply import calibrate
from service.calibration.fit import Script, fit_calibrator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--asap", type=Path, default=Path("../shared/data/asap-aes"))
    parser.add_argument("--set", type=int, default=1)
    parser.add_argument("--sizes", default="20,50,200")
    parser.add_argument("--out", type=Path, default=Path("docs/bench-calibration.json"))
    args = parser.parse_args()
    data = load_asap(args.asap, args.set)
    rng = random.Random(0)
    items = rng.sample(data.items, max(int(s) for s in args.sizes.split(",")) + 20)
    scheme = data.scheme_for(items[0])
    rows = []
    # Untimed warm-up: the word list and the libraries load once per process, not once per fit.
    fit_calibrator([Script(essay=i.essay, marks=i.human) for i in items[:10]], scheme)
    for size in (int(s) for s in args.sizes.split(",")):
        scripts = [Script(essay=i.essay, marks=i.human) for i in items[:size]]
        started = time.perf_counter()
        calibrator = fit_calibrator(scripts, scheme)
        fit_s = time.perf_counter() - started
        timings = []
        for item in items[-20:]:
            started = time.perf_counter()
            calibrate(calibrator, scheme, item.essay)
            timings.append(time.perf_counter() - started)
        row = {
            "scripts": size,
            "fit_s": round(fit_s, 2),
            "score_ms_median": round(1000 * statistics.median(timings), 1),
            "score_ms_max": round(1000 * max(timings), 1),
        }
        rows.append(row)
        print(json.dumps(row))
    args.out.write_text(json.dumps({"dataset": data.name, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
