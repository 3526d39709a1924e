"""Fit a calibrator on a teacher's marked scripts, and decide what marks each objective.

Per objective: a ridge regression on a few standardised signals (text statistics of the counted
text, similarity to the exemplars, and the model's own marks when every script has them), chosen
by forward selection on subsamples of the training data and averaged over them, its penalty
chosen by leave-one-out, and cut-points that give the training scripts' mark distribution, chosen
on out-of-bag scores; marks never leave the range the training scripts were given.

What is delivered is decided by repeated K-fold cross-validation (``REPEATS`` × 5 folds, fixed
seeds) in which no script is ever scored by a model that saw it, comparing on the same folds:
the calibrator, the plain candidate (the counted text's length alone) and the model's own marks.
The calibrator must beat the plain candidate, and the model's marks the fitted one, by
``SELECTION_MARGIN``. The sceptic's word count (least squares on log word count, rounded and
clipped) is scored on the same folds and reported beside them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from schemas.calibration import Calibrator, CrossValidated, ObjectiveFit, mark_at
from schemas.scheme import MarkScheme
from service.calibration.similarity import similarity_scores
from service.calibration.text import (
    TEXT_FEATURES,
    essay_signals,
    key_vocabularies_without_each,
    key_vocabulary,
    topic_vocabulary,
    words,
)
from service.reading.coverage import coverage_shares

MIN_SCRIPTS = 10
MODEL_SIGNAL_MARGIN = 0.02
"""The model's marks are kept as a signal only when they add more than this to cross-validated QWK."""
MIN_GAIN = 0.005
"""Forward selection adds a signal only when it raises inner cross-validated QWK by more than this."""
BAGS = 10
"""Subsample fits averaged when signals are selected (``_bagged``): two repeats of a 5-fold split."""
ALPHAS = tuple(float(a) for a in np.logspace(-2, 3, 11))
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "length": ("log_words", "log_unique_words"),
    "structure": ("paragraphs", "mean_sentence_words"),
    "vocabulary": ("mean_word_length", "long_word_share", "mattr", "mean_word_zipf"),
    "question": ("question_coverage",),
    "content": ("indicative_coverage",),
    "spelling": ("misspelled_share",),
    "mechanics": ("comma_rate", "capitalisation_errors"),
    "exemplars": ("exemplar_similarity",),
    "model": ("llm_mark",),
    "probe": ("llm_expected",),
}
WORD_COUNT = ("raw_log_words",)
Candidate = Literal["calibrator", "length", "model"]
LENGTH = ("log_words",)
"""The counted text's length alone: the plain candidate (padding, repeats and the copied question left out)."""
REPEATS = 3
"""Repeats of the 5-fold split behind the decision (fixed seeds 0, 1, 2): one split's luck no longer decides it."""
SELECTION_MARGIN = 0.02
"""The calibrator (or the model's own marks) is delivered only when it beats the plainer candidate by more
than this, averaged over the repeats; otherwise the plainer one is."""
REACH = 2
"""A rounded prediction may fall this many marks outside the marked scripts' range (and is then flagged for
checking); beyond that it is held at the edge. Clamping to the range itself cost ~0.07 QWK on ASAP 1 dev splits
(``benchmarks/calibration_design.py range``)."""
ROUND_CALIBRATOR = False
"""The calibrator's cut-point rule: distribution matching (False) or rounding (True); see ``_fit_linear``
(compared by ``benchmarks/calibration_design.py rounding``)."""
FLOOR = 0.4
"""Below this cross-validated QWK nothing is called trustworthy: the marks carry a review reason saying so."""
LEAVE_ONE_OUT = False
"""Development switch: count each marked script with the topic vocabulary of the *other* scripts, as an unseen
essay is counted. Counted with its own words a script keeps ~99% of its words while unseen essays keep 86%
(ASAP 7, 10 scripts, seed 100), yet counting without them made the 10-script length line worse, not better
(ASAP 7 seed 100: QWK 0.37 -> -0.01; ASAP 1 seeds 100-102: 0.715/0.594/0.589 -> 0.700/0.576/0.546): the
others' thin vocabulary throws away honest sentences of the scripts the line is fitted on
(``benchmarks/calibration_design.py smalln``). Not kept."""
DECISION: Literal["margin", "one_se", "min20"] = "margin"
"""Development switch (``benchmarks/calibration_design.py smalln``): the QWK margin alone, the margin and a
one-standard-error paired test on per-script squared error, or the margin and at least 20 scripts."""


