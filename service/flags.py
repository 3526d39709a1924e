"""Checks computed in code, never left to the model: injection signs and length."""

from __future__ import annotations

import re

_INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern, re.IGNORECASE))
    for label, pattern in (
        (
            "asks to ignore instructions",
            r"\b(ignore|disregard|forget|override)\s+((all|any|the|your|my|previous|prior|above|these|those|"
            r"earlier|system|marking|original|given)\s+)*(instructions?|mark ?schemes?|marking scheme|rubrics?|"
            r"criteria|prompts?|guidelines|rules above)\b",
        ),
        (
            "asks for marks",
            r"\b(award|give|assign|grant)\b.{0,30}"
            r"(\b\d+ ?/ ?\d+\b|\b(full|maximum|max|top|highest|all( the)?|\d+)\s*(marks?|points?|score|grade|level)\b)",
        ),
        (
            "claims a score",
            r"\b(this|the) (essay|answer|script|response) "
            r"(deserves|should (get|receive|be awarded)|must (get|receive|be awarded))\b",
        ),
        (
            "addresses the model",
            r"\b(you are|as) (an? )?(ai|assistant|language model|llm|chatgpt|gpt)\b"
            r"|\b(dear|attention|note to( the)?) (ai|model|marker|grader|examiner|assistant)\b",
        ),
        (
            "fake examiner or rubric section",
            r"(^|\n)\s*[\[(#*]*\s*(examiner'?s?|moderator'?s?|marker'?s?|teacher'?s?) "
            r"(note|comment|override|instruction)s?\b"
            r"|(^|\n)\s*(system|assistant)\s*:|\bnew (instructions|mark scheme|rubric)\b",
        ),
        ("prompt markup", r"<\|?(im_start|im_end|system|endoftext)\|?>|\[/?INST\]|<<<|>>>"),
    )
)
_HIDDEN_CHARS = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
_CONTROL_CHARS = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")


def injection_signals(essay: str) -> list[str]:
    """Reasons to suspect the essay tries to instruct the marker; empty when none."""
    signals = [label for label, pattern in _INJECTION_PATTERNS if pattern.search(essay)]
    if _HIDDEN_CHARS.search(essay):
        signals.append("zero-width or bidirectional control characters")
    if _CONTROL_CHARS.search(essay):
        signals.append("control characters")
    return signals


def word_count(essay: str) -> int:
    """Words as a reader would count them."""
    return len(re.findall(r"[^\W_]+(?:['\u2019-][^\W_]+)*", essay))
