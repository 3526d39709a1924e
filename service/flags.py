"""Checks computed in code, never left to the model: injection signs and length."""

from __future__ import annotations

import re

# Each rule: a label, the lowercase words a match can start with, and a pattern matched (on the
# lowercased essay) only where one of those words occurs. Scanning for plain words first is ~10x
# faster than running alternation-led regexes over the whole essay.
_RULES: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (label, tuple(starts.split("|")), re.compile(pattern))
    for label, starts, pattern in (
        (
            "asks to ignore instructions",
            "ignore|disregard|forget|override",
            r"(ignore|disregard|forget|override)\s+((all|any|the|your|my|previous|prior|above|these|those|"
            r"earlier|system|marking|original|given)\s+)*(instructions?|mark ?schemes?|marking scheme|rubrics?|"
            r"criteria|prompts?|guidelines|rules above)\b",
        ),
        (
            "asks for marks",
            "award|give|assign|grant",
            r"(award|give|assign|grant)\b.{0,30}"
            r"(\b\d+ ?/ ?\d+\b|\b(full|maximum|max|top|highest|all( the)?|\d+)\s*(marks?|points?|score|grade|level)\b)",
        ),
        (
            "claims a score",
            "this essay|the essay|this answer|the answer|this script|the script|this response|the response",
            r"(this|the) (essay|answer|script|response) "
            r"(deserves|should (get|receive|be awarded)|must (get|receive|be awarded))\b",
        ),
        (
            "addresses the model",
            "you are|as |dear|attention|note to",
            r"(you are|as) (an? )?(ai|assistant|language model|llm|chatgpt|gpt)\b"
            r"|(dear|attention|note to( the)?) (ai|model|marker|grader|examiner|assistant)\b",
        ),
        ("fake examiner or rubric section", "new ", r"new (instructions|mark scheme|rubric)\b"),
    )
)
_FAKE_SECTION = re.compile(
    r"[ \t]*[\[(#*]*[ \t]*((examiner|moderator|marker|teacher)('?s)? (note|comment|override|instruction)s?\b"
    r"|(system|assistant)[ \t]*:)"
)
_MARKUP = re.compile(r"<\|?(im_start|im_end|system|endoftext)\|?>|\[/?inst\]|<<<|>>>")
_HIDDEN_CHARS = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
_CONTROL_CHARS = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")


def _matches_at_a_start(text: str, starts: tuple[str, ...], pattern: re.Pattern[str]) -> bool:
    for start in starts:
        at = text.find(start)
        while at >= 0:
            if (at == 0 or not text[at - 1].isalnum()) and pattern.match(text, at):
                return True
            at = text.find(start, at + 1)
    return False


def injection_signals(essay: str) -> list[str]:
    """Reasons to suspect the essay tries to instruct the marker; empty when none."""
    lowered = essay.lower()
    signals = [label for label, starts, pattern in _RULES if _matches_at_a_start(lowered, starts, pattern)]
    if "fake examiner or rubric section" not in signals and any(
        _FAKE_SECTION.match(line) for line in lowered.splitlines()
    ):
        signals.append("fake examiner or rubric section")
    if _MARKUP.search(lowered):
        signals.append("prompt markup")
    if _HIDDEN_CHARS.search(essay):
        signals.append("zero-width or bidirectional control characters")
    if _CONTROL_CHARS.search(essay):
        signals.append("control characters")
    return signals


_COUNTED_WORD = re.compile(r"\S*?[^\W_]\S*")
"""A white-space-separated token with a letter or digit in it (``[^\\W_]`` matches what str.isalnum accepts)."""


def word_count(essay: str) -> int:
    """Words as a reader would count them: tokens between white space with a letter or digit in them."""
    return len(_COUNTED_WORD.findall(essay))
