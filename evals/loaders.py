"""Loaders for the human-marked corpora (read from a path; nothing is copied into the repo).

- ASAP-AES ``essay_set_N.tsv``: human = rater 1, human2 = rater 2, each on the rater scale
  (the resolved ``domain1_score`` is a sum or max of the two, so it is not on the scale a
  single marker, human or machine, uses). Every set has a scheme: 1 and 3-6 holistic, 2 two
  domains, 7 four traits, 8 six traits. Sets 3-6 answer a source text: the prompt and source
  are read from the corpus's docs folder at load time.
- ASAP++ trait scores (sets 1-2): one human per trait; essays joined from ASAP-AES by id.
- ELLIPSE: six analytic measures; the published scores average two raters in steps of 0.5, so
  they are rounded half up to the 1-5 scale (the raw value is kept in metadata).
"""

from __future__ import annotations

import csv
import sys
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path

from evals.dataset import Dataset, EvalItem
from schemas.scheme import MarkScheme
from service.errors import CallerError
from service.schemes import SchemeLibrary, builtin_dir

csv.field_size_limit(sys.maxsize)


def eval_schemes() -> SchemeLibrary:
    """Built-in schemes plus the eval corpora's schemes."""
    return SchemeLibrary([builtin_dir(), Path(str(resources.files("evals") / "schemes"))])


def _schemes_by_id(library: SchemeLibrary) -> dict[str, MarkScheme]:
    return {s.id: s for s in library.list()}


_HOLISTIC = {"overall": ("rater1_domain1", "rater2_domain1")}
_ASAP_COLUMNS: dict[int, dict[str, tuple[str, str]]] = {
    1: _HOLISTIC,
    3: _HOLISTIC,
    4: _HOLISTIC,
    5: _HOLISTIC,
    6: _HOLISTIC,
    2: {"writing": ("rater1_domain1", "rater2_domain1"), "conventions": ("rater1_domain2", "rater2_domain2")},
    7: {
        "ideas": ("rater1_trait1", "rater2_trait1"),
        "organization": ("rater1_trait2", "rater2_trait2"),
        "style": ("rater1_trait3", "rater2_trait3"),
        "conventions": ("rater1_trait4", "rater2_trait4"),
    },
    8: {
        name: (f"rater1_trait{n}", f"rater2_trait{n}")
        for n, name in enumerate(
            ("ideas", "organization", "voice", "word_choice", "sentence_fluency", "conventions"), start=1
        )
    },
}
_SOURCE_DEPENDENT = (3, 4, 5, 6)


def _section(lines: list[str], start: str, end: str) -> str:
    begin = lines.index(start) + 1
    return "\n".join(lines[begin : lines.index(end, begin)]).strip()


def source_dependent_question(folder: Path, essay_set: int) -> str:
    """Prompt plus source text for sets 3-6, read from the corpus's own docs (never stored here)."""
    doc = _require(folder / "docs" / f"essay_set_{essay_set}_readme_first.txt", f"the set {essay_set} ReadMeFirst text")
    lines = [line.rstrip() for line in doc.read_text(encoding="utf-8").splitlines()]
    try:
        source = _section(lines, "Source Essay", "Prompt")
        prompt = _section(lines, "Prompt", "Rubric Guidelines")
    except ValueError:
        raise CallerError(f"{doc}: expected 'Source Essay', 'Prompt' and 'Rubric Guidelines' sections") from None
    return f"{prompt}\n\nThe source text the students read:\n\n{source}"


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise CallerError(f"{what} not found at {path}; pass the folder that holds it with --path")
    return path


