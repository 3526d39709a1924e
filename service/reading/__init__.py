"""A scheme-grounded reading of an essay in code (``read_essay``): coverage, structure, mechanics."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.reading import Reading
from schemas.scheme import MarkScheme
from schemas.sentences import Sentence, split_sentences
from service.reading.coverage import point_index
from service.reading.mechanics import run_together
from service.reading.structure import conclusion, latest_year, period


def read_essay(essay: str, scheme: MarkScheme, sentences: Sequence[Sentence] | None = None) -> Reading:
    """What code finds in ``essay`` against ``scheme`` (milliseconds; no model).

    ``sentences``: the essay's ``split_sentences``, when the caller has them already.
    """
    if sentences is None:
        sentences = split_sentences(essay)
    span = period(scheme)
    latest = latest_year(sentences, scheme)
    return Reading(
        coverage=point_index(scheme).coverage(scheme, sentences),
        conclusion=conclusion(sentences),
        period=span,
        latest_year=latest,
        stops_short=span is not None and latest is not None and latest < span[1] - 1,
        run_together=run_together(essay),
    )


__all__ = ["read_essay"]
