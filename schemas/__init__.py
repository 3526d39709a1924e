"""Pydantic models for draftmark: mark schemes, the LLM's draft and the public result."""

from schemas.draft import AODraft, MarkingDraft, draft_problems, output_json_schema
from schemas.grounding import EssayIndex, Span, normalise, quote_problem
from schemas.result import (
    AOMark,
    EndpointKind,
    Evidence,
    Flag,
    FlagCode,
    MarkingResult,
    PromptRef,
    Provenance,
    StudentFeedback,
    TokenUsage,
)
from schemas.scheme import AssessmentObjective, GradeBoundary, Level, MarkScheme

__all__ = [
    "AODraft",
    "AOMark",
    "AssessmentObjective",
    "EndpointKind",
    "EssayIndex",
    "Evidence",
    "Flag",
    "FlagCode",
    "GradeBoundary",
    "Level",
    "MarkScheme",
    "MarkingDraft",
    "MarkingResult",
    "PromptRef",
    "Provenance",
    "Span",
    "StudentFeedback",
    "TokenUsage",
    "draft_problems",
    "normalise",
    "output_json_schema",
    "quote_problem",
]