@dataclass(frozen=True)
class Script:
    """One marked script as the calibrator sees it."""

    essay: str
    marks: dict[str, int]
    llm_marks: dict[str, int] | None = None
    llm_expected: dict[str, float] | None = None


@dataclass
class _Prepared:
    counted: list[str]
    base: list[dict[str, float]]
    vocabulary: set[str]
    llm: bool
    expected: bool
    coverage: list[dict[str, float]]
    """Per script, each objective's share of indicative points addressed (empty when the scheme has none)."""


def prepare(scripts: Sequence[Script], scheme: MarkScheme) -> _Prepared:
    """Counted texts and text signals for every script.

    The topic vocabulary stored for new essays comes from all the scripts; each script itself is
    counted with the vocabulary of the others (``LEAVE_ONE_OUT``), as a new essay will be.
    """
    extra = topic_vocabulary([c for ao in scheme.objectives for c in ao.indicative_content], min_documents=1)
    texts = [s.essay for s in scripts]
    vocabulary = key_vocabulary(texts) | extra
    own = [v | extra for v in key_vocabularies_without_each(texts)] if LEAVE_ONE_OUT else [vocabulary] * len(texts)
    counted, base = [], []
    for script, counting in zip(scripts, own, strict=True):
        c, signals = essay_signals(script.essay, scheme.question, counting)
        counted.append(c.text)
        base.append(signals)
    llm = bool(scripts) and all(s.llm_marks is not None for s in scripts)
    expected = bool(scripts) and all(s.llm_expected is not None for s in scripts)
    coverage = [coverage_shares(text, scheme) for text in counted] if extra else []
    return _Prepared(counted, base, vocabulary, llm, expected, coverage)


