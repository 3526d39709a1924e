"""The scheme-grounded reading (issue 22): coverage, conclusion, period, run-together words, feedback checks."""

from __future__ import annotations

import json

import pytest

from schemas.grounding import EssayIndex
from schemas.scheme import MarkScheme
from service.reading import read_essay
from service.reading.feedback import from_facts_next, from_facts_well, praise_faults
from service.reask import parse_draft

ADDRESSES = {
    "General Secretary (1922)": "As General Secretary from 1922 Stalin controlled appointments and built patronage.",
    "Lenin's Testament": "Lenin's Testament criticised Stalin, but Zinoviev and Kamenev helped suppress it in 1924.",
    "The triumvirate": "The triumvirate of Stalin, Zinoviev and Kamenev stood against Trotsky from 1923.",
    "Alliance with Bukharin": "Stalin then made an alliance with Bukharin and the Right to defend the NEP in 1925.",
}


def _essay(*sentences: str, ending: str = "") -> str:
    opening = "Stalin rose to power through many ways in the 1920s, and this essay explains them."
    return opening + "\n\n" + " ".join(sentences) + ("\n\n" + ending if ending else "")


def _addressed(scheme: MarkScheme, essay: str) -> set[str]:
    reading = read_essay(essay, scheme)
    return {p.point for c in reading.coverage for p in c.addressed}


@pytest.mark.parametrize("name", sorted(ADDRESSES))
def test_each_known_point_is_found_with_its_sentence(stalin: MarkScheme, name: str) -> None:
    essay = _essay(ADDRESSES[name])
    reading = read_essay(essay, stalin)
    found = [p for c in reading.coverage for p in c.addressed if p.point.startswith(name)]
    assert found, f"{name} not found"
    sentence = found[0].sentences[0]
    assert essay[sentence.start : sentence.end] == sentence.quote == ADDRESSES[name]


def test_points_not_written_about_are_missing(stalin: MarkScheme) -> None:
    essay = _essay(ADDRESSES["General Secretary (1922)"])
    reading = read_essay(essay, stalin)
    ao1 = next(c for c in reading.coverage if c.ao_id == "AO1")
    assert [p.point[:17] for p in ao1.addressed] == ["General Secretary"]
    assert any(m.startswith("Lenin's Testament") for m in ao1.missing)
    assert len(ao1.addressed) + len(ao1.missing) == len(stalin.objectives[0].indicative_content)


def test_a_name_alone_does_not_address_a_point_about_someone_else(stalin: MarkScheme) -> None:
    essay = _essay("The Bolshevik party grew quickly.", "Trotsky was a great speaker and led the Red Army.")
    assert not any(p.startswith("Trotsky's weaknesses") for p in _addressed(stalin, essay) if "Bolshevik" in p)
    assert not any(p.startswith("Lenin's Testament") for p in _addressed(stalin, _essay("Lenin liked Stalin.")))


def test_the_example_essay_reading(stalin: MarkScheme, essay: str) -> None:
    reading = read_essay(essay, stalin)
    ao1 = next(c for c in reading.coverage if c.ao_id == "AO1")
    assert {p.point.split(" (")[0] for p in ao1.addressed} == {"General Secretary", "The ban on factions"}
    assert reading.conclusion is None and reading.period == (1922, 1929)
    assert reading.latest_year == 1922 and reading.stops_short, "the narrative stops in 1922"
    assert reading.run_together == ["Stalinstayed", "Stalincredibility"]


def test_a_concluding_judgement_is_found_in_the_last_paragraph(stalin: MarkScheme) -> None:
    ending = "Overall, his control of the party machine mattered most, because it won him the votes."
    reading = read_essay(_essay(ADDRESSES["The triumvirate"], ending=ending), stalin)
    assert reading.conclusion is not None and reading.conclusion.quote == ending
    early = _essay("Overall, Stalin was clever.", ending=ADDRESSES["The triumvirate"])
    assert read_essay(early, stalin).conclusion is None, "only the last paragraph concludes"


def test_years_echoing_the_question_do_not_count_as_reached(stalin: MarkScheme) -> None:
    essay = _essay("In 1922 he became General Secretary.", "This is how he had power in 1929.")
    reading = read_essay(essay, stalin)
    assert reading.latest_year == 1922 and reading.stops_short
    assert not read_essay(_essay("In 1928 Bukharin was defeated."), stalin).stops_short


