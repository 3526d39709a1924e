"""Text the model copied instead of writing about the essay: the prompt's example, or the scheme's descriptors.

A small model shown a one-shot format example (an answer about 1914) may hand it back word for
word as feedback on an essay about Stalin; it may also restate a level descriptor as if it said
something about the essay. Both are invalid output: re-asked like a misquote, and left out of the
result (and flagged) when the re-asks run out (``schemas.draft.without``).

Copying is a shared run of words, never a topic: a run counts only when it is absent from the
essay and, for the example, from the scheme (a scheme about 1914 may use the example's words).
"""

from __future__ import annotations

import re
from functools import lru_cache

from schemas.draft import Fault, MarkingDraft
from schemas.scheme import MarkScheme
from service.prompting import PromptTemplate

EXAMPLE_RUN = 5
"""Words in a row shared with the format example that count as copying it."""
DESCRIPTOR_RUN = 8
"""Words in a row shared with a level descriptor that count as restating it."""

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
Gram = tuple[str, ...]


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def _grams(text: str, n: int) -> set[Gram]:
    words = _words(text)
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _names(text: str) -> set[str]:
    """Capitalised words not at a sentence's start, and numbers: what marks a passage as about something."""
    found: set[str] = set()
    for sentence in re.split(r"(?<=[.!?;:])\s+", text):
        words = _WORD.findall(sentence)
        found |= {w.lower() for w in words[1:] if w[0].isupper() and not w.isupper()}
        found |= {w for w in words if w.isdigit()}
    return found


def _scheme_text(scheme: MarkScheme) -> str:
    parts = [scheme.title, scheme.question, scheme.guidance or ""]
    for ao in scheme.objectives:
        parts += [ao.name, ao.description or "", *ao.indicative_content, *(lv.descriptor for lv in ao.levels)]
    return "\n".join(parts)


@lru_cache(maxsize=64)
def _sources(prompt: PromptTemplate, scheme: MarkScheme) -> tuple[set[Gram], set[str], set[Gram]]:
    """The example's runs and names (less what the scheme itself says), and the descriptors' runs."""
    example = prompt.example(scheme)
    prose = "\n".join(example.prose)
    scheme_text = _scheme_text(scheme)
    descriptors = set().union(*(_grams(lv.descriptor, DESCRIPTOR_RUN) for ao in scheme.objectives for lv in ao.levels))
    scheme_words = set(_words(scheme_text))
    return (
        _grams(prose, EXAMPLE_RUN) - _grams(scheme_text, EXAMPLE_RUN),
        (_names(prose) | _names(example.question)) - scheme_words,
        descriptors,
    )


class _EssayWords:
    """The essay's words and runs of words, each worked out only when a field shares something with a source.

    Almost every field shares nothing with the example or the descriptors, and then the essay's
    runs are never needed.
    """

    def __init__(self, essay: str) -> None:
        self._essay = essay
        self._words: set[str] | None = None
        self._runs: dict[int, set[Gram]] = {}

    def absent_words(self, found: set[str]) -> set[str]:
        """The words in ``found`` that the essay does not use."""
        if not found:
            return found
        if self._words is None:
            self._words = set(_words(self._essay))
        return found - self._words

    def absent_runs(self, found: set[Gram], run: int) -> set[Gram]:
        """The runs of ``run`` words in ``found`` that the essay does not have."""
        if not found:
            return found
        if run not in self._runs:
            self._runs[run] = _grams(self._essay, run)
        return found - self._runs[run]


Field = tuple[str, str, str]
"""(where, field, text): an objective id and "rationale", or a top-level field's name twice."""


def draft_fields(draft: MarkingDraft) -> list[Field]:
    """The text fields of a draft a teacher or student reads."""
    fields: list[Field] = [(ao_id, "rationale", d.rationale) for ao_id, d in draft.objectives.items()]
    return fields + [
        (name, name, getattr(draft, name)) for name in ("what_went_well", "even_better_if", "teacher_notes")
    ]


def copy_faults(draft: MarkingDraft, prompt: PromptTemplate, scheme: MarkScheme, essay: str) -> list[Fault]:
    """Each text field of ``draft`` that repeats the prompt's format example or restates a level descriptor."""
    return text_faults(draft_fields(draft), prompt, scheme, essay)


def text_faults(fields: list[Field], prompt: PromptTemplate, scheme: MarkScheme, essay: str) -> list[Fault]:
    """``copy_faults`` for any text fields (a stored result's, too)."""
    example_grams, example_names, descriptor_grams = _sources(prompt, scheme)
    in_essay = _EssayWords(essay)
    faults: list[Fault] = []
    for where, field, text in fields:
        label = f"{where}: the rationale" if field == "rationale" else field
        copied = sorted(in_essay.absent_runs(_grams(text, EXAMPLE_RUN) & example_grams, EXAMPLE_RUN))
        names = sorted(in_essay.absent_words((_names(text) | {w for w in _words(text) if w.isdigit()}) & example_names))
        if copied or names:
            shown = " ".join(copied[0]) if copied else ", ".join(names)
            faults.append(
                Fault(
                    where,
                    f"{label} repeats the answer-format example ({shown!r}), which is about another question; "
                    "write about this essay in your own words",
                    field=field,
                )
            )
            continue
        restated = sorted(in_essay.absent_runs(_grams(text, DESCRIPTOR_RUN) & descriptor_grams, DESCRIPTOR_RUN))
        if restated:
            faults.append(
                Fault(
                    where,
                    f"{label} restates the mark scheme's descriptor ({' '.join(restated[0])!r}); "
                    "say what this essay does or misses",
                    field=field,
                )
            )
    return faults
