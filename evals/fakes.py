"""Fake markers for exercising the eval machinery: they know the human marks and distort them.

They exist so tests (and curious developers) can see that the report exposes bias and noise.
Their results say ``endpoint_kind="fake"``.
"""

from __future__ import annotations

import random
import re
from typing import Literal

from evals.dataset import Dataset
from service.llm.fake import FakeMarker, MarkPolicy

FakeKind = Literal["oracle", "biased", "noisy"]


def human_policy(dataset: Dataset, kind: FakeKind, seed: int = 0) -> MarkPolicy:
    """oracle: the human's mark; biased: one mark higher; noisy: the human's mark +-1 at random."""
    lookup = {_key(item.essay): item.human for item in dataset.items}
    rng = random.Random(seed)

    def policy(ao_id: str, low: int, high: int, essay: str) -> int:
        human = lookup.get(_key(essay), {}).get(ao_id)
        base = human if human is not None else (low + high) // 2
        if kind == "biased":
            base += 1
        elif kind == "noisy":
            base += rng.choice((-1, 0, 0, 1))
        return min(max(base, low), high)

    return policy


def _key(essay: str) -> str:
    """The essay's words, whether it was shown whole or as numbered sentences ("[S3] ...")."""
    return " ".join(re.sub(r"^\[S\d+\] ?", "", essay, flags=re.M).split())


def fake_marker(dataset: Dataset, kind: FakeKind, seed: int = 0) -> FakeMarker:
    """A FakeMarker driven by the dataset's human marks."""
    return FakeMarker(policy=human_policy(dataset, kind, seed), model_id=f"fake-{kind}")