def _qwk(a: Sequence[int], b: Sequence[int], labels: Sequence[int]) -> float | None:
    """Quadratic weighted kappa (as scikit-learn's ``cohen_kappa_score(weights="quadratic")``, in numpy)."""
    if len(set(a)) < 2 and len(set(b)) < 2:
        return None
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    observed = np.zeros((k, k))
    np.add.at(observed, ([index[v] for v in a], [index[v] for v in b]), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    weights = (np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2
    denominator = float((weights * expected).sum())
    if denominator == 0:
        return None
    value = 1.0 - float((weights * observed).sum()) / denominator
    return value if math.isfinite(value) else None


def _features_for(prepared: _Prepared, objective_features: tuple[str, ...]) -> tuple[str, ...]:
    chosen = [f for f in objective_features if f in TEXT_FEATURES or f in WORD_COUNT or f == "exemplar_similarity"]
    if prepared.coverage and "indicative_coverage" in objective_features:
        chosen.append("indicative_coverage")
    if prepared.llm and "llm_mark" in objective_features:
        chosen.append("llm_mark")
    if prepared.expected and "llm_expected" in objective_features:
        chosen.append("llm_expected")
    return tuple(chosen)


def _matrix(
    rows: Sequence[int],
    reference: Sequence[int],
    features: tuple[str, ...],
    prepared: _Prepared,
    scripts: Sequence[Script],
    ao_id: str,
    *,
    exclude_self: bool,
) -> NDArray[np.float64]:
    columns: list[list[float]] = []
    for name in features:
        if name == "exemplar_similarity":
            columns.append(
                similarity_scores(
                    [prepared.counted[i] for i in rows],
                    [prepared.counted[j] for j in reference],
                    [scripts[j].marks[ao_id] for j in reference],
                    same=[list(reference).index(i) if exclude_self and i in reference else -1 for i in rows],
                )
            )
        elif name == "indicative_coverage":
            columns.append([prepared.coverage[i][ao_id] for i in rows])
        elif name == "llm_mark":
            columns.append([float((scripts[i].llm_marks or {})[ao_id]) for i in rows])
        elif name == "llm_expected":
            columns.append([float((scripts[i].llm_expected or {})[ao_id]) for i in rows])
        else:
            columns.append([prepared.base[i][name] for i in rows])
    return np.array(columns, dtype=float).T.reshape(len(rows), len(features))


@dataclass(frozen=True)
class _Linear:
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    coef: NDArray[np.float64]
    intercept: float
    alpha: float
    cutpoints: list[float]
    seen: tuple[int, int]
    """The lowest and highest mark among the training scripts."""
    reach: int
    """How far outside ``seen`` a prediction may go: a line may extrapolate a little, matched cut-points not at all."""

    def score(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(((x - self.mean) / self.scale) @ self.coef + self.intercept, dtype=float)


def _cutpoints(scores: NDArray[np.float64], y: NDArray[np.int64], labels: Sequence[int]) -> list[float]:
    """Thresholds that give ``scores`` the mark distribution of ``y`` (distribution matching)."""
    shares = np.array([np.mean(y <= label) for label in labels[:-1]])
    return [float(c) for c in np.quantile(scores, shares)] if len(shares) else []


@functools.lru_cache(maxsize=256)
def _folds(n: int, seed: int) -> tuple[tuple[NDArray[np.intp], NDArray[np.intp]], ...]:
    """scikit-learn's ``KFold(min(5, n), shuffle=True, random_state=seed)`` splits, computed once per size and seed."""
    from sklearn.model_selection import KFold

    return tuple(KFold(min(5, n), shuffle=True, random_state=seed).split(np.zeros(n)))


def _ridge(z: NDArray[np.float64], y: NDArray[np.float64], alpha: float) -> tuple[NDArray[np.float64], float]:
    """Ridge regression with an unpenalised intercept (scikit-learn's ``Ridge``): coefficients, intercept."""
    mean_z = z.mean(axis=0)
    mean_y = float(y.mean())
    zc = z - mean_z
    coef = np.linalg.solve(zc.T @ zc + alpha * np.eye(z.shape[1]), zc.T @ (y - mean_y))
    return coef, mean_y - float(mean_z @ coef)


def _loo_alpha(z: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """The penalty in ``ALPHAS`` with the least leave-one-out squared error (exact, as ``RidgeCV``)."""
    n = len(y)
    zc = z - z.mean(axis=0)
    u, s, _ = np.linalg.svd(zc, full_matrices=False)
    uy = u.T @ (y - y.mean())
    best, chosen = math.inf, ALPHAS[0]
    for alpha in ALPHAS:
        shrink = s**2 / (s**2 + alpha)
        leverage = (u**2) @ shrink + 1.0 / n
        residual = (y - (u @ (shrink * uy) + y.mean())) / (1.0 - leverage)
        error = float(np.mean(residual**2))
        if error < best:
            best, chosen = error, alpha
    return chosen


def _inner_scores(z: NDArray[np.float64], y: NDArray[np.int64], seed: int) -> tuple[NDArray[np.float64], float]:
    """Inner cross-validated linear scores of the training scripts (no script scores itself), and the penalty.

    The penalty by leave-one-out on all of them, the scores by 5-fold cross-validation; the same
    figures as scikit-learn's ``RidgeCV`` and ``cross_val_predict(Ridge)``, in numpy, because
    forward selection asks for them thousands of times per fit.
    """
    target = y.astype(float)
    alpha = _loo_alpha(z, target)
    scores = np.zeros(len(y))
    for train, test in _folds(len(y), seed):
        coef, intercept = _ridge(z[train], target[train], alpha)
        scores[test] = z[test] @ coef + intercept
    return scores, alpha


def _inner_qwk(z: NDArray[np.float64], y: NDArray[np.int64], labels: Sequence[int], seed: int) -> float:
    scores, _ = _inner_scores(z, y, seed)
    cuts = _cutpoints(scores, y, labels)
    # The number of cut-points strictly below each score (they ascend): the index of its mark.
    predicted = [labels[int(i)] for i in np.searchsorted(np.asarray(cuts), scores, side="left")]
    return _qwk(list(y), predicted, labels) or 0.0


def _forward_selection(
    z: NDArray[np.float64], y: NDArray[np.int64], labels: Sequence[int], seed: int, start: Sequence[int] = ()
) -> list[int]:
    """Signals added one at a time while they raise inner cross-validated QWK (few, strong signals).

    ``start`` is kept from the outset (the length of the counted text: calibration is word count
    plus whatever earns its place on top).
    """
    chosen: list[int] = list(start)
    best = _inner_qwk(z[:, chosen], y, labels, seed) if chosen else -1.0
    remaining = [j for j in range(z.shape[1]) if j not in chosen]
    while remaining:
        score, pick = max((_inner_qwk(z[:, [*chosen, j]], y, labels, seed), j) for j in remaining)
        if score <= best + MIN_GAIN:
            break
        chosen.append(pick)
        remaining.remove(pick)
        best = score
    return sorted(chosen)


def _bagged(
    z: NDArray[np.float64], y: NDArray[np.int64], labels: Sequence[int], seed: int, start: Sequence[int]
) -> tuple[NDArray[np.float64], float, float, NDArray[np.float64]]:
    """Forward selection and ridge on each of ``BAGS`` subsamples, averaged; and out-of-bag scores.

    The subsamples leave out one fold of a 5-fold split, repeated ``BAGS // 5`` times, so every
    script is left out of ``BAGS // 5`` of them and scored only by those. Averaging over
    subsamples steadies what one selection on a few dozen scripts gets wrong by chance (a signal
    picked for a lucky split); measured on ASAP 1, 2 and 7 (docs/CALIBRATION.md).
    """
    from sklearn.model_selection import RepeatedKFold

    target = y.astype(float)
    n, width = z.shape
    coefs, intercepts, alphas = [], [], []
    out_of_bag, times = np.zeros(n), np.zeros(n)
    splits = RepeatedKFold(n_splits=5, n_repeats=BAGS // 5, random_state=seed).split(z)
    for bag, (rows, left_out) in enumerate(splits):
        columns = _forward_selection(z[rows], y[rows], labels, seed + bag, start)
        chosen = z[rows][:, columns]
        alpha = _loo_alpha(chosen, target[rows])
        coef, intercept = _ridge(chosen, target[rows], alpha)
        full = np.zeros(width)
        full[columns] = coef
        coefs.append(full)
        intercepts.append(intercept)
        alphas.append(alpha)
        out_of_bag[left_out] += z[left_out] @ full + intercept
        times[left_out] += 1
    return np.mean(coefs, axis=0), float(np.mean(intercepts)), float(np.median(alphas)), out_of_bag / times


def _fit_linear(
    x: NDArray[np.float64],
    y: NDArray[np.int64],
    labels: Sequence[int],
    seed: int,
    *,
    select: bool = False,
    start: Sequence[int] = (),
    rounded: bool = False,
) -> _Linear:
    """Ridge on standardised signals (penalty by leave-one-out), cut-points on inner cross-validated scores.

    With ``select`` (and more than one signal), signals are chosen by forward selection inside
    subsamples of these training scripts and the subsample fits are averaged (``_bagged``); a
    signal never chosen gets coefficient 0, and the cut-points come from out-of-bag scores.
    With ``rounded`` the score, a predicted mark, is rounded: the cut-points sit half-way between
    marks, and one signal is fitted by plain least squares (the sceptic's rule, which beats
    distribution matching for one signal on few scripts: docs/CALIBRATION.md).
    """
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    if rounded and z.shape[1] == 1:
        design = np.column_stack([np.ones(len(y)), z])
        solution, *_ = np.linalg.lstsq(design, y.astype(float), rcond=None)
        coef, intercept, alpha = solution[1:], float(solution[0]), 0.0
    elif select and z.shape[1] > 1 and len(y) >= 5:
        coef, intercept, alpha, inner = _bagged(z, y, labels, seed, start)
    else:
        inner, alpha = _inner_scores(z, y, seed)  # the penalty by leave-one-out, once
        coef, intercept = _ridge(z, y.astype(float), alpha)
    cutpoints = [label + 0.5 for label in labels[:-1]] if rounded else _cutpoints(inner, y, labels)
    return _Linear(
        mean=mean,
        scale=scale,
        coef=coef,
        intercept=intercept,
        alpha=alpha,
        cutpoints=cutpoints,
        seen=(int(y.min()), int(y.max())),
        reach=REACH if rounded else 0,
    )


def _rounded(features: tuple[str, ...]) -> bool:
    """Which cut-point rule a candidate uses: rounding for the plain length model, distribution matching else."""
    return features == LENGTH or ROUND_CALIBRATOR


def _anchor(features: tuple[str, ...]) -> list[int]:
    """Where forward selection starts: the counted text's length, when it is among the signals."""
    return [features.index("log_words")] if "log_words" in features else []


def _predict(model: _Linear, x: NDArray[np.float64], labels: Sequence[int]) -> list[int]:
    seen = list(model.seen)
    return [mark_at(float(s), list(labels), model.cutpoints, seen, model.reach) for s in model.score(x)]


def _cross_validate(
    features: tuple[str, ...],
    prepared: _Prepared,
    scripts: Sequence[Script],
    ao_id: str,
    labels: Sequence[int],
    seed: int,
) -> list[int]:
    """Out-of-fold predictions: each script is scored by a model fitted without it."""
    n = len(scripts)
    y = np.array([s.marks[ao_id] for s in scripts])
    predictions = [0] * n
    for train, test in _folds(n, seed):
        train_rows, test_rows = list(train), list(test)
        x_train = _matrix(train_rows, train_rows, features, prepared, scripts, ao_id, exclude_self=True)
        model = _fit_linear(
            x_train,
            y[train],
            labels,
            seed,
            select=len(features) > 1,
            start=_anchor(features),
            rounded=_rounded(features),
        )
        x_test = _matrix(test_rows, train_rows, features, prepared, scripts, ao_id, exclude_self=False)
        for row, mark in zip(test_rows, _predict(model, x_test, labels), strict=True):
            predictions[row] = mark
    return predictions


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if len(present) == len(values) and present else None


def _paired_gain(better: Sequence[float | None], than: Sequence[float | None]) -> float | None:
    """Mean of the per-repeat differences (the same folds for both), or None when either is unmeasurable."""
    pairs = [(b, t) for b, t in zip(better, than, strict=True) if b is not None and t is not None]
    if not pairs or len(pairs) < len(better):
        return None
    return sum(b - t for b, t in pairs) / len(pairs)


def _share_within(y: Sequence[int], repeats: Sequence[Sequence[int]], marks: int) -> float | None:
    """The share of scripts whose out-of-fold mark is within ``marks`` of the teacher's, over the repeats."""
    if not repeats:
        return None
    return sum(sum(abs(p - t) <= marks for p, t in zip(r, y, strict=True)) for r in repeats) / (len(y) * len(repeats))


@dataclass(frozen=True)
class _Decision:
    delivered: Candidate | None
    used: bool
    reason: str


def _paired_se_gain(y: Sequence[int], better: Sequence[Sequence[int]], than: Sequence[Sequence[int]]) -> float:
    """How many standard errors ``better`` beats ``than`` by, on per-script squared error averaged over repeats."""
    if not better or not than:
        return 0.0
    t = np.array(y, dtype=float)
    loss_b = ((np.array(better, dtype=float) - t) ** 2).mean(axis=0)
    loss_t = ((np.array(than, dtype=float) - t) ** 2).mean(axis=0)
    d = loss_t - loss_b
    if len(d) < 2:
        return 0.0
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    mean = float(d.mean())
    if se == 0.0:
        return math.inf if mean > 0 else 0.0
    return mean / se


def _decide(
    calibrator: Sequence[float | None],
    length: Sequence[float | None],
    model: float | None,
    n_scripts: int,
    se_gain: float = math.inf,
) -> _Decision:
    """What marks the objective, from paired repeated cross-validation.

    The counted-length model is the default fitted candidate; the calibrator replaces it only when
    it is better by more than ``SELECTION_MARGIN`` on the same folds. The model's own marks are
    delivered only when they beat the fitted candidate by the same margin: a teacher never gets the
    model's raw marks when a fitted candidate beats them.
    """
    gain = _paired_gain(calibrator, length)
    if _mean(length) is None and _mean(calibrator) is None:
        return _Decision(None, False, "the marked scripts do not vary enough to measure agreement")
    name: Candidate
    clear = gain is not None and gain > SELECTION_MARGIN
    if DECISION == "one_se":
        clear = clear and se_gain > 1.0
    elif DECISION == "min20":
        clear = clear and n_scripts >= 20
    if _mean(length) is None or clear:
        name, best, text = "calibrator", _mean(calibrator), "the calibrator"
    else:
        name, best, text = "length", _mean(length), "a regression on the counted text's length"
    assert best is not None
    if model is not None and model > best + SELECTION_MARGIN:
        return _Decision(
            "model",
            False,
            f"the model's own marks ({_fmt(model)}) beat {text} ({_fmt(best)}) on {n_scripts} marked scripts; "
            "they are kept",
        )
    why = f"{text} agrees best with your marks in cross-validation ({_fmt(best)})"
    if best < FLOOR:
        why += f", but agreement below {FLOOR:.1f} is weak: treat these marks as a rough guide"
    return _Decision(name, True, why)


def fit_objective(
    prepared: _Prepared,
    scripts: Sequence[Script],
    scheme: MarkScheme,
    ao_id: str,
    *,
    seed: int = 0,
    ablations: bool = True,
    exclude: frozenset[str] = frozenset(),
    decide: bool = True,
) -> ObjectiveFit:
    """Cross-validate, decide and fit the final model for one objective on every script.

    ``exclude`` names signal groups (keys of ``FEATURE_GROUPS``) left out, for ablation studies.
    ``decide=False`` (evals only) skips cross-validation and the decision and fits the calibrator,
    so an eval can report the calibrator beside what the product delivers.
    """
    ao = scheme.objective(ao_id)
    labels = list(range(ao.min_marks, ao.max_marks + 1))
    y = [s.marks[ao_id] for s in scripts]
    seeds = [seed + r for r in range(REPEATS)] if decide else []

    predictions: dict[str, list[list[int]]] = {}

    def repeated(features: tuple[str, ...], name: str) -> list[float | None]:
        predictions[name] = [_cross_validate(features, prepared, scripts, ao_id, labels, k) for k in seeds]
        return [_qwk(y, p, labels) for p in predictions[name]]

    all_features = tuple(f for group, names in FEATURE_GROUPS.items() if group not in exclude for f in names)
    features = _features_for(prepared, all_features)
    calibrated = repeated(features, "calibrator")
    length = repeated(LENGTH, "length") if "length" not in exclude else [None] * len(seeds)
    raw_words = [len(words(script.essay)) for script in scripts]
    predictions["word_count"] = [_sceptic_cross_validated(raw_words, y, labels, k) for k in seeds]
    word_count = [_qwk(y, p, labels) for p in predictions["word_count"]]
    llm = None
    if prepared.llm:
        predictions["model"] = [[(s.llm_marks or {})[ao_id] for s in scripts]]
        llm = _qwk(y, predictions["model"][0], labels)
    ablation: dict[str, float | None] = {}
    model_features = set(FEATURE_GROUPS.get("model", ()))
    if decide and model_features & set(features):
        # The model's marks must earn their place: without them the levels can be decided before
        # the model writes, so the model is asked once, for feedback that argues for that level.
        text_only = tuple(f for f in features if f not in model_features)
        without = repeated(text_only, "text_only")
        ablation["model"] = _mean(without)
        gain = _paired_gain(calibrated, without)
        if _mean(calibrated) is None or (gain is not None and gain <= MODEL_SIGNAL_MARGIN):
            features, calibrated = text_only, without
            predictions["calibrator"] = predictions["text_only"]
    if ablations:
        for group, names in FEATURE_GROUPS.items():
            kept = tuple(f for f in features if f not in names)
            if kept != features and kept:
                ablation[group] = _qwk(y, _cross_validate(kept, prepared, scripts, ao_id, labels, seed), labels)
    decision = (
        _decide(
            calibrated,
            length,
            llm,
            len(scripts),
            _paired_se_gain(y, predictions["calibrator"], predictions.get("length", []))
            if DECISION == "one_se"
            else math.inf,
        )
        if decide
        else _Decision("calibrator", True, "fitted without a decision (eval)")
    )
    delivered_qwk = {"calibrator": _mean(calibrated), "length": _mean(length), "model": llm}.get(
        decision.delivered or ""
    )
    delivered_predictions = predictions.get(decision.delivered or "", [])
    cv = CrossValidated(
        delivered_exact=_share_within(y, delivered_predictions, 0),
        delivered_within_one=_share_within(y, delivered_predictions, 1),
        word_count_within_one=_share_within(y, predictions["word_count"], 1),
        n_scripts=len(scripts),
        folds=min(5, len(scripts)),
        repeats=max(1, len(seeds)),
        calibrated_qwk=_mean(calibrated),
        word_count_qwk=_mean(word_count),
        length_qwk=_mean(length),
        llm_qwk=llm,
        ablation=ablation,
        delivered=decision.delivered,
        delivered_qwk=delivered_qwk,
    )
    used, reason = decision.used, decision.reason
    if decision.delivered == "length":
        features = LENGTH
    rows = list(range(len(scripts)))
    x = _matrix(rows, rows, features, prepared, scripts, ao_id, exclude_self=True)
    model = _fit_linear(
        x, np.array(y), labels, seed, select=len(features) > 1, start=_anchor(features), rounded=_rounded(features)
    )
    return ObjectiveFit(
        ao_id=ao_id,
        features=list(features),
        mean=[float(v) for v in model.mean],
        scale=[float(v) for v in model.scale],
        coef=[float(v) for v in model.coef],
        intercept=model.intercept,
        alpha=model.alpha,
        labels=labels,
        cutpoints=model.cutpoints,
        seen=list(model.seen),
        reach=model.reach,
        cv=cv,
        used=used,
        reason=reason,
    )


class NotEnoughScriptsError(ValueError):
    """Fewer marked scripts than calibration needs."""


def fit_calibrator(
    scripts: Sequence[Script],
    scheme: MarkScheme,
    *,
    llm_model: str | None = None,
    seed: int = 0,
    ablations: bool = False,
    exclude: frozenset[str] = frozenset(),
    decide: bool = True,
) -> Calibrator:
    """A calibrator for ``scheme`` from ``scripts`` (at least ``MIN_SCRIPTS``), versioned by its content."""
    if len(scripts) < MIN_SCRIPTS:
        raise NotEnoughScriptsError(
            f"calibration needs at least {MIN_SCRIPTS} marked scripts for {scheme.ref}; there are {len(scripts)}"
        )
    prepared = prepare(scripts, scheme)
    fits = [
        fit_objective(prepared, scripts, scheme, ao.id, seed=seed, ablations=ablations, exclude=exclude, decide=decide)
        for ao in scheme.objectives
    ]
    body = {
        "scheme": scheme.ref,
        "fits": [f.model_dump(mode="json") for f in fits],
        "texts": hashlib.sha256("\x00".join(prepared.counted).encode()).hexdigest(),
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return Calibrator(
        version=f"cal-{digest[:12]}",
        scheme_id=scheme.id,
        scheme_version=scheme.version,
        fitted_at=datetime.now(UTC),
        n_scripts=len(scripts),
        llm_model=llm_model if prepared.llm else None,
        objectives=fits,
        exemplar_texts=prepared.counted,
        exemplar_marks={ao.id: [s.marks[ao.id] for s in scripts] for ao in scheme.objectives},
        topic_vocabulary=sorted(prepared.vocabulary),
    )


def word_count_marks(
    train_essays: Sequence[str], train_marks: Sequence[int], test_essays: Sequence[str], labels: Sequence[int]
) -> list[int]:
    """The sceptic's baseline on whole essays: ``sceptic_marks`` on their word counts."""
    return sceptic_marks(
        [len(words(e)) for e in train_essays], train_marks, [len(words(e)) for e in test_essays], labels
    )


def sceptic_marks(
    train_words: Sequence[float], train_marks: Sequence[int], test_words: Sequence[float], labels: Sequence[int]
) -> list[int]:
    """Exactly what a sceptic runs: least squares of the mark on log(1 + word count), rounded, clipped to the scale.

    (scikit-learn's ``LinearRegression`` gives the same line; numpy's least squares avoids the import.)
    """
    x = np.column_stack([np.ones(len(train_words)), np.log1p(np.asarray(train_words, dtype=float))])
    coef, *_ = np.linalg.lstsq(x, np.asarray(train_marks, dtype=float), rcond=None)
    predicted = coef[0] + coef[1] * np.log1p(np.asarray(test_words, dtype=float))
    return [int(min(labels[-1], max(labels[0], round(float(p))))) for p in predicted]


def _sceptic_cross_validated(
    counts: Sequence[float], marks: Sequence[int], labels: Sequence[int], seed: int
) -> list[int]:
    predictions = [0] * len(counts)
    for train, test in _folds(len(counts), seed):
        predicted = sceptic_marks(
            [counts[i] for i in train], [marks[i] for i in train], [counts[i] for i in test], labels
        )
        for row, mark in zip(test, predicted, strict=True):
            predictions[row] = mark
    return predictions


def word_count_cross_validated(counts: Sequence[int], marks: Sequence[int], labels: Sequence[int]) -> list[int]:
    """Out-of-fold sceptic's word-count predictions (5 folds): the baseline when there is no training split."""
    return _sceptic_cross_validated(counts, marks, labels, 0)
