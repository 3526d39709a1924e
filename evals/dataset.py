"""The eval dataset format (JSONL, one item a line) and stratified sampling."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from schemas.marked import EvalItem as EvalItem  # re-exported: evals name it from here
from schemas.scheme import MarkScheme
from service.errors import CallerError
from service.validation import format_validation_error


@dataclass
class Dataset:
    """Items plus the schemes they refer to."""

    name: str
    items: list[EvalItem]
    schemes: dict[str, MarkScheme] = field(default_factory=dict)

    def scheme_for(self, item: EvalItem) -> MarkScheme:
        """The item's scheme."""
        try:
            return self.schemes[item.scheme_id]
        except KeyError:
            raise CallerError(f"item {item.id}: scheme {item.scheme_id!r} is not in the dataset's schemes") from None

    def check(self) -> None:
        """Every item's marks name exactly its scheme's objectives, inside their ranges."""
        for item in self.items:
            scheme = self.scheme_for(item)
            for label, marks in (("human", item.human), ("human2", item.human2)):
                if marks is None:
                    continue
                if set(marks) != set(scheme.objective_ids):
                    raise CallerError(
                        f"item {item.id}: {label} marks {sorted(marks)} must cover {list(scheme.objective_ids)}"
                    )
                for ao_id, mark in marks.items():
                    ao = scheme.objective(ao_id)
                    if not ao.min_marks <= mark <= ao.max_marks:
                        raise CallerError(
                            f"item {item.id}: {label} {ao_id} mark {mark} outside {ao.min_marks}-{ao.max_marks}"
                        )


def load_jsonl(path: Path, schemes: dict[str, MarkScheme], name: str | None = None) -> Dataset:
    """Read a JSONL dataset; errors name the line."""
    items: list[EvalItem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(EvalItem.model_validate(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise CallerError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        except ValidationError as exc:
            raise CallerError(f"{path}:{number}: " + "; ".join(format_validation_error(exc))) from exc
    dataset = Dataset(name=name or path.stem, items=items, schemes=schemes)
    dataset.check()
    return dataset


def stratified_sample(items: list[EvalItem], limit: int | None, seed: int) -> list[EvalItem]:
    """Up to ``limit`` items spread across the human-total range (round-robin over score strata)."""
    if limit is None or limit >= len(items):
        return list(items)
    rng = random.Random(seed)
    strata: dict[int, list[EvalItem]] = defaultdict(list)
    for item in items:
        strata[item.human_total].append(item)
    for group in strata.values():
        rng.shuffle(group)
    chosen: list[EvalItem] = []
    keys = sorted(strata)
    while len(chosen) < limit:
        for key in keys:
            if strata[key] and len(chosen) < limit:
                chosen.append(strata[key].pop())
    return sorted(chosen, key=lambda i: i.id)


def random_sample(items: list[EvalItem], limit: int | None, seed: int) -> list[EvalItem]:
    """Up to ``limit`` items drawn at random (the population's score distribution, population-like kappas)."""
    if limit is None or limit >= len(items):
        return list(items)
    return sorted(random.Random(seed).sample(items, limit), key=lambda i: i.id)
