"""Fit a calibrator on a teacher's marked scripts, choosing it only when it beats the baselines.

Per objective: a ridge regression on a few standardised signals (text statistics of the counted
text, similarity to the exemplars, and the model's own marks when every script has them), chosen
by forward selection on subsamples of the training data and averaged over them, its penalty
chosen by leave-one-out, and cut-points that give the training scripts' mark distribution, chosen
on out-of-bag scores. Agreement is estimated by an
outer K-fold cross-validation in which no script is ever scored by a model that saw it; the
word-count baseline (a regression on log word count with the same cut-point rule) and the model's
uncalibrated marks are scored on the same folds. The calibrator is used only if it beats both.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from schemas.calibration import Calibrator, CrossValidated, ObjectiveFit
from schemas.scheme import MarkScheme
from service.calibration.similarity import similarity_scores
from service.calibration.text import TEXT_FEATURES, essay_signals, topic_vocabulary, words

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
    "spelling": ("misspelled_share",),
    "mechanics": ("comma_rate", "capitalisation_errors"),
    "exemplars": ("exemplar_similarity",),
    "model": ("llm_mark",),
    "probe": ("llm_expected",),
}
WORD_COUNT = ("raw_log_words",)


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


def prepare(scripts: Sequence[Script], scheme: MarkScheme) -> _Prepared:
    """Counted texts and text signals for every script (the topic vocabulary comes from all of them)."""
    extra = [c for ao in scheme.objectives for c in ao.indicative_content]
    vocabulary = topic_vocabulary([s.essay for s in scripts]) | topic_vocabulary(extra, min_documents=1)
    counted, base = [], []
    for script in scripts:
        c, signals = essay_signals(script.essay, scheme.question, vocabulary)
        counted.append(c.text)
        base.append(signals)
    llm = bool(scripts) and all(s.llm_marks is not None for s in scripts)
    expected = bool(scripts) and all(s.llm_expected is not None for s in scripts)
    return _Prepared(counted, base, vocabulary, llm, expected)


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

    def score(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(((x - self.mean) / self.scale) @ self.coef + self.intercept, dtype=float)


def _cutpoints(scores: NDArray[np.float64], y: NDArray[np.int64], labels: Sequence[int]) -> list[float]:
    """Thresholds that give ``scores`` the mark distribution of ``y`` (distribution matching)."""
    shares = np.array([np.mean(y <= label) for label in labels[:-1]])
    return [float(np.quantile(scores, s)) for s in shares]


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
    from sklearn.model_selection import KFold

    target = y.astype(float)
    alpha = _loo_alpha(z, target)
    scores = np.zeros(len(y))
    for train, test in KFold(min(5, len(y)), shuffle=True, random_state=seed).split(z):
        coef, intercept = _ridge(z[train], target[train], alpha)
        scores[test] = z[test] @ coef + intercept
    return scores, alpha


def _inner_qwk(z: NDArray[np.float64], y: NDArray[np.int64], labels: Sequence[int], seed: int) -> float:
    scores, _ = _inner_scores(z, y, seed)
    cuts = _cutpoints(scores, y, labels)
    predicted = [labels[int(sum(1 for c in cuts if v > c))] for v in scores]
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
) -> _Linear:
    """Ridge on standardised signals (penalty by leave-one-out), cut-points on inner cross-validated scores.

    With ``select`` (and more than one signal), signals are chosen by forward selection inside
    subsamples of these training scripts and the subsample fits are averaged (``_bagged``); a
    signal never chosen gets coefficient 0, and the cut-points come from out-of-bag scores.
    """
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    if select and z.shape[1] > 1 and len(y) >= 5:
        coef, intercept, alpha, inner = _bagged(z, y, labels, seed, start)
    else:
        inner, alpha = _inner_scores(z, y, seed)  # the penalty by leave-one-out, once
        coef, intercept = _ridge(z, y.astype(float), alpha)
    return _Linear(
        mean=mean,
        scale=scale,
        coef=coef,
        intercept=intercept,
        alpha=alpha,
        cutpoints=_cutpoints(inner, y, labels),
    )


def _anchor(features: tuple[str, ...]) -> list[int]:
    """Where forward selection starts: the counted text's length, when it is among the signals."""
    return [features.index("log_words")] if "log_words" in features else []


def _predict(model: _Linear, x: NDArray[np.float64], labels: Sequence[int]) -> list[int]:
    return [labels[int(sum(1 for c in model.cutpoints if s > c))] for s in model.score(x)]