def test_run_together_words_need_a_name_or_two_words(stalin: MarkScheme) -> None:
    text = "Trotsky spoke well. Trotsky led. Trotskywas proud. The policyworked. Zinoviev and Kamenev. Dzhugashvili."
    assert read_essay(text, stalin).run_together == ["Trotskywas", "policyworked"]


def _draft(stalin: MarkScheme, essay: str, level: int, **text: str) -> object:
    """A structurally valid draft with every objective at ``level`` (the bottom of its band)."""
    objectives = {
        ao.id: {
            "evidence": [],
            "rationale": text.get(ao.id, f"{ao.id}: covers the General Secretary post."),
            "level": level,
            "mark": ao.level(level).min_mark,
        }
        for ao in stalin.objectives
    }
    body = {
        "objectives": objectives,
        "what_went_well": text.get("www", "You name the General Secretary post."),
        "even_better_if": text.get("ebi", "Go on to 1929."),
        "teacher_notes": "",
        "off_topic": False,
    }
    return parse_draft(json.dumps(body), stalin, EssayIndex(essay), evidence=False)


def test_false_praise_at_low_levels_is_a_fault(stalin: MarkScheme, essay: str) -> None:
    reading = read_essay(essay, stalin)
    low = _draft(stalin, essay, 1, www="A comprehensive analysis of Stalin's rise.", AO1="Detailed knowledge.")
    faults = praise_faults(low, stalin, reading)  # type: ignore[arg-type]
    assert {(f.where, f.field) for f in faults} == {("what_went_well", "what_went_well"), ("AO1", "rationale")}
    high = _draft(stalin, essay, 3, www="A comprehensive answer.")
    said = [f.message for f in praise_faults(high, stalin, reading) if f.where == "what_went_well"]  # type: ignore[arg-type]
    assert len(said) == 1 and "addresses 2 of the scheme's 18 indicative points" in said[0], (
        "the reading contradicts it"
    )
    covering = " ".join(p.rstrip(".") + "." for ao in stalin.objectives for p in ao.indicative_content)
    full = read_essay(covering, stalin)
    praised = _draft(stalin, covering, 3, www="A comprehensive answer: the General Secretary post and the triumvirate.")
    assert not [f for f in praise_faults(praised, stalin, full) if f.where == "what_went_well"]  # type: ignore[arg-type]


def test_what_went_well_names_something_the_essay_does(stalin: MarkScheme, essay: str) -> None:
    reading = read_essay(essay, stalin)
    generic = _draft(stalin, essay, 2, www="Good work on this question, well done.")
    said = [f.message for f in praise_faults(generic, stalin, reading) if f.where == "what_went_well"]  # type: ignore[arg-type]
    assert len(said) == 1 and "names nothing this essay does" in said[0] and "General Secretary" in said[0]
    named = _draft(stalin, essay, 2, www="You show how the post of General Secretary gave Stalin control.")
    assert not [f for f in praise_faults(named, stalin, reading) if f.where == "what_went_well"]  # type: ignore[arg-type]
    missing = _draft(stalin, essay, 2, www="You explain the triumvirate with Zinoviev and Kamenev well.")
    assert [f.where for f in praise_faults(missing, stalin, reading)] == ["what_went_well"], "a point it never makes"  # type: ignore[arg-type]


def test_praising_a_conclusion_the_essay_lacks_is_a_fault(stalin: MarkScheme, essay: str) -> None:
    reading = read_essay(essay, stalin)
    claim = _draft(stalin, essay, 2, www="Your conclusion weighs the factors well.")
    assert [f.where for f in praise_faults(claim, stalin, reading)] == ["what_went_well"]  # type: ignore[arg-type]
    advice = _draft(stalin, essay, 2, www="You explain the General Secretary post.")
    assert praise_faults(advice, stalin, reading) == []  # type: ignore[arg-type]
    praise = _draft(stalin, essay, 2, ebi="A detailed essay.")
    assert [f.where for f in praise_faults(praise, stalin, reading)] == ["even_better_if"]  # type: ignore[arg-type]


def test_feedback_from_facts_names_the_essay(stalin: MarkScheme, essay: str) -> None:
    reading = read_essay(essay, stalin)
    well = from_facts_well(reading)
    assert well.startswith("You bring in General Secretary") and "Stalin was rewarded" in well
    ao3 = next(c for c in reading.coverage if c.ao_id == "AO3")
    assert from_facts_next(reading, ao3).startswith("Carry your answer on from 1922 to 1929")
    finished = reading.model_copy(update={"stops_short": False})
    assert from_facts_next(finished, ao3).startswith("End with a conclusion")


