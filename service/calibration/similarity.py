"""Similarity to the teacher's marked scripts: the marks of the nearest exemplars, by TF-IDF cosine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from service.calibration.text import content_words

NEIGHBOURS = 5


def _cosines(queries: Sequence[str], references: Sequence[str]) -> NDArray[np.float64]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=content_words, sublinear_tf=True)
    try:
        ref = vectorizer.fit_transform(references)
    except ValueError:  # no content words at all in the references
        return np.zeros((len(queries), len(references)))
    query = vectorizer.transform(queries)
    return np.asarray((query @ ref.T).toarray(), dtype=float)


def cosines(queries: Sequence[str], references: Sequence[str]) -> NDArray[np.float64]:
    """TF-IDF cosine of each query with each reference (one vectoriser fitted on the references)."""
    if not references:
        return np.zeros((len(queries), 0))
    return _cosines(queries, references)


def neighbour_mark(row: NDArray[np.float64], marks: Sequence[int], *, same: int = -1) -> float:
    """The similarity-weighted mean mark of the ``NEIGHBOURS`` references nearest by cosines ``row``.

    ``same`` is the query's own index among the references (excluded, so a training script never
    sees its own mark), or -1.
    """
    if row.size == 0:
        return 0.0
    row = row.copy()
    if same >= 0:
        row[same] = -1.0
    order = np.argsort(-row)[:NEIGHBOURS]
    weights = np.clip(row[order], 0.0, None)
    if weights.sum() <= 1e-9:
        return float(np.mean(marks))
    return float(np.dot(weights, np.asarray(marks, dtype=float)[order]) / weights.sum())


def similarity_scores(
    queries: Sequence[str], references: Sequence[str], marks: Sequence[int], *, same: Sequence[int]
) -> list[float]:
    """For each query, ``neighbour_mark`` over its cosines with the references (``same``: see there)."""
    if not references:
        return [0.0] * len(queries)
    return [neighbour_mark(row, marks, same=same[i]) for i, row in enumerate(cosines(queries, references))]
