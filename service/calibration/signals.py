"""The model's own judgement as a calibration signal."""

from __future__ import annotations

from schemas.result import MarkingResult


def model_marks(result: MarkingResult) -> dict[str, int] | None:
    """The model's uncalibrated marks for a result, or None when the model was given decided levels.

    When calibration decided the levels before the model wrote (a calibrator on text signals
    alone), the model made no judgement of its own, so it yields no signal.
    """
    info = result.provenance.calibration
    if info.status != "calibrated":
        return {m.ao_id: m.mark for m in result.ao_marks}
    return dict(info.uncalibrated_marks) or None
