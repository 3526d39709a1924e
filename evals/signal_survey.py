r"""How each calibration text signal relates to the human marks, beyond what length says.

    python -m evals.signal_survey --dataset asap --path ../shared/data/asap-aes --set 2 [--limit N]

For every essay of the dataset (or a random ``--limit`` of them), the signals the calibrator sees
(``service.calibration.fit.prepare``: the counted text's statistics, the same as a fit computes),
then per objective: each signal's Spearman with the first human's mark, and the same with
log(word count) partialled out ("does it see anything beyond length?"). This is how a signal is
proposed; whether it is *used* is decided per teacher by forward selection inside the fit.
Prints a Markdown table; ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path
from typing import get_args

from scipy.stats import spearmanr

from evals.cli import DatasetKind, load_dataset
from evals.dataset import Dataset
from evals.metrics import partial_spearman
from service.calibration.fit import Script, prepare
from service.calibration.text import TEXT_FEATURES, words


def survey(data: Dataset, limit: int | None = None, seed: int = 0) -> list[str]:
    """Markdown lines: one table per objective, a row per signal."""
    items = list(data.items)
    if limit is not None and limit < len(items):
        items = random.Random(seed).sample(items, limit)
    scheme = data.scheme_for(items[0])
    prepared = prepare([Script(essay=i.essay, marks=i.human) for i in items], scheme)
    length = [math.log(max(1, len(words(i.essay)))) for i in items]
    lines = [f"# Signal survey: {data.name} ({len(items)} essays)", ""]
    for ao in scheme.objectives:
        human = [i.human[ao.id] for i in items]
        lines += [f"## {ao.id}", "", "| signal | Spearman | beyond length |", "|---|---|---|"]
        for name in TEXT_FEATURES:
            values = [row[name] for row in prepared.base]
            if len(set(values)) < 2:  # the same for every essay: no correlation to speak of
                lines.append(f"| {name} | – (constant) | – |")
                continue
            rho = float(spearmanr(human, values)[0])
            beyond = partial_spearman(human, values, length)
            lines.append(f"| {name} | {rho:+.3f} | {'–' if beyond is None else f'{beyond:+.3f}'} |")
        lines.append("")
    return lines


def main() -> None:
    """Print (and with ``--out`` write) the survey of ``--dataset``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="asap", choices=list(get_args(DatasetKind)))
    parser.add_argument("--path", type=Path)
    parser.add_argument("--set", dest="essay_set", type=int)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    kind: DatasetKind = args.dataset
    lines = survey(load_dataset(kind, args.path, args.essay_set), args.limit)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
