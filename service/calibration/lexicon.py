"""Word-list signals: how much of an essay is misspelt, and how common its words are.

Both come from one English word list with frequencies (pyspellchecker's, built from subtitles
and web text; no model, no network). They earn their place by measurement: on ASAP sets 1, 2 and
7 they rank essays beyond what length does (docs/CALIBRATION.md), and forward selection keeps
them only where they raise cross-validated agreement on a teacher's own scripts.

- ``misspelled_share``: the share of words, written in lower case, that are not in the list.
  Capitalised words are not checked: they are names (Trotsky, Zinoviev) as often as misspellings,
  and a scheme's names are not errors. Words with digits and ASAP's anonymised ``@PERSON1`` tags
  are not words here.
- ``mean_word_zipf``: the mean Zipf frequency (log10 of occurrences per billion words) of the
  known words of three or more letters: lower means rarer, more precise vocabulary.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spellchecker import SpellChecker

_ANONYMISED = re.compile(r"@[A-Za-z]+\d*")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
LEXICON_FEATURES = ("misspelled_share", "mean_word_zipf")


_LOADING = threading.Lock()


def _word_list() -> tuple[SpellChecker, float]:
    """The word list, loaded once per process (about a second).

    ``functools.cache`` alone let every thread that asked before the first load finished load it
    again: a batch's 64 concurrent markings loaded it over and over for its first tens of seconds.
    """
    with _LOADING:
        return _load_word_list()


@cache
def _load_word_list() -> tuple[SpellChecker, float]:
    from spellchecker import SpellChecker

    checker = SpellChecker(language="en", distance=1)
    return checker, float(sum(checker.word_frequency.dictionary.values()))


def lexicon_signals(text: str) -> dict[str, float]:
    """``misspelled_share`` and ``mean_word_zipf`` of ``text`` (0.0 for a text without words)."""
    checker, total = _word_list()
    raw = [w.strip("'’-") for w in _WORD.findall(_ANONYMISED.sub(" ", text))]
    raw = [w for w in raw if w.isalpha()]
    if not raw:
        return {"misspelled_share": 0.0, "mean_word_zipf": 0.0}
    lower = [w for w in raw if w[0].islower()]
    unknown = checker.unknown(lower)
    misspelled = sum(1 for w in lower if w.lower() in unknown)  # unknown() answers in lower case
    frequencies = checker.word_frequency.dictionary
    known = [frequencies[w] for w in (w.lower() for w in raw) if len(w) >= 3 and frequencies.get(w, 0) > 0]
    zipf = sum(math.log10(f / total * 1e9) for f in known) / len(known) if known else 0.0
    return {"misspelled_share": misspelled / len(raw), "mean_word_zipf": zipf}


def general_share(word: str) -> float:
    """How often ``word`` occurs in general English (its share of the word list's counts; add-one smoothed)."""
    checker, total = _word_list()
    counts = checker.word_frequency.dictionary
    return (counts.get(word, 0) + 1) / total


def english_words() -> Mapping[str, int]:
    """The English word list: each word (lower case) with its count (for many look-ups in a row)."""
    checker, _ = _word_list()
    return checker.word_frequency.dictionary
