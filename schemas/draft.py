"""The shape the LLM is asked to fill, kept apart from the public result.

The JSON schema sent to the model is derived from the mark scheme: objective ids are
fixed keys and levels/marks are enums, because llama.cpp grammars ignore integer
minimum/maximum. Everything is validated again here against the scheme and the essay
(passed as validation context), and a failure is fed back to the model as a re-ask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from schemas.grounding import EssayIndex, quote_problem
from schemas.scheme import MarkScheme

JsonObject = dict[str, Any]

# What the model is asked for is kept small on purpose (a 1.5B model on 2 cores generates ~10
# tokens/s): per objective, sentence references and a one-sentence rationale; one sentence each
# of student feedback. The schema's maxLength is the grammar's hard stop, set above what the
# prompt asks for so a cut-off is rare. The validators accept the older, longer answers
# (endpoints without maxLength support, stored drafts), so the diet never causes a re-ask.
MAX_EVIDENCE = 2
MAX_POINTS = 3
RATIONALE_CHARS = 140
QUOTE_CHARS = 300
SUMMARY_CHARS = 140
ACCEPTED_EVIDENCE = 4
ACCEPTED_CHARS = 1400


class AODraft(BaseModel):
    """The model's judgement on one objective."""

    model_config = ConfigDict(extra="forbid")

    evidence: list[str] = Field(default_factory=list, max_length=ACCEPTED_EVIDENCE)
    rationale: str = Field(min_length=1, max_length=ACCEPTED_CHARS)
    strengths: list[str] = Field(default_factory=list, max_length=MAX_POINTS)
    improvements: list[str] = Field(default_factory=list, max_length=MAX_POINTS)
    level: int
    mark: int


class MarkingDraft(BaseModel):
    """The model's whole answer; validate with context ``{"scheme": ..., "essay": EssayIndex}``."""

    model_config = ConfigDict(extra="forbid")

    objectives: dict[str, AODraft]
    what_went_well: str = Field(max_length=ACCEPTED_CHARS)
    even_better_if: str = Field(max_length=ACCEPTED_CHARS)
    teacher_notes: str = Field(default="", max_length=ACCEPTED_CHARS)
    off_topic: bool = False

    @model_validator(mode="after")
    def _against_scheme_and_essay(self, info: ValidationInfo) -> MarkingDraft:
        context = info.context or {}
        scheme = context.get("scheme")
        essay = context.get("essay")
        if not isinstance(scheme, MarkScheme) or not isinstance(essay, EssayIndex):
            raise ValueError("MarkingDraft must be validated with scheme and essay context")
        # ``evidence: False``: the structure only; ``evidence_faults`` then says which quotes fail, so
        # a caller can keep valid marks and drop bad evidence (``without``) instead of failing the marking.
        problems = draft_problems(self, scheme, essay, evidence=context.get("evidence", True) is not False)
        if problems:
            raise ValueError("\n".join(problems))
        return self


def draft_problems(draft: MarkingDraft, scheme: MarkScheme, essay: EssayIndex, *, evidence: bool = True) -> list[str]:
    """Every way ``draft`` breaks the scheme (and, with ``evidence``, misquotes the essay), as fix-it sentences."""
    problems: list[str] = []
    expected = set(scheme.objective_ids)
    unknown = sorted(set(draft.objectives) - expected)
    missing = [i for i in scheme.objective_ids if i not in draft.objectives]
    if unknown:
        problems.append(f"unknown objective ids {unknown}; use only {list(scheme.objective_ids)}")
    if missing:
        problems.append(f"objectives {missing} are missing; mark every objective")
    for ao_id, ao_draft in draft.objectives.items():
        if ao_id not in expected:
            continue
        ao = scheme.objective(ao_id)
        levels = [lv.level for lv in ao.levels]
        if ao_draft.level not in levels:
            problems.append(f"{ao_id}: level {ao_draft.level} does not exist; choose one of {levels}")
            continue
        band = ao.level(ao_draft.level)
        if not band.min_mark <= ao_draft.mark <= band.max_mark:
            problems.append(
                f"{ao_id}: mark {ao_draft.mark} is outside level {band.level}'s band "
                f"{band.min_mark}-{band.max_mark}; give a mark inside the band or change the level"
            )
    if evidence:
        problems += [fault.message for fault in evidence_faults(draft, scheme, essay)]
    return problems


@dataclass(frozen=True)
class Fault:
    """Something in a structurally valid draft that can be left out rather than fail the marking.

    ``quote``: one evidence item of objective ``where`` (left out); ``field``: a text field
    (``rationale`` of objective ``where``, or a top-level field such as ``what_went_well``; blanked);
    neither: the objective has no evidence left (nothing to drop; the result says so).
    """

    where: str
    message: str
    quote: str | None = None
    field: str | None = None


