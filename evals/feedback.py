"""``draftmark eval feedback``: is the feedback true about the essay, and does it name what it misses (issue 22).

The 30 Stalin scripts draftmark ships (the 6 of the reference set and the 24 marked scripts) are
annotated by hand in ``evals/data/feedback-annotations.jsonl``: for every indicative point of every
objective, addressed or not (with the sentences that show it), whether the essay ends with a
concluding judgement, and whether it stops before the mid-1920s. Each script is marked through
``mark_essay`` (the one pipeline) and its result is held to those annotations:

- **coverage detection**: the reading's addressed points against the annotation (precision, recall, F1);
- **conclusion / latest year**: the reading's structure findings against the annotation (the latest
  year the essay's own narrative reaches, which decides whether it stops short of the period);
- **evidence**: quotes from the title or a copy of the question (target 0), and quotes among the
  annotated sentences of that objective's addressed points (relevance, where it has any);
- **facts**: the share of rationale and feedback sentences that name something specific to this
  essay (an indicative point by name, as ``service.reading.feedback.mentions`` matches it with the
  question's own words aside; a year the essay uses; six or more of its words in order; or a
  structural finding the annotation confirms); the rest are generic;
- **even better if**: names a point the essay really misses, or asks for the missing conclusion
  or the later period where the annotation says so;
- **what went well**: its claims are true (points named are addressed, a praised conclusion exists);
- **false praise**: "comprehensive / excellent / detailed ..." on scripts a human put in the bottom half.

The matching rules are plain code below (``mentions``, ``names_fact``), the same for every model, so
figures compare across models and prompt versions. Results are cached per script in ``--out``
(``results.jsonl``), so a long run on the embedded model resumes.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from evals.dataset import EvalItem
from evals.loaders import load_reference, load_stalin_exemplars
from schemas.result import MarkingResult
from schemas.scheme import MarkScheme
from service.llm.port import LLM
from service.pipeline import mark_essay
from service.reading.feedback import PRAISE, mentions, question_terms, quotes_essay
from service.settings import Settings

ANNOTATIONS = Path(__file__).parent / "data" / "feedback-annotations.jsonl"
RESULTS = "results.jsonl"

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+")
_YEAR = re.compile(r"\b(1[89]\d\d)\b")
_CONCLUSION_ASK = re.compile(r"\b(conclu\w*|judge?ment|weigh\w*|which (?:factor|way|reason) mattered)\b", re.I)
_LATER_ASK = re.compile(r"\b(carry|go on|continue|beyond|later|after|up to|through to|until|to 192[5-9])\b", re.I)


class PointMark(BaseModel):
    """One indicative point of one objective, as annotated."""

    index: int
    addressed: bool
    sentences: list[str]


class Annotation(BaseModel):
    """A script's hand annotation."""

    id: str
    points: dict[str, list[PointMark]]
    conclusion: bool
    conclusion_quote: str | None = None
    latest_year: int | None = None
    stops_short: bool
    note: str = ""


def load_annotations(path: Path = ANNOTATIONS) -> dict[str, Annotation]:
    """The annotations by script id."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {a.id: a for a in (Annotation.model_validate(r) for r in rows)}


def scripts() -> list[EvalItem]:
    """The annotated scripts: the reference set, then the 24 marked scripts."""
    return [*load_reference().items, *load_stalin_exemplars().items]


def _normal_words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def years_named(sentence: str, essay: str, question: str) -> set[str]:
    """Years the sentence names that the essay uses and the question does not."""
    return set(_YEAR.findall(sentence)) & set(_YEAR.findall(essay)) - set(_YEAR.findall(question))


@dataclass(frozen=True)
class Context:
    """What a feedback sentence is checked against: the essay, its scheme and its annotation."""

    essay: str
    scheme: MarkScheme
    annotation: Annotation

    @property
    def ignore(self) -> frozenset[str]:
        """The question's own words name nothing in particular."""
        return question_terms(self.scheme)

    def points(self, addressed: bool | None = None) -> list[str]:
        """The scheme's indicative points, optionally only those the annotation marks (not) addressed."""
        out = []
        for ao in self.scheme.objectives:
            for mark in self.annotation.points.get(ao.id, []):
                if addressed is None or mark.addressed == addressed:
                    out.append(ao.indicative_content[mark.index])
        return out


def names_fact(sentence: str, ctx: Context) -> bool:
    """The sentence names something specific to this essay (see the module docstring)."""
    if any(mentions(sentence, p, ctx.ignore) for p in ctx.points()):
        return True
    if years_named(sentence, ctx.essay, ctx.scheme.question) or quotes_essay(sentence, ctx.essay):
        return True
    return not ctx.annotation.conclusion and bool(_CONCLUSION_ASK.search(sentence))


