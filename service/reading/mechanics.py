"""Mechanics worth telling a student: words run together ("Stalinstayed")."""

from __future__ import annotations

import re
from collections import Counter

from service.calibration.lexicon import english_words

_TOKEN = re.compile(r"[A-Za-z]{7,}")
MIN_PART = 3


def run_together(essay: str) -> list[str]:
    """Tokens not in the word list that split into a name the essay uses and a word, or into two words.

    "Stalinstayed" → Stalin + stayed (Stalin is a name elsewhere in the essay). Each is listed once,
    in the order of the essay.
    """
    capitalised = Counter(re.findall(r"\b[A-Z][a-z]{2,}\b", essay))
    names = {w for w, n in capitalised.items() if n >= 2}  # a name the essay uses, not a one-off slip
    known = english_words()
    found: list[str] = []
    for token in _TOKEN.findall(essay):
        if token in found or token.lower() in known:
            continue
        for cut in range(MIN_PART, len(token) - MIN_PART + 1):
            head, tail = token[:cut], token[cut:]
            if not tail.islower():
                continue
            if (head in names or (head.islower() and head in known and len(head) >= 4)) and tail in known:
                found.append(token)
                break
    return found
