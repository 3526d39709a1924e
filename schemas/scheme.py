"""Mark schemes: assessment objectives with levels-of-response bands.

A scheme is data (YAML or JSON). The validators hold every structural invariant so
the rest of the pipeline can trust a loaded scheme without re-checking it.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.text import StorableText, require_storable

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_SCHEME_CHARS = 50_000
"""All of a scheme's prose together: every field is bounded, and so is their sum (it all goes into the prompt)."""
IndicativePoint = Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(require_storable)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Level(_Frozen):
    """One levels-of-response band of an assessment objective."""

    level: int = Field(ge=0, description="Level number; 0 is 'nothing worthy of credit'.")
    min_mark: int = Field(ge=0)
    max_mark: int = Field(ge=0)
    descriptor: StorableText = Field(min_length=1, max_length=2000)

    @property
    def midpoint(self) -> float:
        """The middle of the band: the mark an expected level stands for (probes, calibration signals)."""
        return (self.min_mark + self.max_mark) / 2

    @model_validator(mode="after")
    def _band_order(self) -> Level:
        if self.min_mark > self.max_mark:
            raise ValueError(
                f"level {self.level}: min_mark {self.min_mark} is above max_mark "
                f"{self.max_mark}; swap them or fix the band"
            )
        return self

    @property
    def marks(self) -> range:
        """Every mark inside this band."""
        return range(self.min_mark, self.max_mark + 1)


class AssessmentObjective(_Frozen):
    """A criterion marked on its own scale (e.g. AO1 knowledge, AO2 analysis)."""

    id: str = Field(pattern=_ID_PATTERN)
    name: StorableText = Field(min_length=1, max_length=200)
    description: StorableText = Field(default="", max_length=2000)
    max_marks: int = Field(ge=1, le=100)
    levels: tuple[Level, ...] = Field(min_length=1, max_length=25)
    indicative_content: tuple[IndicativePoint, ...] = Field(default=(), max_length=40)

    @model_validator(mode="after")
    def _levels_cover_range(self) -> AssessmentObjective:
        levels = sorted(self.levels, key=lambda lv: lv.min_mark)
        problems: list[str] = []
        if levels[0].min_mark not in (0, 1):
            problems.append(f"the lowest band starts at {levels[0].min_mark}; it must start at 0 (or 1)")
        for below, above in pairwise(levels):
            if above.min_mark <= below.max_mark:
                problems.append(
                    f"level {below.level} ({below.min_mark}-{below.max_mark}) overlaps level "
                    f"{above.level} ({above.min_mark}-{above.max_mark})"
                )
            elif above.min_mark != below.max_mark + 1:
                problems.append(
                    f"marks {below.max_mark + 1}-{above.min_mark - 1} fall between level "
                    f"{below.level} and level {above.level}; make the bands contiguous"
                )
            if above.level <= below.level:
                problems.append(
                    f"level numbers must rise with the marks: level {above.level} "
                    f"({above.min_mark}-{above.max_mark}) is not above level {below.level}"
                )
        if levels[-1].max_mark != self.max_marks:
            problems.append(
                f"the top band ends at {levels[-1].max_mark} but max_marks is {self.max_marks}; make them equal"
            )
        numbers = [lv.level for lv in self.levels]
        if len(set(numbers)) != len(numbers):
            problems.append(f"level numbers repeat: {numbers}")
        if problems:
            raise ValueError(f"AO {self.id}: " + "; ".join(problems))
        if list(self.levels) != levels:
            object.__setattr__(self, "levels", tuple(levels))
        return self

    @property
    def min_marks(self) -> int:
        """The lowest mark this AO can award."""
        return self.levels[0].min_mark

    def level_for_mark(self, mark: int) -> Level:
        """The band containing ``mark``; raises ``ValueError`` outside the AO's range."""
        for lv in self.levels:
            if lv.min_mark <= mark <= lv.max_mark:
                return lv
        raise ValueError(f"mark {mark} is outside {self.id}'s range {self.min_marks}-{self.max_marks}")

    def level(self, number: int) -> Level:
        """The band with level number ``number``."""
        for lv in self.levels:
            if lv.level == number:
                return lv
        raise ValueError(f"{self.id} has no level {number}; levels are {[lv.level for lv in self.levels]}")


