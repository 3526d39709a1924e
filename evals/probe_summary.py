r"""How a probe run's answers relate to the human marks, on every essay it probed.

    python -m evals.probe_summary --run docs/evals/calibration-asap1-qwen-descriptors \
        --dataset asap --path ../shared/data/asap-aes --set 1

Prints, per objective: Spearman of the expected mark with the first human, the same with
log(word count) partialled out, the expected marks' range, and for each answer (a level's
probability, or P(Yes) for a level's descriptor) its mean and its Spearman with the human.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from evals.cli import load_dataset
from evals.metrics import partial_spearman
from evals.probe_run import PROBES_FILE


def summary(run: Path, items: dict[str, Any]) -> list[str]:
    """One line per objective and one per answer."""
    records = [json.loads(line) for line in (run / PROBES_FILE).read_text(encoding="utf-8").splitlines() if line]
    records = [r for r in records if r["item_id"] in items]
    lines = [f"{len(records)} essays, {records[0].get('kind', 'levels') if records else '-'} questions"]
    for ao_id in records[0]["objectives"] if records else []:
        human = [items[r["item_id"]].human[ao_id] for r in records]
        expected = [r["objectives"][ao_id]["expected_mark"] for r in records]
        length = [math.log(max(1, len(items[r["item_id"]].essay.split()))) for r in records]
        beyond = partial_spearman(human, expected, length)
        lines.append(
            f"{ao_id}: expected mark Spearman {spearmanr(human, expected)[0]:.3f}, beyond length "
            f"{beyond if beyond is None else round(beyond, 3)}, range {min(expected):.2f}-{max(expected):.2f}"
        )
        for answer in records[0]["objectives"][ao_id]["probabilities"]:
            values = [r["objectives"][ao_id]["probabilities"][answer] for r in records]
            lines.append(
                f"  answer {answer}: mean {sum(values) / len(values):.3f}, Spearman with human "
                f"{spearmanr(human, values)[0]:.3f}"
            )
    return lines


def main() -> None:
    """Print the summary of ``--run`` against ``--dataset``'s human marks."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--dataset", default="asap")
    parser.add_argument("--path", type=Path)
    parser.add_argument("--set", dest="essay_set", type=int)
    args = parser.parse_args()
    data = load_dataset(args.dataset, args.path, args.essay_set)
    for line in summary(args.run, {i.id: i for i in data.items}):
        print(line)


if __name__ == "__main__":
    main()
