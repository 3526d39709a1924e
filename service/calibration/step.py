"""The calibration step of ``mark_essay``: decide marks before or after the model judges, and record it.

A calibrator on text signals alone decides the marks *before* the model is asked, so the model
is asked once, to explain those marks. A calibrator that takes the model's marks as a signal
decides *after* the model's own judgement; when that changes a mark, the model writes again for
the calibrated marks (so the rationale never argues for another mark), and the model's own marks
stay in provenance.
"""

from __future__ import annotations

from schemas.calibration import CalibrationInfo, Calibrator
from schemas.result import Flag, FlagCode
from schemas.scheme import MarkScheme
from service.calibration.apply import Calibrated, calibrate, calibration_info
from service.calibration.fit import MIN_SCRIPTS

UNCALIBRATED = CalibrationInfo(
    status="uncalibrated",
    summary=f"uncalibrated: no calibration for this scheme yet (it starts at {MIN_SCRIPTS} marked scripts, "
    "approved or imported)",
)


class CalibrationStep:
    """One marking's use of a calibrator (or its absence)."""

    def __init__(self, calibrator: Calibrator | None, scheme: MarkScheme, essay: str) -> None:
        if calibrator is not None and (calibrator.scheme_id, calibrator.scheme_version) != (scheme.id, scheme.version):
            raise ValueError(f"calibrator {calibrator.version} is for another scheme than {scheme.ref}")
        self._calibrator = calibrator
        self._scheme = scheme
        self._essay = essay
        self._outcome: Calibrated | None = None

    @property
    def _active(self) -> Calibrator | None:
        return self._calibrator if self._calibrator is not None and self._calibrator.used else None

    def decided_before(self) -> dict[str, int] | None:
        """Marks decided from text signals alone, before the model is asked (None: the model judges)."""
        active = self._active
        if active is None or active.needs_model_marks:
            return None
        self._outcome = calibrate(active, self._scheme, self._essay)
        return self._outcome.marks or None

    def decided_after(self, model_marks: dict[str, int]) -> dict[str, int] | None:
        """Calibrated marks from the model's own marks, when they differ from them (None: nothing to rewrite)."""
        active = self._active
        if active is None or not active.needs_model_marks:
            return None
        levels = {k: self._scheme.objective(k).level_for_mark(v).level for k, v in model_marks.items()}
        self._outcome = calibrate(active, self._scheme, self._essay, model_marks, levels)
        changed = any(model_marks[k] != v for k, v in self._outcome.marks.items())
        return self._outcome.marks if changed else None

    def calibrates_all(self) -> bool:
        """Whether every objective's mark was set by calibration."""
        return self._outcome is not None and set(self._outcome.marks) == set(self._scheme.objective_ids)

    def flags(self) -> list[Flag]:
        """A calibration_check flag when the teacher should look (two-level disagreement, an unusual essay)."""
        if self._outcome is None or not self._outcome.review_reasons:
            return []
        return [Flag(code=FlagCode.CALIBRATION_CHECK, detail="; ".join(self._outcome.review_reasons))]

    def info(self) -> CalibrationInfo:
        """What the result records about calibration."""
        if self._outcome is not None:
            return self._outcome.info
        if self._calibrator is None:
            return UNCALIBRATED
        return calibration_info(self._calibrator)
