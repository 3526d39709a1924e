"""Score one essay with a fitted calibrator: calibrated marks, the sentence shown beside them, review reasons."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from schemas.calibration import CalibrationInfo, Calibrator, CrossValidated, ObjectiveFit
from schemas.scheme import MarkScheme
from service.calibration.fit import FLOOR
from service.calibration.similarity import cosines, neighbour_mark
from service.calibration.text import CountedText, essay_signals
from service.reading.coverage import coverage_shares

# An essay is "unlike every exemplar" when its nearest exemplar is less similar than this, or when
# a signal lies this many training standard deviations outside the exemplars' mean.
MIN_SIMILARITY = 0.05
MAX_Z = 4.0


@dataclass(frozen=True)
class Calibrated:
    """The calibrator's marks for one essay and what to record about them."""

    marks: dict[str, int]
    info: CalibrationInfo
    review_reasons: list[str]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def summary(fit: ObjectiveFit, n_scripts: int, used: bool) -> str:
    """E.g. "calibrated on 32 of your marked scripts; cross-validated agreement 0.74 — word count alone 0.61…"."""
    cv = fit.cv
    delivered = cv.delivered_qwk if cv.delivered is not None else cv.calibrated_qwk
    figures = f"cross-validated agreement (QWK) {_fmt(delivered)}; word count alone {_fmt(cv.word_count_qwk)}"
    if cv.llm_qwk is not None:
        figures += f", the model alone {_fmt(cv.llm_qwk)}"
    if used:
        how = " (by the length of what counts, which beat the full calibrator)" if cv.delivered == "length" else ""
        weak = "; weak agreement: treat as a rough guide" if delivered is not None and delivered < FLOOR else ""
        return f"calibrated on {n_scripts} of your marked scripts{how}{_plain(cv)}; {figures}{weak}"
    return f"not calibrated: {fit.reason} ({figures})"


def _plain(cv: CrossValidated) -> str:
    """The plain-words part of the sentence beside a calibrated mark.

    E.g. ": tried on each script without seeing its mark, its marks were within one mark of yours 78%
    of the time (exactly yours 40%); marking by length alone, 70%".
    """
    if cv.delivered_within_one is None or cv.delivered_exact is None:
        return ""
    words = "" if cv.word_count_within_one is None else f"; marking by length alone, {cv.word_count_within_one:.0%}"
    return (
        f": tried on each script without seeing its mark, its marks were within one mark of yours "
        f"{cv.delivered_within_one:.0%} of the time (exactly yours {cv.delivered_exact:.0%}){words}"
    )


def _signals(
    fit: ObjectiveFit,
    base: dict[str, float],
    similarity: dict[str, float],
    llm: dict[str, float],
    expected: dict[str, float],
    coverage: dict[str, float],
) -> list[float]:
    values = []
    for name in fit.features:
        if name == "exemplar_similarity":
            values.append(similarity[fit.ao_id])
        elif name == "indicative_coverage":
            values.append(coverage[fit.ao_id])
        elif name == "llm_mark":
            values.append(llm[fit.ao_id])
        elif name == "llm_expected":
            values.append(expected[fit.ao_id])
        else:
            values.append(base[name])
    return values


@dataclass(frozen=True)
class _Inputs:
    counted: CountedText
    base: dict[str, float]
    similarity: dict[str, float]
    nearest: float
    llm: dict[str, float]
    expected: dict[str, float]
    coverage: dict[str, float]


def _inputs(
    calibrator: Calibrator,
    scheme: MarkScheme,
    essay: str,
    llm_marks: dict[str, int] | None,
    llm_expected: dict[str, float] | None = None,
) -> _Inputs:
    counted, base = essay_signals(essay, scheme.question, set(calibrator.topic_vocabulary))
    (row,) = cosines([counted.text], calibrator.exemplar_texts)  # one TF-IDF fit serves every objective
    similarity = {ao_id: neighbour_mark(row, marks) for ao_id, marks in calibrator.exemplar_marks.items()}
    return _Inputs(
        counted,
        base,
        similarity,
        float(row.max()) if row.size else 0.0,
        {k: float(v) for k, v in (llm_marks or {}).items()},
        dict(llm_expected or {}),
        coverage_shares(counted.text, scheme),
    )