@pytest.mark.parametrize(
    ("ebi", "fault"),
    [
        ("The essay provides accurate information about Stalin's rise to power.", True),
        ("A detailed essay.", True),
        ("Carry the story on to 1929 and the defeat of the Right.", False),
        ("You could end with a judgement on which factor mattered most.", False),
        ("To improve, explain how control of the party machine won votes.", False),
    ],
)
def test_even_better_if_must_name_a_next_step(stalin: MarkScheme, essay: str, ebi: str, fault: bool) -> None:
    draft = _draft(stalin, essay, 2, ebi=ebi)
    found = [f for f in praise_faults(draft, stalin, read_essay(essay, stalin)) if f.where == "even_better_if"]  # type: ignore[arg-type]
    assert bool(found) is fault, found


def test_a_rationale_repeated_for_another_objective_is_a_fault(stalin: MarkScheme, essay: str) -> None:
    same = "The essay narrates the General Secretary post."
    draft = _draft(stalin, essay, 2, AO1=same, AO2=same, AO3="It has no conclusion.")
    faults = praise_faults(draft, stalin, read_essay(essay, stalin))  # type: ignore[arg-type]
    assert [(f.where, f.field) for f in faults] == [("AO2", "rationale")]


def test_a_rationale_names_something_about_this_essay(stalin: MarkScheme, essay: str) -> None:
    reading = read_essay(essay, stalin)
    generic = _draft(stalin, essay, 2, AO2="The analysis is clear and relevant to the question.")
    said = [f for f in praise_faults(generic, stalin, reading, essay) if f.where == "AO2"]  # type: ignore[arg-type]
    assert len(said) == 1 and "names nothing about this essay" in said[0].message and said[0].field == "rationale"
    for specific in (
        "It never shows how alliances were made and broken to isolate rivals.",  # a point it misses (AO2's own)
        "There is no conclusion weighing the factors.",  # true: the essay has none
        "The narrative stops in 1922.",  # the year it stops at
    ):
        named = _draft(stalin, essay, 2, AO2=specific)
        assert not [f for f in praise_faults(named, stalin, reading, essay) if f.where == "AO2"], specific  # type: ignore[arg-type]


def test_even_better_if_names_something_the_essay_misses(stalin: MarkScheme, essay: str) -> None:
    reading = read_essay(essay, stalin)

    def ebi_faults(text: str) -> list[str]:
        draft = _draft(stalin, essay, 2, ebi=text)
        return [f.message for f in praise_faults(draft, stalin, reading, essay) if f.where == "even_better_if"]  # type: ignore[arg-type]

    said = ebi_faults("Develop your analysis further and use more evidence.")
    assert len(said) == 1 and "names nothing this essay misses" in said[0] and "Lenin's Testament" in said[0]
    assert ebi_faults("Add more on the General Secretary post."), "a point it already makes is no gap"
    for gap in ("Add Lenin's Testament and how it was suppressed.", "End with a conclusion.", "Carry on to 1929."):
        assert ebi_faults(gap) == [], gap


def test_the_next_step_for_an_essay_that_stops_short_names_a_point_from_the_years_it_missed(stalin: MarkScheme) -> None:
    from schemas.reading import ObjectiveCoverage, Reading
    from service.reading.feedback import from_facts_next

    points = list(stalin.objective("AO1").indicative_content)
    factions = next(p for p in points if p.startswith("The ban on factions"))
    expulsion = next(p for p in points if p.startswith("Expulsion"))
    reading = Reading(
        coverage=[ObjectiveCoverage(ao_id="AO1", missing=[factions, expulsion])],
        period=(1922, 1929),
        latest_year=1927,
        stops_short=True,
    )
    advice = from_facts_next(reading, None)
    assert advice.startswith("Carry your answer on from 1927 to 1929") and "Expulsion of Trotsky" in advice
    assert "ban on factions" not in advice, "1921 is not in the years it missed"
    only_earlier = reading.model_copy(update={"coverage": [ObjectiveCoverage(ao_id="AO1", missing=[factions])]})
    assert "for example" not in from_facts_next(only_earlier, None)