def targets_missing(ebi: str, ctx: Context) -> bool:
    """'Even better if' asks for a point the essay misses, its missing conclusion, or the period it stops short of."""
    named = [p for p in ctx.points() if mentions(ebi, p, ctx.ignore)]
    if any(p in ctx.points(addressed=False) for p in named):
        return True
    if named:
        return False  # it names only points the essay already makes
    if not ctx.annotation.conclusion and _CONCLUSION_ASK.search(ebi):
        return True
    return ctx.annotation.stops_short and bool(_LATER_ASK.search(ebi))


def well_claims(www: str, ctx: Context) -> tuple[int, int]:
    """(true, all) checkable claims in 'what went well': points named, a praised conclusion, quoted words."""
    true = total = 0
    for point in ctx.points():
        if mentions(www, point, ctx.ignore):
            total += 1
            true += point in ctx.points(addressed=True)
    if _CONCLUSION_ASK.search(www) and not re.search(r"\b(no|not|without|lacks?)\b", www, re.I):
        total += 1
        true += ctx.annotation.conclusion
    if quotes_essay(www, ctx.essay):
        total += 1
        true += 1
    return true, total


def sentences_of(text: str) -> list[str]:
    """Sentences of a model-written field (simple: ., ! or ? followed by a space)."""
    # Not after "e.g." or "i.e.": an abbreviation ends no sentence.
    parts = re.split(r"(?<![. ][egi]\.[gei]\.)(?<=[.!?])\s+", text.strip())
    return [p.strip() for p in parts if len(p.strip()) > 2]


def _norm(text: str) -> str:
    return " ".join(_normal_words(text))


def _from_prompt(quote: str, essay: str, question: str) -> bool:
    """The quote is the essay's title line or a copy of the question."""
    first = essay.strip().splitlines()[0].strip() if essay.strip() else ""
    heading = len(first.split()) <= 20 and not first.endswith((".", "!", "?", '"', "”"))
    title = _norm(first) if heading else ""
    q, t = _norm(question), _norm(quote)
    return bool(t) and (t == title or t in q or (len(q) > 20 and q in t))


