"""The calibrator as data: what was fitted, on how many scripts, and how well it did against the baselines."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class CrossValidated(BaseModel):
    """Cross-validated agreement (QWK with the teacher's marks) of the calibrator and the two baselines."""

    n_scripts: int
    folds: int
    calibrated_qwk: float | None
    word_count_qwk: float | None = Field(
        description="The sceptic's baseline: a linear regression of the mark on log(word count) of the whole essay, "
        "rounded and clipped, fitted on the same folds."
    )
    llm_qwk: float | None = Field(description="The model's own marks, uncalibrated; None without model signals.")
    ablation: dict[str, float | None] = Field(
        default_factory=dict, description="Calibrated QWK without each signal group (which signals carry it)."
    )
    repeats: int = Field(default=1, description="Repeats of the K-fold split (fixed seeds 0..repeats-1), averaged.")
    length_qwk: float | None = Field(
        default=None,
        description="A regression on the counted text's length alone (padding, repeats and copied question "
        "left out): the plain candidate the calibrator must beat.",
    )
    delivered: Literal["calibrator", "length", "model"] | None = Field(
        default=None,
        description="What marks this objective: the calibrator, the counted-length model, or the model's own marks.",
    )
    delivered_qwk: float | None = Field(default=None, description="Cross-validated QWK of what is delivered.")
    delivered_exact: float | None = Field(
        default=None, description="Share of the scripts whose cross-validated delivered mark equals the teacher's."
    )
    delivered_within_one: float | None = Field(
        default=None, description="Share within one mark of the teacher's (what the teacher page says first)."
    )
    word_count_within_one: float | None = Field(
        default=None, description="The same for the sceptic's word count, for comparison."
    )


Basis = Literal["imported", "blind", "anchored", "unchanged_draft"]
"""How a marked script's marks were given. ``blind``: entered before the draft was shown;
``anchored``: with the draft in view, and at least one mark changed; ``unchanged_draft``: the draft
approved as it was, with the draft in view. Every basis but ``unchanged_draft`` is counted by
calibration: an unchanged draft would teach draftmark its own marks (``COUNTED``)."""

COUNTED: frozenset[str] = frozenset({"imported", "blind", "anchored"})


def mark_at(score: float, labels: list[int], cutpoints: list[float], seen: list[int] | None, reach: int) -> int:
    """The mark whose interval of the linear score holds ``score``, at most ``reach`` outside ``seen``.

    The one rule from a score to a mark: fits use it when they are cross-validated and when they mark.
    """
    mark = labels[sum(1 for cut in cutpoints if score > cut)]
    if seen is not None:
        mark = min(seen[1] + reach, max(seen[0] - reach, mark))
    return mark


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
    seen: list[int] | None = Field(
        default=None,
        description="The lowest and highest mark among the marked scripts. Marks are never given more than "
        "``reach`` outside them (distribution-matched cut-points above the highest mark all sit at one score, "
        "so without this bound an essay scoring above every marked script got full marks). None in fits "
        "stored before the bound.",
    )
    reach: int = Field(default=0, ge=0, description="How far outside ``seen`` a mark may go (then it is flagged).")
    cv: CrossValidated
    used: bool = Field(description="True only when the calibrator beats word count and the model alone.")
    reason: str

    def mark_for(self, score: float) -> int:
        """The mark whose interval of the linear score holds ``score``, inside the marks the scripts were given."""
        return mark_at(score, self.labels, self.cutpoints, self.seen, self.reach)


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
