"""The development measurements behind three calibration design choices (issue 21), on splits that are not reported.

    .venv/bin/python benchmarks/calibration_design.py range    [--data ../shared/data]   # ASAP 1, seeds 100-102
    .venv/bin/python benchmarks/calibration_design.py keyness  [--data ../shared/data]   # ASAP 2 and 7, seed 7
    .venv/bin/python benchmarks/calibration_design.py rounding [--data ../shared/data]   # ASAP 1 and 7, seeds 100-102
    .venv/bin/python benchmarks/calibration_design.py coverage                          # the 24 Stalin scripts

range: the sceptic's line on raw and on counted length, with and without clamping to the training marks' range
(why the rounded length line may go REACH = 2 marks outside it), and the counted length with distribution-matched
cut-points instead of rounding (why the length line rounds). keyness: how much in-paragraph football padding
the counted text keeps, and how much of honest essays it keeps, for MIN_KEYNESS 0 (every shared word) to 20.
rounding: delivered and full-calibrator test QWK with distribution-matched and with rounded calibrator cut-points
(ROUND_CALIBRATOR). Each prints one line per split and setting; 200 (range, rounding) or 40 (keyness) test essays.
coverage: the indicative-coverage signal (issue 21 (b), ``service.reading.coverage``) with and without, on the 24
marked Stalin scripts in evals/data (3 x 5-fold cross-validated QWK per objective, fold seeds 0, 10, 20), and the
fit on all 24 applied to the 6 reference scripts and the example essay (ASAP has no indicative content).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import service.calibration.fit as fit
from evals.calibration import split
from evals.delivered import cell
from evals.loaders import load_asap
from evals.robustness import OFF_TOPIC_PADDING
from service.calibration.fit import Script, _qwk, prepare, sceptic_marks
from service.calibration.text import counted_text, essay_signals, key_vocabulary, topic_vocabulary, words


def check_range(data: Path) -> None:
    dataset = load_asap(data / "asap-aes", 1)
    for n in (10, 30):
        for seed in (100, 101, 102):
            parts = split(dataset.items, train=n, test=200, seed=seed, sampling="random")
            scheme = dataset.scheme_for(parts.test[0])
            ao = scheme.objectives[0]
            labels = list(range(ao.min_marks, ao.max_marks + 1))
            prepared = prepare([Script(i.essay, i.human) for i in parts.train], scheme)
            y = [i.human[ao.id] for i in parts.train]
            human = [i.human[ao.id] for i in parts.test]
            raw = sceptic_marks(
                [len(words(i.essay)) for i in parts.train], y, [len(words(i.essay)) for i in parts.test], labels
            )
            counted_test = [
                len(words(essay_signals(i.essay, scheme.question, prepared.vocabulary)[0].text)) for i in parts.test
            ]
            counted = sceptic_marks([len(words(c)) for c in prepared.counted], y, counted_test, labels)

            low, high = min(y), max(y)
            raw_clamped = [min(high, max(low, m)) for m in raw]
            counted_clamped = [min(high, max(low, m)) for m in counted]
            # The same one signal with distribution-matched cut-points (the calibrator's rule) instead of rounding.
            x_train = np.log1p(np.array([[len(words(c))] for c in prepared.counted], dtype=float))
            matched_line = fit._fit_linear(x_train, np.array(y), labels, 0)
            matched = fit._predict(matched_line, np.log1p(np.array([[c] for c in counted_test], dtype=float)), labels)
            figures = {
                "raw": raw,
                "raw+clamp": raw_clamped,
                "counted": counted,
                "counted+clamp": counted_clamped,
                "counted matched cut-points": matched,
            }
            print(
                f"ASAP 1 N={n} seed={seed} " + " ".join(f"{k} {_qwk(human, v, labels):.3f}" for k, v in figures.items())
            )


def check_keyness(data: Path) -> None:
    for essay_set in (2, 7):
        dataset = load_asap(data / "asap-aes", essay_set)
        parts = split(dataset.items, train=50, test=40, seed=7, sampling="random")
        scheme = dataset.scheme_for(parts.test[0])
        extra = topic_vocabulary([c for ao in scheme.objectives for c in ao.indicative_content], min_documents=1)
        train = [i.essay for i in parts.train]
        padding = len(words(OFF_TOPIC_PADDING * 3))
        for keyness in (0.0, 2.0, 5.0, 10.0, 20.0):
            vocabulary = (key_vocabulary(train, min_keyness=keyness) if keyness else topic_vocabulary(train)) | extra
            honest = [len(words(counted_text(i.essay, scheme.question, vocabulary).text)) for i in parts.test]
            padded = [len(words(counted_text(i.essay + " " + OFF_TOPIC_PADDING * 3, scheme.question, vocabulary).text))
                      for i in parts.test]  # fmt: skip
            kept = sum(honest) / sum(len(words(i.essay)) for i in parts.test)
            leaked = sum(max(0, p - h) for p, h in zip(padded, honest, strict=True)) / (padding * len(parts.test))
            print(f"ASAP {essay_set} keyness {keyness:g}: vocabulary {len(vocabulary)}, honest words kept {kept:.3f}, "
                  f"padding counted {leaked:.3f}")  # fmt: skip


def check_rounding(data: Path) -> None:
    for essay_set in (1, 7):
        dataset = load_asap(data / "asap-aes", essay_set)
        for n in (10, 30):
            for seed in (100, 101, 102):
                for rounded in (False, True):
                    fit.ROUND_CALIBRATOR = rounded
                    row = cell(dataset, f"ASAP {essay_set}", n, seed)
                    rule = "rounded" if rounded else "matched"
                    print(
                        f"ASAP {essay_set} N={n} seed={seed} {rule}: delivered {row['delivered']:.3f} "
                        f"calibrator {row['calibrator']:.3f} word count {row['word_count']:.3f}"
                    )
    fit.ROUND_CALIBRATOR = False


def check_smalln(data: Path, quick: bool = False) -> None:
    """The small-N decision: delivered test QWK under each decision rule (fit.DECISION), and the length line alone."""
    rules: list[tuple[str, str, float]] = [
        ("margin", "margin", fit.SELECTION_MARGIN),
        ("length", "margin", float("inf")),
    ]
    if not quick:
        rules[1:1] = [("one_se", "one_se", fit.SELECTION_MARGIN), ("min20", "min20", fit.SELECTION_MARGIN)]
    for essay_set in (1, 2, 7):
        dataset = load_asap(data / "asap-aes", essay_set)
        for n in (10, 20):
            for seed in (100, 101, 102, 103):
                for label, rule, margin in rules:
                    fit.DECISION, fit.SELECTION_MARGIN = rule, margin  # type: ignore[assignment]
                    row = cell(dataset, f"ASAP {essay_set}", n, seed)
                    print(
                        f"ASAP {essay_set} N={n} seed={seed} {label}: delivered {row['delivered']:.3f} "
                        f"calibrator {row['calibrator']:.3f} word count {row['word_count']:.3f} chosen {row['chosen']}",
                        flush=True,
                    )
    fit.DECISION, fit.SELECTION_MARGIN = "margin", rules[0][2]


def check_coverage(data: Path) -> None:
    del data  # the Stalin scripts ship with the repo (our own writing)
    from scipy.stats import spearmanr

    from evals.loaders import load_reference, load_stalin_exemplars
    from service.calibration.apply import calibrate, predict

    train, reference = load_stalin_exemplars(), load_reference()
    scheme = train.scheme_for(train.items[0])
    scripts = [Script(i.essay, i.human) for i in train.items]
    example = (Path(__file__).resolve().parent.parent / "examples/stalin-1929.txt").read_text(encoding="utf-8")
    for label, exclude in (("without coverage", frozenset({"content"})), ("with coverage", frozenset())):
        for seed in (0, 10, 20):
            cal = fit.fit_calibrator(scripts, scheme, seed=seed, exclude=exclude)
            parts = [
                f"{o.ao_id}: delivered {o.cv.delivered} {o.cv.delivered_qwk or 0:.3f}, calibrator "
                f"{o.cv.calibrated_qwk or 0:.3f}, length {o.cv.length_qwk or 0:.3f}, word count "
                f"{o.cv.word_count_qwk or 0:.3f}"
                + (" [coverage selected]" if "indicative_coverage" in o.features else "")
                for o in cal.objectives
            ]
            print(f"{label}, fold seed {seed}: " + "; ".join(parts))
        cal = fit.fit_calibrator(scripts, scheme, exclude=exclude)
        # Delivered where the fit is used; the calibrator's own prediction (marked *) where the model would decide.
        rows = []
        for essay in [i.essay for i in reference.items] + [example]:
            used = calibrate(cal, scheme, essay).marks
            rows.append({ao: used.get(ao, mark) for ao, mark in predict(cal, scheme, essay).items()})
        unused = [o.ao_id for o in cal.objectives if not o.used]
        totals = [sum(r.values()) for r in rows[:-1]]
        ours = [sum(i.human.values()) for i in reference.items]
        rho = float(spearmanr(totals, ours).statistic)
        print(
            f"{label}: reference totals {totals} vs ours {ours} (Spearman {rho:.3f}); example essay "
            f"{sum(rows[-1].values())}/15 {rows[-1]}; not used (model decides): {unused or 'none'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["range", "keyness", "rounding", "coverage", "smalln"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    checks = {
        "range": check_range,
        "keyness": check_keyness,
        "rounding": check_rounding,
        "coverage": check_coverage,
        "smalln": check_smalln,
    }
    checks[args.check](args.data)


if __name__ == "__main__":
    main()
