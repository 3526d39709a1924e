"""The calibration state as the API, the CLI and the teacher page show it (``describe``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.calibration import Calibrator, CrossValidated
from schemas.scheme import MarkScheme
from service.calibration.apply import summary
from service.calibration.fit import MIN_SCRIPTS
from service.persistence.exemplars import REFIT_EVERY, ExemplarCounts


class ObjectiveCalibration(BaseModel):
    """One objective's cross-validated figures and whether calibration is used for it."""

    ao_id: str
    used: bool
    summary: str
    cv: CrossValidated


class CalibrationPublic(BaseModel):
    """The current calibration for a scheme version (or why there is none)."""

    scheme_id: str
    scheme_version: str
    exemplars: int
    counted_exemplars: int = Field(
        description="Marked scripts calibration learns from: all but drafts approved unchanged with the draft in view."
    )
    new_since_fit: int = Field(description="Counted scripts added or changed since the current fit.")
    refit_every: int = Field(
        default=REFIT_EVERY,
        description="Approvals refit once this many new counted scripts came in (imports, deletions and "
        "POST .../calibration/refit refit at once), so marks do not shift script by script during a sitting.",
    )
    min_exemplars: int = MIN_SCRIPTS
    status: str = Field(description="calibrated | not_used | too_few_exemplars")
    version: str | None = None
    fitted_at: datetime | None = None
    signals_from_model: str | None = None
    objectives: list[ObjectiveCalibration] = Field(default_factory=list)
    message: str
    refit_pending: bool = Field(
        default=False,
        description="The marked scripts changed and the calibration is being refitted in the background; "
        "these figures are the previous fit's. Ask again (GET .../calibration) in a few seconds.",
    )


def describe(
    scheme: MarkScheme, counts: ExemplarCounts, calibrator: Calibrator | None, *, refit_pending: bool = False
) -> CalibrationPublic:
    """The calibration state as the API, CLI and teacher page show it."""
    pending = " A refit on your changed scripts is running; these are the previous figures." if refit_pending else ""
    not_counted = counts.total - counts.counted
    if not_counted:
        pending += (
            f" {not_counted} approved draft(s) left unchanged with the draft in view are kept but not counted "
            "(they would teach draftmark its own marks; mark blind to have every script count)."
        )
    waiting = counts.new_since_fit if calibrator is not None and not refit_pending else 0
    if waiting:
        pending += (
            f" {waiting} new marked script(s) since this fit: approvals refit after {REFIT_EVERY}, "
            "or refit now from the calibration page."
        )
    common = {
        "scheme_id": scheme.id,
        "scheme_version": scheme.version,
        "exemplars": counts.total,
        "counted_exemplars": counts.counted,
        "new_since_fit": counts.new_since_fit,
        "refit_pending": refit_pending,
    }
    if calibrator is None:
        return CalibrationPublic(
            **common,
            status="too_few_exemplars",
            message=f"uncalibrated: {counts.counted} counted marked script(s); calibration starts at {MIN_SCRIPTS} "
            "(approve scripts or import marked ones)" + pending,
        )
    objectives = [
        ObjectiveCalibration(
            ao_id=fit.ao_id, used=fit.used, summary=summary(fit, calibrator.n_scripts, fit.used), cv=fit.cv
        )
        for fit in calibrator.objectives
    ]
    return CalibrationPublic(
        **common,
        status="calibrated" if calibrator.used else "not_used",
        version=calibrator.version,
        fitted_at=calibrator.fitted_at,
        signals_from_model=calibrator.llm_model,
        objectives=objectives,
        message="; ".join(f"{o.ao_id}: {o.summary}" for o in objectives) + pending,
    )
