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


def similarity_scores(
    queries: Sequence[str], references: Sequence[str], marks: Sequence[int], *, same: Sequence[int]
) -> list[float]:
    """For each query, the similarity-weighted mean mark of its ``NEIGHBOURS`` nearest references.

    ``same[i]`` is the index of query ``i`` among the references (excluded from its own
    neighbours, so a training script never sees its own mark), or -1.
    """
    if not references:
        return [0.0] * len(queries)
    sims = _cosines(queries, references)
    fallback = float(np.mean(marks))
    out = []
    for i, row in enumerate(sims):
        row = row.copy()
        if same[i] >= 0:
            row[same[i]] = -1.0
        order = np.argsort(-row)[:NEIGHBOURS]
        weights = np.clip(row[order], 0.0, None)
        if weights.sum() <= 1e-9:
            out.append(fallback)
        else:
            out.append(float(np.dot(weights, np.asarray(marks, dtype=float)[order]) / weights.sum()))
    return out


def nearest_similarity(query: str, references: Sequence[str]) -> float:
    """The highest cosine between ``query`` and any reference (how like the exemplars it is)."""
    if not references:
        return 0.0
    return float(_cosines([query], references).max())
