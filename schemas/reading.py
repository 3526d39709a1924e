"""A scheme-grounded reading of an essay, found in code: what it covers, how it is built, what a student should fix.

It is computed before the model is asked and carried in the result, so a teacher and an LMS can
see *why*: which indicative points each objective's essay addresses (with the sentences that show
it) and which it misses; whether there is a conclusion; how far into the question's period the
essay reaches; and words run together. Checks on the model's feedback use it as their facts.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Passage(BaseModel):
    """A sentence of the essay: its reference as the model is shown it, its text and its offsets."""

    ref: str
    quote: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class PointCoverage(BaseModel):
    """An indicative point the essay addresses, and the sentences that show it (best first)."""

    point: str
    sentences: list[Passage]


class ObjectiveCoverage(BaseModel):
    """Which of an objective's indicative points the essay addresses and which it misses."""

    ao_id: str
    addressed: list[PointCoverage] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


class Reading(BaseModel):
    """What code found in the essay against the scheme (no model involved)."""

    coverage: list[ObjectiveCoverage] = Field(default_factory=list)
    conclusion: Passage | None = Field(
        default=None, description="The sentence that opens the essay's conclusion, or None when it has none."
    )
    period: tuple[int, int] | None = Field(
        default=None, description="The years the question and scheme cover (from their dates), if they name any."
    )
    latest_year: int | None = Field(default=None, description="The latest year the essay names.")
    stops_short: bool = Field(
        default=False, description="The essay's latest year is more than a year before the end of the period."
    )
    run_together: list[str] = Field(
        default_factory=list, description="Words written together that are two words (e.g. 'Stalinstayed')."
    )
