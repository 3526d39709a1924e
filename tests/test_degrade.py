"""Degrade, don't fail (issue 26): bad evidence and copied text are re-asked, then left out and flagged."""

from __future__ import annotations

import json

import pytest

from schemas.grounding import EssayIndex
from schemas.result import FlagCode
from schemas.scheme import MarkScheme
from schemas.sentences import SentenceTable
from service.copying import copy_faults
from service.errors import MarkingFailedError
from service.llm.fake import FakeMarker, ScriptedLLM
from service.llm.port import CompletionRequest
from service.pipeline import mark_essay
from service.prompting import load_prompt
from service.reask import parse_draft
from service.settings import Settings

PARAPHRASE = "Stalin gained power and recognition from the Bolsheviks and in particular Lenin"
EXAMPLE_WWW = "You use accurate names and dates, such as the ultimatum to Serbia."


def _answer(request: CompletionRequest, **changes: object) -> str:
    """The fake's valid answer with top-level fields or AO2 fields replaced."""
    draft = json.loads(FakeMarker().answer(request))
    for key, value in changes.items():
        if key.startswith("AO2_"):
            draft["objectives"]["AO2"][key[4:]] = value
        else:
            draft[key] = value
    return json.dumps(draft)


@pytest.fixture
def free(settings: Settings) -> Settings:
    return settings.model_copy(update={"evidence_mode": "free", "max_reasks": 2})


def test_the_paraphrase_is_not_in_the_essay(essay: str) -> None:
    assert PARAPHRASE not in essay and "This helped Stalin gain power and recognition" in essay


async def test_a_paraphrased_quote_is_dropped_and_flagged_not_fatal(
    stalin: MarkScheme, essay: str, free: Settings
) -> None:
    def paraphrased(request: CompletionRequest) -> str:
        good = json.loads(FakeMarker().answer(request))["objectives"]["AO2"]["evidence"]
        return _answer(request, AO2_evidence=[*good[:1], PARAPHRASE])

    llm = ScriptedLLM([paraphrased] * 3)
    result = await mark_essay(essay, stalin, llm=llm, settings=free)
    assert result.provenance.attempts == 3, "re-asked twice before leaving the quote out"
    reask = llm.history[1].messages[-1].content
    assert "does not appear in the essay" in reask and "keep what was accepted" in reask
    assert "AO1" not in reask.split("could not be accepted", 1)[1], "only what failed is re-asked"
    ao2 = next(m for m in result.ao_marks if m.ao_id == "AO2")
    assert ao2.mark > 0 and [e.quote for e in ao2.evidence] and all(PARAPHRASE not in e.quote for e in ao2.evidence)
    assert all(essay[e.start : e.end] == e.quote for e in ao2.evidence)
    codes = [f.code for f in result.flags]
    assert FlagCode.EVIDENCE_MISSING in codes and FlagCode.NEEDS_REVIEW in codes
    missing = next(f for f in result.flags if f.code == FlagCode.EVIDENCE_MISSING)
    assert "AO2" in missing.detail and "Stalin gained power" in missing.detail


async def test_a_quote_fixed_on_reask_leaves_no_flag(stalin: MarkScheme, essay: str, free: Settings) -> None:
    llm = ScriptedLLM([lambda r: _answer(r, AO2_evidence=[PARAPHRASE]), FakeMarker().answer])
    result = await mark_essay(essay, stalin, llm=llm, settings=free)
    assert result.provenance.attempts == 2
    assert FlagCode.EVIDENCE_MISSING not in [f.code for f in result.flags]


async def test_a_mark_left_with_no_evidence_keeps_its_mark_and_says_so(
    stalin: MarkScheme, essay: str, free: Settings
) -> None:
    llm = ScriptedLLM([lambda r: _answer(r, AO2_evidence=[PARAPHRASE])] * 3)
    result = await mark_essay(essay, stalin, llm=llm, settings=free)
    ao2 = next(m for m in result.ao_marks if m.ao_id == "AO2")
    assert ao2.evidence == [] and ao2.mark > 0
    missing = next(f for f in result.flags if f.code == FlagCode.EVIDENCE_MISSING)
    assert "needs at least one quotation" in missing.detail


async def test_invalid_marks_still_fail_the_marking(stalin: MarkScheme, essay: str, free: Settings) -> None:
    llm = ScriptedLLM([lambda r: _answer(r, AO2_mark=99)] * 3)
    with pytest.raises(MarkingFailedError, match="outside level"):
        await mark_essay(essay, stalin, llm=llm, settings=free)


async def test_feedback_copied_from_the_format_example_is_reasked(
    stalin: MarkScheme, essay: str, settings: Settings
) -> None:
    llm = ScriptedLLM([lambda r: _answer(r, what_went_well=EXAMPLE_WWW), FakeMarker().answer])
    result = await mark_essay(essay, stalin, llm=llm, settings=settings)
    assert result.provenance.attempts == 2 and result.feedback.what_went_well.startswith("Fake: you ")
    assert "repeats the answer-format example" in llm.history[1].messages[-1].content


async def test_feedback_copied_every_time_is_left_out_and_flagged(
    stalin: MarkScheme, essay: str, settings: Settings
) -> None:
    copied = "Explain how each cause led to war, then judge which mattered most."
    llm = ScriptedLLM([lambda r: _answer(r, even_better_if=copied)] * 3)
    result = await mark_essay(essay, stalin, llm=llm, settings=settings)
    assert result.feedback.what_went_well.startswith("Fake: you ")
    # Never blank: the left-out sentence is written from what the reading found (the essay stops at 1922).
    assert result.feedback.even_better_if.startswith("Carry your answer on from 1922 to 1929")
    flag = next(f for f in result.flags if f.code == FlagCode.TEXT_REPLACED)
    assert "even_better_if" in flag.detail