def score_script(result: MarkingResult, item: EvalItem, scheme: MarkScheme, annotation: Annotation) -> dict[str, Any]:
    """Every per-script figure the report aggregates."""
    ctx = Context(item.essay, scheme, annotation)
    found = {c.ao_id: {p.point for p in c.addressed} for c in (result.reading.coverage if result.reading else [])}
    tp = fp = fn = 0
    for ao in scheme.objectives:
        for mark in annotation.points.get(ao.id, []):
            said = ao.indicative_content[mark.index] in found.get(ao.id, set())
            tp += said and mark.addressed
            fp += said and not mark.addressed
            fn += (not said) and mark.addressed
    evidence = [(m.ao_id, e.quote) for m in result.ao_marks for e in m.evidence]
    relevant = checked = 0
    for ao_id, quote in evidence:
        shown = {_norm(s) for mark in annotation.points.get(ao_id, []) if mark.addressed for s in mark.sentences}
        if shown:
            checked += 1
            relevant += any(_norm(quote) in s or s in _norm(quote) for s in shown)
    texts = [m.rationale for m in result.ao_marks] + [result.feedback.what_went_well, result.feedback.even_better_if]
    sentences = [s for t in texts for s in sentences_of(t)]
    true_claims, claims = well_claims(result.feedback.what_went_well, ctx)
    bottom_half = sum(item.human.values()) * 2 <= scheme.total_marks
    praise = [t for t in texts if PRAISE.search(t)]
    reading = result.reading
    return {
        "id": item.id,
        "human_total": sum(item.human.values()),
        "total": result.total,
        "coverage": {"tp": tp, "fp": fp, "fn": fn},
        "conclusion_right": (reading.conclusion is not None) == annotation.conclusion if reading else None,
        "latest_year_right": reading.latest_year == annotation.latest_year if reading else None,
        "evidence": len(evidence),
        "evidence_from_prompt": sum(_from_prompt(q, item.essay, scheme.question) for _, q in evidence),
        "evidence_checked": checked,
        "evidence_relevant": relevant,
        "sentences": len(sentences),
        "sentences_with_fact": sum(names_fact(s, ctx) for s in sentences),
        "ebi_targets_missing": targets_missing(result.feedback.even_better_if, ctx),
        "www_claims": claims,
        "www_true": true_claims,
        "www_names_fact": names_fact(result.feedback.what_went_well, ctx),
        "bottom_half": bottom_half,
        "false_praise": bool(praise) and bottom_half,
        "what_went_well": result.feedback.what_went_well,
        "even_better_if": result.feedback.even_better_if,
        "flags": [str(f) for f in result.flags],
        "latency_s": result.provenance.latency_ms / 1000 if result.provenance.latency_ms else None,
    }


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The report's figures over the scripts that finished."""
    tp = sum(r["coverage"]["tp"] for r in rows)
    fp = sum(r["coverage"]["fp"] for r in rows)
    fn = sum(r["coverage"]["fn"] for r in rows)
    precision, recall = _share(tp, tp + fp), _share(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    latencies = [r["latency_s"] for r in rows if r["latency_s"] is not None]
    return {
        "scripts": len(rows),
        "coverage_precision": precision,
        "coverage_recall": recall,
        "coverage_f1": f1,
        "conclusion_accuracy": _share(sum(bool(r["conclusion_right"]) for r in rows), len(rows)),
        "latest_year_accuracy": _share(sum(bool(r["latest_year_right"]) for r in rows), len(rows)),
        "evidence_from_prompt": sum(r["evidence_from_prompt"] for r in rows),
        "evidence_relevance": _share(
            sum(r["evidence_relevant"] for r in rows), sum(r["evidence_checked"] for r in rows)
        ),
        "sentences_with_fact": _share(sum(r["sentences_with_fact"] for r in rows), sum(r["sentences"] for r in rows)),
        "generic_rate": _share(
            sum(r["sentences"] - r["sentences_with_fact"] for r in rows), sum(r["sentences"] for r in rows)
        ),
        "ebi_targets_missing": _share(sum(r["ebi_targets_missing"] for r in rows), len(rows)),
        "www_claims_true": _share(sum(r["www_true"] for r in rows), sum(r["www_claims"] for r in rows)),
        "www_names_fact": _share(sum(r["www_names_fact"] for r in rows), len(rows)),
        "false_praise": sum(r["false_praise"] for r in rows),
        "bottom_half_scripts": sum(r["bottom_half"] for r in rows),
        "median_latency_s": statistics.median(latencies) if latencies else None,
    }


TARGETS: dict[str, tuple[str, float]] = {
    "coverage_f1": (">=", 0.8),
    "evidence_from_prompt": ("<=", 0),
    "sentences_with_fact": (">=", 0.9),
    "ebi_targets_missing": (">=", 0.9),
    "false_praise": ("<=", 0),
}


def verdicts(summary: dict[str, Any]) -> dict[str, bool | None]:
    """Each issue 22 target: met, not met, or unmeasured."""
    out: dict[str, bool | None] = {}
    for key, (op, bound) in TARGETS.items():
        value = summary.get(key)
        out[key] = None if value is None else (value >= bound if op == ">=" else value <= bound)
    return out


async def run(llm: LLM, settings: Settings, out: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Mark each annotated script (resuming from ``out/results.jsonl``) and score it."""
    annotations = load_annotations()
    items = [i for i in scripts() if i.id in annotations][:limit]
    reference, exemplars = load_reference(), load_stalin_exemplars()
    schemes = {**exemplars.schemes, **reference.schemes}
    out.mkdir(parents=True, exist_ok=True)
    cache = out / RESULTS
    done: dict[str, dict[str, Any]] = {}
    if cache.exists():
        for line in cache.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["id"]] = row
    for item in items:
        if item.id in done:
            continue
        scheme = schemes[item.scheme_id]
        started = time.perf_counter()
        result = await mark_essay(item.essay, scheme, llm=llm, settings=settings)
        row = {
            "id": item.id,
            "seconds": round(time.perf_counter() - started, 1),
            "result": result.model_dump(mode="json"),
        }
        with cache.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        done[item.id] = row
    rows = []
    for item in items:
        result = MarkingResult.model_validate(done[item.id]["result"])
        rows.append(score_script(result, item, schemes[item.scheme_id], annotations[item.id]))
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def report(rows: Sequence[dict[str, Any]], title: str) -> str:
    """Markdown: the figures against the targets, then each script's feedback."""
    summary = summarise(rows)
    met = verdicts(summary)
    lines = [
        f"# Feedback eval: {title}",
        "",
        "Generated by `draftmark eval feedback` (evals/feedback.py): the 30 hand-annotated Stalin scripts "
        f"(evals/data/feedback-annotations.jsonl), {summary['scripts']} marked. What each figure means is in the "
        "module docstring; targets from issue 22.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    for key, value in summary.items():
        target = TARGETS.get(key)
        verdict = ""
        if target:
            verdict = f"{target[0]} {target[1]:g}: " + (
                "met" if met[key] else "**not met**" if met[key] is False else "–"
            )
        lines.append(f"| {key} | {_fmt(value)} | {verdict} |")
    lines += [
        "",
        "| script | human | draftmark | what went well | even better if | names a fact / targets a miss |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        www = r["what_went_well"].replace("|", "/")
        ebi = r["even_better_if"].replace("|", "/")
        lines.append(
            f"| {r['id']} | {r['human_total']} | {r['total']} | {www} | {ebi} | "
            f"{'yes' if r['www_names_fact'] else 'no'} / {'yes' if r['ebi_targets_missing'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"
