"""The calibrator as data: what was fitted, on how many scripts, and how well it did against the baselines."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CrossValidated(BaseModel):
    """Cross-validated agreement (QWK with the teacher's marks) of the calibrator and the two baselines."""

    n_scripts: int
    folds: int
    calibrated_qwk: float | None
    word_count_qwk: float | None = Field(description="Linear regression on log(word count), same folds and cut-points.")
    llm_qwk: float | None = Field(description="The model's own marks, uncalibrated; None without model signals.")
    ablation: dict[str, float | None] = Field(
        default_factory=dict, description="Calibrated QWK without each signal group (which signals carry it)."
    )


class ObjectiveFit(BaseModel):
    """A regularised linear model for one objective, with cut-points onto its marks."""

    ao_id: str
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    alpha: float
    labels: list[int] = Field(description="Every mark of the objective, ascending.")
    cutpoints: list[float] = Field(description="len(labels) - 1 ascending thresholds on the linear score.")
    cv: CrossValidated
    used: bool = Field(description="True only when the calibrator beats word count and the model alone.")
    reason: str

    def mark_for(self, score: float) -> int:
        """The mark whose interval of the linear score holds ``score``."""
        index = sum(1 for cut in self.cutpoints if score > cut)
        return self.labels[index]


class Calibrator(BaseModel):
    """Every objective's fit for one scheme version, from one owner's marked scripts."""

    version: str = Field(description="cal-<sha256 prefix of the fit>: recorded in every result it marks.")
    scheme_id: str
    scheme_version: str
    fitted_at: datetime
    n_scripts: int
    llm_model: str | None = Field(description="Model whose marks are a signal; None when only text signals are used.")
    objectives: list[ObjectiveFit]
    exemplar_texts: list[str] = Field(description="Counted texts of the exemplars (for similarity signals).")
    exemplar_marks: dict[str, list[int]]
    topic_vocabulary: list[str]

    def objective(self, ao_id: str) -> ObjectiveFit:
        """The fit for ``ao_id``."""
        return next(o for o in self.objectives if o.ao_id == ao_id)

    @property
    def used(self) -> bool:
        """Whether any objective is calibrated."""
        return any(o.used for o in self.objectives)

    @property
    def needs_model_marks(self) -> bool:
        """Whether a used fit takes the model's own marks as a signal (then the model judges first)."""
        return any(o.used and "llm_mark" in o.features for o in self.objectives)

    @property
    def needs_probe(self) -> bool:
        """Whether a used fit takes the model's expected level (next-token probabilities) as a signal."""
        return any(o.used and "llm_expected" in o.features for o in self.objectives)


class CalibrationInfo(BaseModel):
    """What a result records about calibration (in provenance)."""

    status: str = Field(description="calibrated | uncalibrated | not_used")
    version: str | None = None
    n_scripts: int = 0
    summary: str = Field(description="The sentence shown beside the mark.")
    objectives: dict[str, CrossValidated] = Field(default_factory=dict)
    uncalibrated_marks: dict[str, int] = Field(default_factory=dict, description="The model's own marks.")
    discounted: list[str] = Field(default_factory=list, description="Text the calibrator did not count, and why.")
