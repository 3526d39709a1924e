"""Calibration eval: fit on a disjoint training split, test on other essays, beside the baselines a sceptic runs.

For each test essay the report compares, with the first human's marks: the second human (the
ceiling), word count alone (a regression on log word count fitted on the training split), the
model alone (its uncalibrated marks, when a marking run is given) and the calibrated system
(``fit_calibrator`` on the training split, applied to the test essay with the production
``calibrate``). No test essay is ever in the training split.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from evals.dataset import Dataset, EvalItem, stratified_sample
from evals.metrics import agreement, mark_scales, partial_spearman, with_total
from schemas.calibration import Calibrator
from schemas.scheme import MarkScheme
from service.calibration.apply import predict
from service.calibration.fit import FEATURE_GROUPS, Script, fit_calibrator, word_count_marks
from service.calibration.text import words

Sampling = Literal["random", "stratified"]


@dataclass(frozen=True)
class Split:
    """Disjoint training and test items."""

    train: list[EvalItem]
    test: list[EvalItem]
    sampling: Sampling


def split(items: Sequence[EvalItem], *, train: int, test: int, seed: int, sampling: Sampling) -> Split:
    """``test`` items (random, or stratified over the score range) and ``train`` random others."""
    pool = list(items)
    if train + test > len(pool):
        raise ValueError(f"asked for {train} training and {test} test items; the dataset has {len(pool)}")
    rng = random.Random(seed)
    rng.shuffle(pool)
    test_items = pool[:test] if sampling == "random" else stratified_sample(pool, test, seed)
    chosen = {i.id for i in test_items}
    rest = [i for i in pool if i.id not in chosen]
    return Split(train=rest[:train], test=sorted(test_items, key=lambda i: i.id), sampling=sampling)


Probes = dict[str, dict[str, float]]


def _scripts(
    items: Sequence[EvalItem], llm: dict[str, dict[str, int]] | None, probe: Probes | None = None
) -> list[Script]:
    return [
        Script(
            essay=i.essay,
            marks=i.human,
            llm_marks=llm.get(i.id) if llm else None,
            llm_expected=probe.get(i.id) if probe else None,
        )
        for i in items
    ]


def _figures(human: list[int], other: list[int], labels: list[int], length: list[float]) -> dict[str, Any]:
    a = agreement(human, other, labels)
    return {
        "n": a.n,
        "qwk": a.qwk,
        "exact": a.exact,
        "adjacent": a.adjacent,
        "smd": a.smd,
        "spearman": a.spearman,
        "spearman_beyond_length": partial_spearman(human, other, length),
        "mean": a.mean_b,
    }


def _predictions(
    parts: Split,
    scheme: MarkScheme,
    llm: dict[str, dict[str, int]] | None,
    *,
    exclude: frozenset[str],
    probe: Probes | None = None,
    decide: bool = True,
) -> tuple[list[dict[str, int]], Calibrator]:
    """Test predictions of the product's fit (``decide``: the delivered fitted candidate) or of the calibrator.

    The fit always uses the product's own seed (0): eval and product decide the same for the same scripts.
    """
    calibrator = fit_calibrator(
        _scripts(parts.train, llm, probe),
        scheme,
        llm_model="run" if llm else None,
        ablations=False,
        exclude=exclude,
        decide=decide,
    )
    marks = [
        predict(calibrator, scheme, i.essay, llm[i.id] if llm else None, probe[i.id] if probe else None)
        for i in parts.test
    ]
    return marks, calibrator


def exemplar_split(exemplars: Sequence[EvalItem], items: Sequence[EvalItem], *, test: int, seed: int) -> Split:
    """A teacher's marked scripts as the training split, and up to ``test`` random essays of ``items``.

    Refused when an exemplar is also a test essay (the same id or the same text): no script may be
    scored by a calibrator that saw it.
    """
    texts = {" ".join(e.essay.split()) for e in exemplars}
    ids = {e.id for e in exemplars}
    shared = [i.id for i in items if i.id in ids or " ".join(i.essay.split()) in texts]
    if shared:
        raise ValueError(f"{len(shared)} test essay(s) are also marked scripts (first: {shared[0]}); remove them")
    pool = list(items)
    random.Random(seed).shuffle(pool)
    return Split(train=list(exemplars), test=sorted(pool[:test], key=lambda i: i.id), sampling="random")


def evaluate(
    dataset: Dataset,
    *,
    train: int,
    test: int,
    seed: int = 0,
    sampling: Sampling = "random",
    llm: dict[str, dict[str, int]] | None = None,
    ablations: bool = True,
    probe: Probes | None = None,
    exemplars: Sequence[EvalItem] | None = None,
) -> dict[str, Any]:
    """Every figure for one training size: per objective (and total) human–human, word count, model, calibrated.

    "calibrated" is the calibrator's prediction for every objective (what the full calibrator
    achieves, chosen or not); "delivered" is what draftmark returns after its decision: the
    delivered fitted candidate (calibrator or counted length), or the model's marks where it chose
    them. "word_count" is the sceptic's regression on log word count, rounded and clipped. With ``exemplars`` (a
    teacher's marked scripts) the calibrator is fitted on them and ``train`` is ignored; the test
    essays are drawn from the dataset.
    """
    if exemplars is None:
        parts = split(dataset.items, train=train, test=test, seed=seed, sampling=sampling)
    else:
        parts = exemplar_split(exemplars, dataset.items, test=test, seed=seed)
    scheme = dataset.scheme_for(parts.test[0])
    if exemplars is not None and any(e.scheme_id != scheme.id for e in exemplars):
        raise ValueError(f"every marked script must be for the test essays' scheme ({scheme.id})")
    usable = llm if llm and all(i.id in llm for i in [*parts.train, *parts.test]) else None
    probed = probe if probe and all(i.id in probe for i in [*parts.train, *parts.test]) else None
    # The product's fit gives what it delivers and says what it decided; the calibrator is fitted
    # again without the decision so that it is reported even where the product did not choose it.
    delivered_fits, selection = _predictions(parts, scheme, usable, exclude=frozenset(), probe=probed)
    predicted, _ = _predictions(parts, scheme, usable, exclude=frozenset(), probe=probed, decide=False)
    word_count = {
        ao.id: word_count_marks(
            [i.essay for i in parts.train],
            [i.human[ao.id] for i in parts.train],
            [i.essay for i in parts.test],
            list(range(ao.min_marks, ao.max_marks + 1)),
        )
        for ao in scheme.objectives
    }
    used = {fit.ao_id: fit.used for fit in selection.objectives}
    systems: dict[str, list[dict[str, int]]] = {"calibrated": [], "delivered": [], "word_count": []}
    if any(i.human2 for i in parts.test):
        systems["human2"] = []
    if usable:
        systems["model"] = []
    if probed:
        systems["probe"] = []
    for index, item in enumerate(parts.test):
        own = usable[item.id] if usable else None
        fitted = delivered_fits[index]
        # What the product returns: the delivered fitted candidate, or the model's marks where it chose them.
        # (Without a model run, an objective it did not calibrate shows the fitted candidate regardless.)
        chosen = {k: v if used[k] or own is None else own[k] for k, v in fitted.items()}
        systems["calibrated"].append(with_total(predicted[index], scheme))
        systems["delivered"].append(with_total(chosen, scheme))
        systems["word_count"].append(with_total({k: v[index] for k, v in word_count.items()}, scheme))
        if "human2" in systems:
            systems["human2"].append(with_total(item.human2 or item.human, scheme))
        if own is not None:
            systems["model"].append(with_total(own, scheme))
        if probed:
            systems["probe"].append(with_total(_rounded(probed[item.id], scheme), scheme))
    humans = [with_total(i.human, scheme) for i in parts.test]
    length = [math.log1p(len(words(i.essay))) for i in parts.test]
    figures: dict[str, Any] = {}
    for key, labels in mark_scales(scheme).items():
        h = [m[key] for m in humans]
        figures[key] = {name: _figures(h, [m[key] for m in marks], labels, length) for name, marks in systems.items()}
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "scheme": scheme.ref,
        "train": len(parts.train),
        "test": len(parts.test),
        "sampling": sampling,
        "seed": seed,
        "calibrator": selection.version,
        "signals": _signal_label(usable is not None, probed is not None),
        "figures": figures,
        "selection": {
            fit.ao_id: {
                "used": fit.used,
                "delivered": fit.cv.delivered,
                "reason": fit.reason,
                "cv": fit.cv.model_dump(),
            }
            for fit in selection.objectives
        },
    }
    if ablations:
        result["ablation"] = _ablation(parts, scheme, usable, seed, probed)
    return result


def _signal_label(marks: bool, probe: bool) -> str:
    parts = ["text"] + (["model marks"] if marks else []) + (["model next-token probabilities"] if probe else [])
    return " + ".join(parts) if len(parts) > 1 else "text only (no model run given)"


def _rounded(expected: dict[str, float], scheme: MarkScheme) -> dict[str, int]:
    """The probe's expected mark rounded onto each objective's scale (the probe alone)."""
    return {ao.id: min(ao.max_marks, max(ao.min_marks, round(expected[ao.id]))) for ao in scheme.objectives}


def _ablation(
    parts: Split,
    scheme: MarkScheme,
    llm: dict[str, dict[str, int]] | None,
    seed: int,
    probe: Probes | None = None,
) -> dict[str, dict[str, float | None]]:
    """Test QWK of the calibrated predictions without each signal group, per objective."""
    out: dict[str, dict[str, float | None]] = {}
    for group in FEATURE_GROUPS:
        if (group == "model" and not llm) or (group == "probe" and not probe):
            continue
        predicted, _ = _predictions(parts, scheme, llm, exclude=frozenset({group}), probe=probe, decide=False)
        out[group] = {
            ao.id: agreement(
                [i.human[ao.id] for i in parts.test],
                [p[ao.id] for p in predicted],
                list(range(ao.min_marks, ao.max_marks + 1)),
            ).qwk
            for ao in scheme.objectives
        }
    return out
