"""Optional PII redaction before text leaves the process (``DRAFTMARK_REDACT=1``).

Emails, phone numbers, candidate numbers, self-identified names ("My name is ...") and any
caller-supplied terms become placeholders such as ``[EMAIL_1]``. The mapping stays in memory
in this process; quotes and feedback are restored before the result is returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PATTERNS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("EMAIL", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), 0),
    (
        "PHONE",
        re.compile(r"(?<![\w/])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)[\s.-]?)?\d{2,5}(?:[\s.-]?\d{2,5}){2,4}(?![\w/])"),
        0,
    ),
    ("CANDIDATE", re.compile(r"(?i)\bcandidate\s*(?:no\.?|number|num|#)?\s*[:#]?\s*([A-Z]{0,2}\d{3,10})\b"), 1),
    (
        "NAME",
        re.compile(
            r"(?:\b[Mm]y name is|\b[Nn]ame\s*:|\b[Ss]tudent\s*:|\b[Ww]ritten by)\s+"
            r"([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+){0,2})"
        ),
        1,
    ),
)
_PLACEHOLDER = re.compile(r"\[(EMAIL|PHONE|CANDIDATE|NAME|TERM)_\d+\]")


@dataclass
class Redaction:
    """The redacted text and the placeholder -> original mapping (never sent anywhere)."""

    text: str
    mapping: dict[str, str] = field(default_factory=dict)

    def restore(self, text: str) -> str:
        """Put the original values back."""
        return _PLACEHOLDER.sub(lambda m: self.mapping.get(m.group(0), m.group(0)), text)


def _digits(value: str) -> int:
    return sum(ch.isdigit() for ch in value)


def redact(text: str, terms: tuple[str, ...] = ()) -> Redaction:
    """Replace personal data in ``text`` with stable placeholders."""
    mapping: dict[str, str] = {}
    reverse: dict[str, str] = {}
    counters: dict[str, int] = {}

    def placeholder(kind: str, value: str) -> str:
        if value not in reverse:
            counters[kind] = counters.get(kind, 0) + 1
            token = f"[{kind}_{counters[kind]}]"
            reverse[value] = token
            mapping[token] = value
        return reverse[value]

    out = text
    for term in sorted((t.strip() for t in terms if t.strip()), key=len, reverse=True):
        out = re.sub(re.escape(term), lambda m: placeholder("TERM", m.group(0)), out, flags=re.IGNORECASE)
    for kind, pattern, group in _PATTERNS:

        def replace(match: re.Match[str], kind: str = kind, group: int = group) -> str:
            value = match.group(group)
            if kind == "PHONE" and _digits(value) < 9:
                return match.group(0)
            start, end = match.span(group)
            offset = match.start(0)
            whole = match.group(0)
            return whole[: start - offset] + placeholder(kind, value) + whole[end - offset :]

        out = pattern.sub(replace, out)
    return Redaction(text=out, mapping=mapping)