def _cross_validate(
    features: tuple[str, ...],
    prepared: _Prepared,
    scripts: Sequence[Script],
    ao_id: str,
    labels: Sequence[int],
    seed: int,
) -> list[int]:
    """Out-of-fold predictions: each script is scored by a model fitted without it."""
    from sklearn.model_selection import KFold

    n = len(scripts)
    y = np.array([s.marks[ao_id] for s in scripts])
    predictions = [0] * n
    for train, test in KFold(min(5, n), shuffle=True, random_state=seed).split(np.zeros(n)):
        train_rows, test_rows = list(train), list(test)
        x_train = _matrix(train_rows, train_rows, features, prepared, scripts, ao_id, exclude_self=True)
        model = _fit_linear(x_train, y[train], labels, seed, select=len(features) > 1, start=_anchor(features))
        x_test = _matrix(test_rows, train_rows, features, prepared, scripts, ao_id, exclude_self=False)
        for row, mark in zip(test_rows, _predict(model, x_test, labels), strict=True):
            predictions[row] = mark
    return predictions


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _decide(cv: CrossValidated) -> tuple[bool, str]:
    if cv.calibrated_qwk is None:
        return False, "the marked scripts do not vary enough to measure agreement"
    beaten = [("word count alone", cv.word_count_qwk), ("the model alone", cv.llm_qwk)]
    for name, value in beaten:
        if value is not None and cv.calibrated_qwk <= value:
            return False, (
                f"calibration ({_fmt(cv.calibrated_qwk)}) does not beat {name} ({_fmt(value)}) "
                f"on {cv.n_scripts} marked scripts; marks stay uncalibrated"
            )
    return True, "beats word count and the model alone in cross-validation"


def fit_objective(
    prepared: _Prepared,
    scripts: Sequence[Script],
    scheme: MarkScheme,
    ao_id: str,
    *,
    seed: int = 0,
    ablations: bool = True,
    exclude: frozenset[str] = frozenset(),
) -> ObjectiveFit:
    """Cross-validate, decide and fit the final model for one objective on every script.

    ``exclude`` names signal groups (keys of ``FEATURE_GROUPS``) left out, for ablation studies.
    """
    ao = scheme.objective(ao_id)
    labels = list(range(ao.min_marks, ao.max_marks + 1))
    y = [s.marks[ao_id] for s in scripts]
    all_features = tuple(f for group, names in FEATURE_GROUPS.items() if group not in exclude for f in names)
    features = _features_for(prepared, all_features)
    calibrated = _qwk(y, _cross_validate(features, prepared, scripts, ao_id, labels, seed), labels)
    word_count = _qwk(y, _cross_validate(WORD_COUNT, prepared, scripts, ao_id, labels, seed), labels)
    llm = _qwk(y, [(s.llm_marks or {})[ao_id] for s in scripts], labels) if prepared.llm else None
    ablation: dict[str, float | None] = {}
    model_features = set(FEATURE_GROUPS.get("model", ()))
    if model_features & set(features):
        # The model's marks must earn their place: without them the levels can be decided before
        # the model writes, so the model is asked once, for feedback that argues for that level.
        text_only = tuple(f for f in features if f not in model_features)
        without = _qwk(y, _cross_validate(text_only, prepared, scripts, ao_id, labels, seed), labels)
        ablation["model"] = without
        if calibrated is None or (without is not None and without >= calibrated - MODEL_SIGNAL_MARGIN):
            features, calibrated = text_only, without
    if ablations:
        for group, names in FEATURE_GROUPS.items():
            kept = tuple(f for f in features if f not in names)
            if kept != features and kept:
                ablation[group] = _qwk(y, _cross_validate(kept, prepared, scripts, ao_id, labels, seed), labels)
    cv = CrossValidated(
        n_scripts=len(scripts),
        folds=min(5, len(scripts)),
        calibrated_qwk=calibrated,
        word_count_qwk=word_count,
        llm_qwk=llm,
        ablation=ablation,
    )
    used, reason = _decide(cv)
    rows = list(range(len(scripts)))
    x = _matrix(rows, rows, features, prepared, scripts, ao_id, exclude_self=True)
    model = _fit_linear(x, np.array(y), labels, seed, select=len(features) > 1, start=_anchor(features))
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
) -> Calibrator:
    """A calibrator for ``scheme`` from ``scripts`` (at least ``MIN_SCRIPTS``), versioned by its content."""
    if len(scripts) < MIN_SCRIPTS:
        raise NotEnoughScriptsError(
            f"calibration needs at least {MIN_SCRIPTS} marked scripts for {scheme.ref}; there are {len(scripts)}"
        )
    prepared = prepare(scripts, scheme)
    fits = [
        fit_objective(prepared, scripts, scheme, ao.id, seed=seed, ablations=ablations, exclude=exclude)
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
    """The sceptic's baseline: a regression on log(word count) fitted on the training scripts, same cut-point rule."""
    return _word_count_predict(
        [len(words(e)) for e in train_essays], train_marks, [len(words(e)) for e in test_essays], labels
    )


def _word_count_predict(
    train_words: Sequence[int], train_marks: Sequence[int], test_words: Sequence[int], labels: Sequence[int]
) -> list[int]:
    x_train = np.array([[math.log1p(n)] for n in train_words])
    x_test = np.array([[math.log1p(n)] for n in test_words])
    model = _fit_linear(x_train, np.array(list(train_marks)), labels, seed=0)
    return _predict(model, x_test, labels)


def word_count_cross_validated(counts: Sequence[int], marks: Sequence[int], labels: Sequence[int]) -> list[int]:
    """Out-of-fold word-count predictions (5 folds): the baseline for a run with no separate training split."""
    from sklearn.model_selection import KFold

    predictions = [0] * len(counts)
    for train, test in KFold(min(5, len(counts)), shuffle=True, random_state=0).split(np.zeros(len(counts))):
        predicted = _word_count_predict(
            [counts[i] for i in train], [marks[i] for i in train], [counts[i] for i in test], labels
        )
        for row, mark in zip(test, predicted, strict=True):
            predictions[row] = mark
    return predictions
