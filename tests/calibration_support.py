"""Synthetic marked scripts with known structure, for calibration tests."""

from __future__ import annotations

import csv
import io
import random
from typing import Literal

from schemas.scheme import MarkScheme
from service.calibration.fit import Script

TOPIC = [
    "uniforms",
    "expression",
    "identity",
    "equality",
    "discipline",
    "bullying",
    "individuality",
    "conformity",
    "community",
    "policy",
    "students",
    "creativity",
    "pressure",
    "families",
    "comfortable",
    "independence",
    "respect",
    "environment",
    "fairness",
]
RICH = [
    "consequently",
    "nevertheless",
    "substantial",
    "demonstrates",
    "perspective",
    "significant",
    "alternatively",
    "furthermore",
    "particularly",
    "comprehensive",
    "undermines",
    "acknowledges",
    "persuasive",
    "encouraging",
]
PLAIN = ["the", "and", "it", "was", "so", "they", "we", "is", "good", "bad", "very", "a", "to", "of", "in", "that"]


Driver = Literal["length", "vocabulary", "spelling"]


def synthetic_essay(mark: int, rng: random.Random, driver: Driver) -> str:
    """An on-topic essay whose mark is carried by its length, its vocabulary or its spelling (length then random)."""
    misspelt_share = 0.0
    if driver == "length":
        n_words, rich_share = 60 + 45 * mark + rng.randint(-15, 15), 0.15
    elif driver == "vocabulary":
        n_words, rich_share = rng.randint(150, 330), 0.03 + 0.07 * mark
    else:
        n_words, rich_share, misspelt_share = rng.randint(150, 330), 0.15, 0.08 * (6 - mark)
    tokens = []
    for _ in range(n_words):
        roll = rng.random()
        if roll < rich_share:
            tokens.append(rng.choice(RICH))
        elif roll < rich_share + 0.35:
            tokens.append(rng.choice(TOPIC))
        else:
            tokens.append(rng.choice(PLAIN))
        if misspelt_share and len(tokens[-1]) >= 5 and rng.random() < misspelt_share:  # two letters swapped
            word = tokens[-1]
            tokens[-1] = word[0] + word[2] + word[1] + word[3:]
    sentences = [" ".join(tokens[i : i + 12]).capitalize() + "." for i in range(0, len(tokens), 12)]
    paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
    return "\n\n".join(paragraphs)


def synthetic_scripts(scheme: MarkScheme, n: int, seed: int, driver: Driver) -> list[Script]:
    """``n`` scripts for a one-objective scheme, marks spread over its range."""
    (ao,) = scheme.objectives
    rng = random.Random(seed)
    scripts = []
    for i in range(n):
        mark = ao.min_marks + i % (ao.max_marks - ao.min_marks + 1)
        scripts.append(Script(essay=synthetic_essay(mark, rng, driver), marks={ao.id: mark}))
    return scripts


def marked_csv(scheme: MarkScheme, n: int, seed: int, prefix: str = "stu") -> bytes:
    """A one-objective import file (``student``, ``essay``, ``mark``) of ``n`` vocabulary-driven scripts."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student", "essay", "mark"])
    for i, script in enumerate(synthetic_scripts(scheme, n, seed, "vocabulary")):
        writer.writerow([f"{prefix}-{i}", script.essay, script.marks["overall"]])
    return out.getvalue().encode()