def evidence_faults(draft: MarkingDraft, scheme: MarkScheme, essay: EssayIndex) -> list[Fault]:
    """Quotes not found in the essay (or too short), and marks above the minimum left without evidence."""
    faults: list[Fault] = []
    for ao in scheme.objectives:
        ao_draft = draft.objectives.get(ao.id)
        if ao_draft is None:
            continue
        bad = [(quote, problem) for quote in ao_draft.evidence if (problem := quote_problem(quote, essay))]
        faults += [Fault(ao.id, f"{ao.id}: {problem}", quote=quote) for quote, problem in bad]
        if ao_draft.mark > ao.min_marks and len(bad) == len(ao_draft.evidence):
            faults.append(
                Fault(ao.id, f"{ao.id}: a mark above {ao.min_marks} needs at least one quotation as evidence")
            )
    return faults


def without(draft: MarkingDraft, faults: list[Fault]) -> MarkingDraft:
    """``draft`` with the faulty quotes left out and the faulty text fields blanked (nothing else changes)."""
    objectives = {}
    for ao_id, ao_draft in draft.objectives.items():
        dropped = {f.quote for f in faults if f.where == ao_id and f.quote is not None}
        blank = any(f.where == ao_id and f.field == "rationale" for f in faults)
        objectives[ao_id] = ao_draft.model_copy(
            update={
                "evidence": [q for q in ao_draft.evidence if q not in dropped],
                "rationale": "" if blank else ao_draft.rationale,
            }
        )
    fields = {f.field: "" for f in faults if f.field is not None and f.field != "rationale"}
    return draft.model_copy(update={"objectives": objectives, **fields})


def _string(max_length: int) -> JsonObject:
    return {"type": "string", "maxLength": max_length}


BANDS_PATTERN = re.compile(r"(\d+): (\d+)-(\d+)")


def bands_from_schema(ao_schema: JsonObject) -> list[tuple[int, int, int]]:
    """(level, min, max) triples read back from an AO's schema description."""
    text = str(ao_schema.get("description", "")).partition("Levels (level: marks):")[2]
    return [(int(a), int(b), int(c)) for a, b, c in BANDS_PATTERN.findall(text)]


def output_json_schema(
    scheme: MarkScheme, *, sentence_refs: list[str] | None = None, decided: dict[str, int] | None = None
) -> JsonObject:
    """The JSON schema the model must fill for ``scheme``.

    Each objective is an ``anyOf`` over its levels, with the level as a constant and the mark
    as an enum of that level's band, so grammar-constrained backends cannot put a mark outside
    its band. With ``sentence_refs`` (``["S1", "S2", ...]``), evidence items are an enum of the
    numbered sentences the prompt shows, so evidence is verbatim by construction and costs a few
    tokens; without, evidence is free text that grounding checks against the essay.
    Per-objective strengths and improvements are not asked for (``AODraft`` still accepts them).
    With ``decided`` (objective id -> mark, set by calibration), those objectives offer only the
    decided mark and its level: the model writes the evidence and rationale for that mark.
    """
    fixed = decided or {}
    quote: JsonObject = {"type": "string", "enum": sentence_refs} if sentence_refs else _string(QUOTE_CHARS)
    objectives: JsonObject = {}
    for ao in scheme.objectives:
        bands = "; ".join(f"{lv.level}: {lv.min_mark}-{lv.max_mark}" for lv in ao.levels)
        variants = [
            {
                "type": "object",
                "properties": {
                    "evidence": {"type": "array", "items": quote, "maxItems": MAX_EVIDENCE},
                    "rationale": _string(RATIONALE_CHARS),
                    "level": {"type": "integer", "enum": [lv.level]},
                    "mark": {"type": "integer", "enum": [fixed[ao.id]] if ao.id in fixed else list(lv.marks)},
                },
                "required": ["evidence", "rationale", "level", "mark"],
                "additionalProperties": False,
            }
            for lv in ao.levels
            if ao.id not in fixed or lv.level == ao.level_for_mark(fixed[ao.id]).level
        ]
        objectives[ao.id] = {"description": f"{ao.name}. Levels (level: marks): {bands}", "anyOf": variants}
    return {
        "title": "MarkingDraft",
        "type": "object",
        "properties": {
            "objectives": {
                "type": "object",
                "properties": objectives,
                "required": list(scheme.objective_ids),
                "additionalProperties": False,
            },
            "what_went_well": _string(SUMMARY_CHARS),
            "even_better_if": _string(SUMMARY_CHARS),
            "teacher_notes": _string(SUMMARY_CHARS),
            "off_topic": {"type": "boolean"},
        },
        "required": ["objectives", "what_went_well", "even_better_if", "teacher_notes", "off_topic"],
        "additionalProperties": False,
    }
