"""The public marking result: what callers, the teacher page and evals receive."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.calibration import CalibrationInfo
from schemas.reading import Reading

EndpointKind = Literal["openai_compatible", "local", "fake"]


class FlagCode(StrEnum):
    """Reasons a result needs a human's eye or must be read with care."""

    NEEDS_REVIEW = "needs_review"
    INDICATIVE_MODEL = "indicative_model"
    POSSIBLE_PROMPT_INJECTION = "possible_prompt_injection"
    TOO_SHORT = "too_short"
    OFF_TOPIC = "off_topic"
    INCONSISTENT_SAMPLES = "inconsistent_samples"
    CALIBRATION_CHECK = "calibration_check"
    EVIDENCE_MISSING = "evidence_missing"
    TEXT_REPLACED = "text_replaced"


class Flag(BaseModel):
    """A flag and the reason it was raised."""

    model_config = ConfigDict(frozen=True)

    code: FlagCode
    detail: str


class Evidence(BaseModel):
    """A quotation from the essay, located by character offsets into the submitted text."""

    quote: str = Field(description="The quote exactly as it appears in the essay.")
    start: int = Field(ge=0)
    end: int = Field(ge=0)

    @model_validator(mode="after")
    def _span(self) -> Evidence:
        if self.end <= self.start:
            raise ValueError("evidence end must be after start")
        return self


class AOMark(BaseModel):
    """The mark for one assessment objective."""

    ao_id: str
    ao_name: str
    level: int
    mark: int = Field(ge=0)
    max_marks: int = Field(ge=1)
    band: tuple[int, int] = Field(description="(min, max) marks of the awarded level.")
    rationale: str
    evidence: list[Evidence]
    strengths: list[str]
    improvements: list[str]
    sample_marks: list[int] = Field(default_factory=list, description="Each independent sample's mark (samples > 1).")
    spread: int = Field(default=0, ge=0, description="max - min over samples.")

    @model_validator(mode="after")
    def _in_band(self) -> AOMark:
        low, high = self.band
        if not low <= self.mark <= high:
            raise ValueError(f"{self.ao_id}: mark {self.mark} is outside its level's band {low}-{high}")
        if self.mark > self.max_marks:
            raise ValueError(f"{self.ao_id}: mark {self.mark} exceeds max {self.max_marks}")
        return self


class StudentFeedback(BaseModel):
    """Student-facing summary."""

    what_went_well: str
    even_better_if: str


class TokenUsage(BaseModel):
    """Tokens spent, summed over every attempt and sample."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class PromptRef(BaseModel):
    """Which prompt template produced a result."""

    id: str
    version: str
    sha256: str


class Provenance(BaseModel):
    """Everything needed to reproduce or audit a result."""

    model: str
    endpoint_kind: EndpointKind
    prompt: PromptRef
    scheme_id: str
    scheme_version: str
    temperature: float
    samples: int
    evidence_mode: Literal["sentences", "free"] = "free"
    max_output_tokens: int
    seed: int | None
    attempts: int = Field(description="LLM calls made, re-asks included, over all samples.")
    usage: TokenUsage
    latency_ms: int
    draftmark_version: str
    created_at: datetime
    calibration: CalibrationInfo = Field(
        default_factory=lambda: CalibrationInfo(status="uncalibrated", summary="uncalibrated: no marked scripts"),
        description="Whether a calibrator fitted on the owner's marked scripts set the marks, which one, and how "
        "well it did against word count and the model alone in cross-validation.",
    )


class MarkingResult(BaseModel):
    """A validated, grounded marking of one essay against one scheme."""

    ao_marks: list[AOMark]
    total: int
    max_total: int
    grade: str | None = None
    feedback: StudentFeedback
    teacher_notes: str
    flags: list[Flag]
    reading: Reading | None = Field(
        default=None,
        description="What code found in the essay against the scheme, before the model was asked: indicative points "
        "addressed (with their sentences) and missed per objective, the conclusion, the period reached, words run "
        "together. The feedback checks hold the model's text to it.",
    )
    provenance: Provenance

    @model_validator(mode="after")
    def _totals(self) -> MarkingResult:
        computed = sum(m.mark for m in self.ao_marks)
        if self.total != computed:
            raise ValueError(f"total {self.total} is not the sum of AO marks ({computed})")
        maximum = sum(m.max_marks for m in self.ao_marks)
        if self.max_total != maximum:
            raise ValueError(f"max_total {self.max_total} is not the sum of AO maxima ({maximum})")
        return self

    def has_flag(self, code: FlagCode) -> bool:
        """Whether ``code`` is among the result's flags."""
        return any(f.code == code for f in self.flags)
