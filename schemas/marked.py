"""A human-marked essay: what evals measure against, and what a teacher imports as marked scripts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EvalItem(BaseModel):
    """One human-marked essay."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    essay: str
    scheme_id: str
    human: dict[str, int] = Field(description="First human's marks per objective id.")
    human2: dict[str, int] | None = Field(default=None, description="Second human's marks, when there is one.")
    metadata: dict[str, str | int | float | None] = Field(default_factory=dict)

    @property
    def human_total(self) -> int:
        """Sum of the first human's marks."""
        return sum(self.human.values())