@pytest.mark.parametrize(
    ("text", "copied"),
    [
        (EXAMPLE_WWW, True),
        ("Good use of dates, such as the ultimatum to Serbia in 1914.", True),  # a name only the example has
        ("Explain how each cause led to Stalin's rise, then judge which mattered most.", True),  # a 5-word run
        ("You use accurate dates such as 1922 and names such as Trotsky.", False),
        ("Judge which factor mattered most in a conclusion.", False),
    ],
)
def test_copy_check_tells_copying_from_advice(stalin: MarkScheme, essay: str, text: str, copied: bool) -> None:
    index = EssayIndex(essay, sentence_refs=True)
    request_free = json.loads(_answer_for(stalin, essay))
    request_free["what_went_well"] = text
    draft = parse_draft(json.dumps(request_free), stalin, index, evidence=False)
    assert not isinstance(draft, list), draft
    faults = copy_faults(draft, load_prompt(), stalin, essay)
    assert bool([f for f in faults if f.field == "what_went_well"]) is copied, faults


def test_a_restated_descriptor_is_a_fault(stalin: MarkScheme, essay: str) -> None:
    descriptor = stalin.objectives[1].levels[-1].descriptor
    draft = json.loads(_answer_for(stalin, essay))
    draft["objectives"]["AO1"]["rationale"] = "The essay " + descriptor[0].lower() + descriptor[1:]
    parsed = parse_draft(json.dumps(draft), stalin, EssayIndex(essay, sentence_refs=True), evidence=False)
    assert not isinstance(parsed, list)
    (fault,) = copy_faults(parsed, load_prompt(), stalin, essay)
    assert fault.where == "AO1" and fault.field == "rationale" and "descriptor" in fault.message


def test_the_template_example_is_found() -> None:
    from service.schemes import SchemeLibrary

    example = load_prompt().example(SchemeLibrary().get("stalin-power-1929"))
    assert example.question == "Why did war break out in 1914?" and EXAMPLE_WWW in example.prose


def _answer_for(scheme: MarkScheme, essay: str) -> str:
    from schemas.draft import output_json_schema

    prompt = load_prompt()
    table = SentenceTable(essay)
    request = CompletionRequest(
        messages=prompt.messages(scheme, essay, table),
        json_schema=output_json_schema(scheme, sentence_refs=table.citable_refs()),
        schema_name="marking_draft",
        temperature=0.0,
        max_output_tokens=1500,
        seed=0,
    )
    return FakeMarker().answer(request)


async def test_false_praise_is_reasked_then_replaced_from_facts(
    stalin: MarkScheme, essay: str, settings: Settings
) -> None:
    low = FakeMarker(policy=lambda *_: 1)  # level 1 everywhere: 3/15
    praise = "A comprehensive analysis of how Stalin rose to power."
    llm = ScriptedLLM([lambda r: json.dumps(json.loads(low.answer(r)) | {"what_went_well": praise})] * 3)
    result = await mark_essay(essay, stalin, llm=llm, settings=settings)
    assert result.total * 2 <= result.max_total and result.provenance.attempts == 3
    assert "comprehensive" in llm.history[1].messages[-1].content
    assert result.feedback.what_went_well.startswith("You bring in General Secretary")
    assert result.reading is not None and result.reading.stops_short
    flag = next(f for f in result.flags if f.code == FlagCode.TEXT_REPLACED)
    assert "what_went_well calls the essay 'comprehensive'" in flag.detail


async def test_the_embedded_model_is_not_reasked_for_text_alone(
    stalin: MarkScheme, essay: str, settings: Settings
) -> None:
    class Local(ScriptedLLM):
        @property
        def endpoint_kind(self) -> str:  # type: ignore[override]
            return "local"

    llm = Local([lambda r: _answer(r, what_went_well=EXAMPLE_WWW)])
    result = await mark_essay(essay, stalin, llm=llm, settings=settings)
    assert result.provenance.attempts == 1 and "Serbia" not in result.feedback.what_went_well
    assert FlagCode.TEXT_REPLACED in [f.code for f in result.flags]


async def test_the_title_and_question_are_never_evidence(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    llm = ScriptedLLM([FakeMarker().answer])
    result = await mark_essay(essay, stalin, llm=llm, settings=settings)
    offered = llm.history[0].json_schema["properties"]["objectives"]["properties"]["AO1"]["anyOf"][1]["properties"]
    table = SentenceTable(essay)
    assert table.sentences[0].text.startswith("Analyse the Ways") and table.sentences[1].text.startswith(
        "Analyse the ways"
    )
    assert "S1" not in offered["evidence"]["items"]["enum"] and "S2" not in offered["evidence"]["items"]["enum"]
    assert all(not e.quote.startswith("Analyse the") for m in result.ao_marks for e in m.evidence)
    cited = ScriptedLLM([lambda r: _answer(r, AO2_evidence=["S1", "S5"])] * 3)  # JSON mode: no enum enforces it
    degraded = await mark_essay(essay, stalin, llm=cited, settings=settings)
    flag = next(f for f in degraded.flags if f.code == FlagCode.EVIDENCE_MISSING)
    assert "the title or the question copied out" in flag.detail
