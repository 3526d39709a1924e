"""Agreement metrics between two sets of integer marks (scikit-learn / scipy where they have them)."""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import mean, pstdev

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from schemas.scheme import MarkScheme


@dataclass(frozen=True)
class Agreement:
    """How far ``b`` (e.g. the machine) agrees with ``a`` (e.g. a human) on one scale."""

    n: int
    qwk: float | None
    exact: float
    adjacent: float
    mae: float
    pearson: float | None
    spearman: float | None
    smd: float | None
    mean_a: float
    mean_b: float
    labels: list[int]
    confusion: list[list[int]]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


TOTAL = "total"


def mark_scales(scheme: MarkScheme) -> dict[str, list[int]]:
    """Every scale agreement is measured on: each objective's marks, and the total when there are several."""
    scales = {ao.id: list(range(ao.min_marks, ao.max_marks + 1)) for ao in scheme.objectives}
    if len(scheme.objectives) > 1:
        low = sum(ao.min_marks for ao in scheme.objectives)
        scales[TOTAL] = list(range(low, scheme.total_marks + 1))
    return scales


def with_total(marks: dict[str, int], scheme: MarkScheme) -> dict[str, int]:
    """``marks`` with the total added under ``TOTAL`` when the scheme has several objectives."""
    return marks | ({TOTAL: sum(marks.values())} if len(scheme.objectives) > 1 else {})


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def quadratic_weighted_kappa(a: list[int], b: list[int], labels: list[int]) -> float | None:
    """QWK over the full label range; None when undefined (e.g. both raters constant)."""
    if len(a) < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # undefined is returned as None below
        value = cohen_kappa_score(a, b, labels=labels, weights="quadratic")
    return _finite(float(value))


def standardised_mean_difference(human: list[int], machine: list[int]) -> float | None:
    """(mean machine - mean human) / pooled SD, the SD pooled as sqrt((var_h + var_m) / 2)."""
    pooled = math.sqrt((pstdev(human) ** 2 + pstdev(machine) ** 2) / 2) if len(human) > 1 else 0.0
    if pooled == 0:
        return None
    return (mean(machine) - mean(human)) / pooled


def _correlation(fn: object, a: list[int], b: list[int]) -> float | None:
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    result = fn(a, b)  # type: ignore[operator]
    return _finite(float(result[0]))


def agreement(a: list[int], b: list[int], labels: list[int]) -> Agreement:
    """All agreement figures for paired marks ``a`` (reference) and ``b`` (compared)."""
    if len(a) != len(b):
        raise ValueError("paired lists must have equal length")
    if not a:
        return Agreement(0, None, 0.0, 0.0, 0.0, None, None, None, 0.0, 0.0, labels, [])
    diffs = [abs(x - y) for x, y in zip(a, b, strict=True)]
    return Agreement(
        n=len(a),
        qwk=quadratic_weighted_kappa(a, b, labels),
        exact=sum(d == 0 for d in diffs) / len(a),
        adjacent=sum(d <= 1 for d in diffs) / len(a),
        mae=sum(diffs) / len(a),
        pearson=_correlation(pearsonr, a, b),
        spearman=_correlation(spearmanr, a, b),
        smd=standardised_mean_difference(a, b),
        mean_a=mean(a),
        mean_b=mean(b),
        labels=labels,
        confusion=confusion_matrix(a, b, labels=labels).tolist(),
    )


@dataclass(frozen=True)
class Stability:
    """Test-retest figures over repeated markings of the same essays."""

    essays: int
    repeats: int
    exact_all_repeats: float
    mean_std: float
    needs_review_share: float


def stability(marks_by_essay: dict[str, list[int]], flagged_by_essay: dict[str, list[bool]]) -> Stability:
    """Exact agreement across repeats, mean per-essay SD, share of markings flagged needs_review."""
    groups = [m for m in marks_by_essay.values() if len(m) > 1]
    flags = [f for group in flagged_by_essay.values() for f in group]
    if not groups:
        return Stability(0, 0, 0.0, 0.0, 0.0)
    return Stability(
        essays=len(groups),
        repeats=max(len(g) for g in groups),
        exact_all_repeats=sum(len(set(g)) == 1 for g in groups) / len(groups),
        mean_std=mean(pstdev(g) for g in groups),
        needs_review_share=sum(flags) / len(flags) if flags else 0.0,
    )


def partial_spearman(human: Sequence[float], machine: Sequence[float], length: Sequence[float]) -> float | None:
    """Spearman correlation of ``machine`` with ``human`` with ``length`` partialled out.

    "Does it see anything beyond length?": near 0 means the machine's agreement is all length.
    """
    if len(human) < 4 or len(set(human)) < 2 or len(set(machine)) < 2 or len(set(length)) < 2:
        return None
    r_hm = float(spearmanr(human, machine)[0])
    r_hl = float(spearmanr(human, length)[0])
    r_ml = float(spearmanr(machine, length)[0])
    denominator = math.sqrt(max(0.0, (1 - r_hl**2) * (1 - r_ml**2)))
    if denominator < 1e-9:
        return None
    return _finite((r_hm - r_hl * r_ml) / denominator)


@dataclass(frozen=True)
class PairedDifference:
    """QWK of system B minus system A on the same items, with a paired bootstrap 95% interval."""

    n: int
    difference: float
    low: float
    high: float


def paired_qwk_difference(
    human: list[int], a: list[int], b: list[int], labels: list[int], *, resamples: int = 2000, seed: int = 0
) -> PairedDifference | None:
    """Resample items (the same draw for both systems) and read the 2.5th and 97.5th percentiles.

    Says whether a change between two runs on the same essays is larger than the sampling noise of
    that many essays; None when either QWK is undefined on the full set.
    """
    base_a, base_b = quadratic_weighted_kappa(human, a, labels), quadratic_weighted_kappa(human, b, labels)
    if base_a is None or base_b is None:
        return None
    rng = random.Random(seed)
    n = len(human)
    diffs: list[float] = []
    for _ in range(resamples):
        pick = [rng.randrange(n) for _ in range(n)]
        qa = quadratic_weighted_kappa([human[i] for i in pick], [a[i] for i in pick], labels)
        qb = quadratic_weighted_kappa([human[i] for i in pick], [b[i] for i in pick], labels)
        if qa is not None and qb is not None:
            diffs.append(qb - qa)
    if not diffs:
        return None
    diffs.sort()
    return PairedDifference(
        n=n,
        difference=base_b - base_a,
        low=diffs[int(0.025 * (len(diffs) - 1))],
        high=diffs[int(0.975 * (len(diffs) - 1))],
    )