def _int(value: str, where: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        raise CallerError(f"{where}: {value!r} is not a score") from None


def load_asap(folder: Path, essay_set: int) -> Dataset:
    """ASAP-AES set ``essay_set`` with both raters."""
    if essay_set not in _ASAP_COLUMNS:
        raise CallerError(
            f"ASAP set {essay_set} has no draftmark scheme yet; sets with schemes: {sorted(_ASAP_COLUMNS)}"
        )
    path = _require(folder / f"essay_set_{essay_set}.tsv", f"ASAP-AES essay_set_{essay_set}.tsv")
    schemes = _schemes_by_id(eval_schemes())
    if essay_set in _SOURCE_DEPENDENT:
        key = f"asap-set-{essay_set}"
        schemes[key] = schemes[key].model_copy(update={"question": source_dependent_question(folder, essay_set)})
    columns = _ASAP_COLUMNS[essay_set]
    items = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            where = f"{path.name} essay {row['essay_id']}"
            items.append(
                EvalItem(
                    id=f"asap{essay_set}-{row['essay_id']}",
                    essay=row["essay"],
                    scheme_id=f"asap-set-{essay_set}",
                    human={ao: _int(row[a], where) for ao, (a, _b) in columns.items()},
                    human2={ao: _int(row[b], where) for ao, (_a, b) in columns.items()},
                    metadata={"resolved_score": row["domain1_score"], "essay_set": essay_set},
                )
            )
    dataset = Dataset(name=f"asap-set-{essay_set}", items=items, schemes=schemes)
    dataset.check()
    return dataset


_PP_TRAITS = ("content", "organization", "word_choice", "sentence_fluency", "conventions")


def load_asap_pp(folder: Path, essay_set: int) -> Dataset:
    """ASAP++ trait scores as per-trait objectives; ``folder`` holds ``asap-plus-plus/`` and ``asap-aes/``."""
    if essay_set not in (1, 2):
        raise CallerError("ASAP++ schemes exist for sets 1 and 2")
    scores = _require(folder / "asap-plus-plus" / "asap_pp_trait_scores.csv", "ASAP++ asap_pp_trait_scores.csv")
    essays_path = _require(folder / "asap-aes" / f"essay_set_{essay_set}.tsv", "ASAP-AES essays for the join")
    with essays_path.open(encoding="utf-8", newline="") as handle:
        essays = {row["essay_id"]: row["essay"] for row in csv.DictReader(handle, delimiter="\t")}
    items = []
    with scores.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["essay_set"] != str(essay_set) or row["essay_id"] not in essays:
                continue
            items.append(
                EvalItem(
                    id=f"asappp{essay_set}-{row['essay_id']}",
                    essay=essays[row["essay_id"]],
                    scheme_id=f"asap-pp-set-{essay_set}",
                    human={t: _int(row[t], f"ASAP++ essay {row['essay_id']}") for t in _PP_TRAITS},
                    metadata={"essay_set": essay_set},
                )
            )
    dataset = Dataset(name=f"asap-pp-set-{essay_set}", items=items, schemes=_schemes_by_id(eval_schemes()))
    dataset.check()
    return dataset


_ELLIPSE = {
    "cohesion": "Cohesion",
    "syntax": "Syntax",
    "vocabulary": "Vocabulary",
    "phraseology": "Phraseology",
    "grammar": "Grammar",
    "conventions": "Conventions",
}


def _half_up(value: str) -> int:
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def load_ellipse(folder: Path) -> Dataset:
    """ELLIPSE test split; ``folder`` holds ``ELLIPSE_Final_github_test.csv``."""
    path = _require(folder / "ELLIPSE_Final_github_test.csv", "ELLIPSE_Final_github_test.csv")
    items = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            items.append(
                EvalItem(
                    id=f"ellipse-{row['text_id_kaggle']}",
                    essay=row["full_text"],
                    scheme_id="ellipse-analytic",
                    human={ao: _half_up(row[col]) for ao, col in _ELLIPSE.items()},
                    metadata={f"raw_{ao}": float(row[col]) for ao, col in _ELLIPSE.items()}
                    | {"prompt": row.get("prompt")},
                )
            )
    dataset = Dataset(name="ellipse", items=items, schemes=_schemes_by_id(eval_schemes()))
    dataset.check()
    return dataset


def load_reference() -> Dataset:
    """The small reference set draftmark ships (essays on the seed question, marked by us)."""
    from evals.dataset import load_jsonl

    path = Path(str(resources.files("evals") / "data" / "reference-stalin.jsonl"))
    return load_jsonl(path, _schemes_by_id(eval_schemes()), name="reference-stalin")


def load_stalin_exemplars() -> Dataset:
    """The 24 marked Stalin scripts draftmark ships (written and marked by us) for calibration examples."""
    from evals.dataset import load_jsonl

    path = Path(str(resources.files("evals") / "data" / "stalin-exemplars.jsonl"))
    return load_jsonl(path, _schemes_by_id(eval_schemes()), name="stalin-exemplars")