def _z(fit: ObjectiveFit, inputs: _Inputs) -> NDArray[np.float64]:
    x = np.array(_signals(fit, inputs.base, inputs.similarity, inputs.llm, inputs.expected, inputs.coverage))
    return np.asarray((x - np.array(fit.mean)) / np.array(fit.scale), dtype=float)


def predict(
    calibrator: Calibrator,
    scheme: MarkScheme,
    essay: str,
    llm_marks: dict[str, int] | None = None,
    llm_expected: dict[str, float] | None = None,
) -> dict[str, int]:
    """Every objective's calibrated mark, whether or not selection chose to use the fit (for evals)."""
    inputs = _inputs(calibrator, scheme, essay, llm_marks, llm_expected)
    return {
        fit.ao_id: fit.mark_for(float(_z(fit, inputs) @ np.array(fit.coef) + fit.intercept))
        for fit in calibrator.objectives
    }


def calibrate(
    calibrator: Calibrator,
    scheme: MarkScheme,
    essay: str,
    llm_marks: dict[str, int] | None = None,
    llm_levels: dict[str, int] | None = None,
) -> Calibrated:
    """Calibrated marks for the objectives whose fit is used (the others stay the model's to judge).

    ``llm_marks`` (the model's own marks) are needed when the calibrator takes them as a signal;
    with ``llm_levels`` a disagreement of two levels or more becomes a review reason.
    """
    if calibrator.needs_model_marks and llm_marks is None:
        raise ValueError("this calibrator takes the model's marks as a signal; mark first")
    if calibrator.needs_probe:
        raise ValueError("this calibrator takes the model's level probabilities, which marking does not compute yet")
    inputs = _inputs(calibrator, scheme, essay, llm_marks)
    marks: dict[str, int] = {}
    reasons: list[str] = []
    unusual = inputs.nearest < MIN_SIMILARITY
    for fit in calibrator.objectives:
        if not fit.used:
            continue
        z = _z(fit, inputs)
        unusual = unusual or bool(np.any(np.abs(z) > MAX_Z))
        mark = fit.mark_for(float(z @ np.array(fit.coef) + fit.intercept))
        marks[fit.ao_id] = mark
        if fit.seen is not None and not fit.seen[0] <= mark <= fit.seen[1]:
            reasons.append(
                f"{fit.ao_id}: mark {mark} is outside the marks of your marked scripts ({fit.seen[0]}-{fit.seen[1]}); "
                "check it"
            )
        if fit.cv.delivered_qwk is not None and fit.cv.delivered_qwk < FLOOR:
            reasons.append(
                f"{fit.ao_id}: on your marked scripts this calibration agreed only weakly with your marks "
                f"(QWK {fit.cv.delivered_qwk:.2f} < {FLOOR:.1f}); check the mark"
            )
        level = scheme.objective(fit.ao_id).level_for_mark(mark).level
        if llm_levels is not None and abs(level - llm_levels[fit.ao_id]) >= 2:
            reasons.append(
                f"{fit.ao_id}: the calibrated level {level} and the model's level {llm_levels[fit.ao_id]} "
                "differ by two or more"
            )
    if unusual and calibrator.used:
        reasons.append("the essay is unlike every marked script the calibration learnt from")
    info = calibration_info(calibrator, uncalibrated_marks=dict(llm_marks or {}), discounted=inputs.counted.discounted)
    return Calibrated(marks=marks, info=info, review_reasons=reasons)


def calibration_info(
    calibrator: Calibrator, *, uncalibrated_marks: dict[str, int] | None = None, discounted: list[str] | None = None
) -> CalibrationInfo:
    """What a result records about ``calibrator``: status, version, figures and the sentence shown."""
    lines = [f"{fit.ao_id}: {summary(fit, calibrator.n_scripts, fit.used)}" for fit in calibrator.objectives]
    return CalibrationInfo(
        status="calibrated" if calibrator.used else "not_used",
        version=calibrator.version,
        n_scripts=calibrator.n_scripts,
        summary=lines[0].split(": ", 1)[1] if len(lines) == 1 else "; ".join(lines),
        objectives={fit.ao_id: fit.cv for fit in calibrator.objectives},
        uncalibrated_marks=uncalibrated_marks or {},
        discounted=discounted or [],
    )