class GradeBoundary(_Frozen):
    """An overall grade awarded from a minimum total."""

    grade: StorableText = Field(min_length=1, max_length=40)
    min_total: int = Field(ge=0)


class MarkScheme(_Frozen):
    """A whole mark scheme for one question."""

    id: str = Field(pattern=_ID_PATTERN)
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,31}$")
    title: StorableText = Field(min_length=1, max_length=300)
    subject: StorableText = Field(min_length=1, max_length=100)
    question: StorableText = Field(min_length=1, max_length=20000)
    total_marks: int = Field(ge=1, le=500)
    guidance: StorableText = Field(default="", max_length=8000, description="General marking guidance.")
    objectives: tuple[AssessmentObjective, ...] = Field(min_length=1, max_length=20)
    grade_boundaries: tuple[GradeBoundary, ...] = Field(default=(), max_length=30)
    min_words: int = Field(default=50, ge=0, description="Below this the essay is flagged too_short.")

    @model_validator(mode="after")
    def _consistent(self) -> MarkScheme:
        problems: list[str] = []
        chars = self.text_chars
        if chars > MAX_SCHEME_CHARS:
            problems.append(
                f"the scheme's text (question, guidance, descriptors, indicative content...) is {chars:,} characters; "
                f"the limit is {MAX_SCHEME_CHARS:,}: shorten it"
            )
        ids = [ao.id for ao in self.objectives]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            problems.append(f"objective ids must be unique; repeated: {', '.join(dupes)}")
        total = sum(ao.max_marks for ao in self.objectives)
        if total != self.total_marks:
            parts = " + ".join(f"{ao.id} {ao.max_marks}" for ao in self.objectives)
            problems.append(
                f"objective maxima add up to {total} ({parts}) but total_marks is "
                f"{self.total_marks}; change total_marks or an objective's max_marks"
            )
        if self.grade_boundaries:
            grades = sorted(self.grade_boundaries, key=lambda g: g.min_total)
            if grades[0].min_total != 0:
                problems.append("the lowest grade boundary must have min_total 0")
            if len({g.min_total for g in grades}) != len(grades):
                problems.append("grade boundaries must have distinct min_total values")
            if grades[-1].min_total > self.total_marks:
                problems.append(
                    f"grade '{grades[-1].grade}' needs {grades[-1].min_total}, above total_marks {self.total_marks}"
                )
            object.__setattr__(self, "grade_boundaries", tuple(grades))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def objective(self, ao_id: str) -> AssessmentObjective:
        """The objective with id ``ao_id``."""
        for ao in self.objectives:
            if ao.id == ao_id:
                return ao
        raise KeyError(ao_id)

    @property
    def objective_ids(self) -> tuple[str, ...]:
        """Objective ids in scheme order."""
        return tuple(ao.id for ao in self.objectives)

    def grade_for_total(self, total: int) -> str | None:
        """The overall grade for ``total``, or None when the scheme defines no grades."""
        grade: str | None = None
        for boundary in self.grade_boundaries:
            if total >= boundary.min_total:
                grade = boundary.grade
        return grade

    @property
    def text_chars(self) -> int:
        """Characters of prose in the scheme: what it adds to every prompt."""
        parts = [self.title, self.subject, self.question, self.guidance, *(g.grade for g in self.grade_boundaries)]
        for ao in self.objectives:
            parts += [ao.name, ao.description, *ao.indicative_content, *(lv.descriptor for lv in ao.levels)]
        return sum(len(p) for p in parts)

    @property
    def ref(self) -> str:
        """``id@version``, the scheme's stable reference."""
        return f"{self.id}@{self.version}"


def slug(text: str) -> str:
    """A lowercase id-safe slug of ``text`` (used for generated scheme ids)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64] or "scheme"
