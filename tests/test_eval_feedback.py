"""draftmark eval feedback: the matching rules against hand annotations, and the eval end to end on the fake."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evals import feedback
from evals.feedback import Annotation, Context, PointMark, names_fact, targets_missing, well_claims
from schemas.scheme import MarkScheme
from service.llm.fake import FakeMarker
from service.settings import Settings


def _annotation(stalin: MarkScheme, addressed: dict[str, set[int]], conclusion: bool = False) -> Annotation:
    points = {
        ao.id: [
            PointMark(index=i, addressed=i in addressed.get(ao.id, set()), sentences=[])
            for i in range(len(ao.indicative_content))
        ]
        for ao in stalin.objectives
    }
    return Annotation(id="t", points=points, conclusion=conclusion, stops_short=True, latest_year=1922)


@pytest.fixture
def ctx(stalin: MarkScheme, essay: str) -> Context:
    # The example essay: the General Secretary post (AO1 0) and the ban on factions (AO1 3), nothing later.
    return Context(essay, stalin, _annotation(stalin, {"AO1": {0, 3}}))


def test_even_better_if_must_name_what_the_essay_really_misses(ctx: Context) -> None:
    assert targets_missing("Explain how the triumvirate with Zinoviev and Kamenev isolated Trotsky.", ctx)
    assert not targets_missing("Say more about the General Secretary post.", ctx), "it already makes that point"
    assert targets_missing("End with a conclusion that weighs the factors.", ctx), "it has none"
    assert targets_missing("Carry your answer on to 1929.", ctx), "it stops short"
    assert not targets_missing("Write more clearly.", ctx)
    concluded = Context(ctx.essay, ctx.scheme, _annotation(ctx.scheme, {"AO1": {0}}, conclusion=True))
    assert not targets_missing(
        "End with a conclusion that weighs the factors.",
        concluded.__class__(ctx.essay, ctx.scheme, concluded.annotation.model_copy(update={"stops_short": False})),
    ), "asking for a conclusion it has is no target"


def test_what_went_well_claims_are_checked_against_the_annotation(ctx: Context) -> None:
    assert well_claims("You explain the General Secretary post.", ctx) == (1, 1)
    assert well_claims("You explain the triumvirate with Zinoviev and Kamenev.", ctx)[0] == 0, "a point it never makes"
    assert well_claims("Your conclusion weighs the factors.", ctx) == (0, 1), "a conclusion it does not have"
    assert well_claims("Good work overall.", ctx) == (0, 0), "generic: no claim to check"


def test_a_sentence_names_a_fact_only_when_it_is_about_this_essay(ctx: Context) -> None:
    assert not names_fact("The essay provides a comprehensive analysis of Stalin's rise to power.", ctx)
    assert names_fact("You explain how the ban on factions helped him.", ctx)
    assert names_fact('You write "Stalin was arrested several times after this".', ctx), "its own words"
    assert names_fact("You use 1902 well.", ctx), "a year the essay uses and the question does not"
    assert not names_fact("You use 1929 well.", ctx), "the question's own year"


def test_the_eval_runs_end_to_end_on_the_fake_and_resumes(tmp_path: Path, settings: Settings) -> None:
    llm = FakeMarker()
    rows = asyncio.run(feedback.run(llm, settings, tmp_path, limit=4))
    assert [r["id"] for r in rows] == [i.id for i in feedback.scripts()[:4]]
    summary = feedback.summarise(rows)
    assert summary["scripts"] == 4 and summary["coverage_f1"] is not None and summary["evidence_from_prompt"] == 0
    assert 0.0 <= summary["sentences_with_fact"] <= 1.0 and summary["false_praise"] == 0
    calls = llm.calls
    again = asyncio.run(feedback.run(llm, settings, tmp_path, limit=4))
    assert llm.calls == calls and again == rows, "a second run reads the cached results"
    report = feedback.report(rows, "fake")
    assert "coverage_f1" in report and rows[0]["id"] in report


def test_the_annotations_cover_every_point_with_verbatim_sentences(stalin: MarkScheme) -> None:
    annotations = feedback.load_annotations()
    essays = {i.id: i.essay for i in feedback.scripts()}
    assert set(annotations) == set(essays) and len(essays) == 30
    for a in annotations.values():
        for ao in stalin.objectives:
            marks = a.points[ao.id]
            assert sorted(m.index for m in marks) == list(range(len(ao.indicative_content))), (a.id, ao.id)
            for m in marks:
                assert bool(m.sentences) == m.addressed, (a.id, ao.id, m.index)
                assert all(s in essays[a.id] for s in m.sentences), (a.id, ao.id, m.index)


def test_evidence_from_the_title_or_the_question_is_counted_and_an_opening_sentence_is_not(stalin: MarkScheme) -> None:
    from evals.feedback import _from_prompt

    titled = "Stalin's Rise to Power\n\nStalin became General Secretary in 1922. He used it well."
    assert _from_prompt("Stalin's Rise to Power", titled, stalin.question)
    assert _from_prompt(
        "Analyse the ways in which Stalin came to power in the Soviet Union in 1929", titled, stalin.question
    )
    opening = "Stalin came to power by 1929 through his position in the party.\n\nHe used it well."
    assert not _from_prompt("Stalin came to power by 1929 through his position in the party.", opening, stalin.question)


def test_an_abbreviation_ends_no_sentence() -> None:
    from evals.feedback import sentences_of

    assert sentences_of("None is addressed, e.g. the Testament. Next, i.e. later. Done!") == [
        "None is addressed, e.g. the Testament.",
        "Next, i.e. later.",
        "Done!",
    ]
