from __future__ import annotations

from typing import Any

import pytest

from schemas.draft import bands_from_schema, output_json_schema
from schemas.grounding import EssayIndex, quote_problem
from schemas.scheme import MarkScheme
from service.reask import parse_draft
from tests.conftest import dumps, good_draft


def problems(scheme: MarkScheme, essay: str, draft: dict[str, Any] | str) -> list[str]:
    text = draft if isinstance(draft, str) else dumps(draft)
    outcome = parse_draft(text, scheme, EssayIndex(essay))
    return outcome if isinstance(outcome, list) else []


def test_good_draft_validates(stalin: MarkScheme, essay: str) -> None:
    assert problems(stalin, essay, good_draft(stalin)) == []


def test_code_fenced_json_is_accepted(stalin: MarkScheme, essay: str) -> None:
    assert problems(stalin, essay, "```json\n" + dumps(good_draft(stalin)) + "\n```") == []


def test_mark_outside_band(stalin: MarkScheme, essay: str) -> None:
    draft = good_draft(stalin)
    draft["objectives"]["AO2"]["mark"] = 5
    found = problems(stalin, essay, draft)
    assert any("AO2: mark 5 is outside level 2's band 3-4" in p for p in found)


def test_unknown_and_missing_objectives(stalin: MarkScheme, essay: str) -> None:
    draft = good_draft(stalin)
    draft["objectives"]["AO9"] = draft["objectives"].pop("AO3")
    found = "\n".join(problems(stalin, essay, draft))
    assert "unknown objective ids ['AO9']" in found
    assert "objectives ['AO3'] are missing" in found


def test_invented_quote(stalin: MarkScheme, essay: str) -> None:
    draft = good_draft(stalin)
    draft["objectives"]["AO1"]["evidence"] = ["Stalin defeated Bukharin and the Right in 1929"]
    found = problems(stalin, essay, draft)
    assert any("AO1" in p and "does not appear in the essay" in p for p in found)


def test_level_that_does_not_exist_and_missing_evidence(stalin: MarkScheme, essay: str) -> None:
    draft = good_draft(stalin)
    draft["objectives"]["AO3"]["level"] = 7
    draft["objectives"]["AO1"]["evidence"] = []
    found = "\n".join(problems(stalin, essay, draft))
    assert "level 7 does not exist" in found
    assert "AO1: a mark above 0 needs at least one quotation" in found


def test_invalid_json_and_wrong_types(stalin: MarkScheme, essay: str) -> None:
    assert "not valid JSON" in problems(stalin, essay, '{"objectives": ')[0]
    draft = good_draft(stalin)
    draft["objectives"]["AO1"]["mark"] = "lots"
    assert any("objectives.AO1.mark" in p for p in problems(stalin, essay, draft))


def test_json_schema_uses_enums_from_the_scheme(stalin: MarkScheme, holistic: MarkScheme) -> None:
    schema = output_json_schema(stalin)
    ao2 = schema["properties"]["objectives"]["properties"]["AO2"]
    variants = [(v["properties"]["level"]["enum"], v["properties"]["mark"]["enum"]) for v in ao2["anyOf"]]
    assert variants == [([0], [0]), ([1], [1, 2]), ([2], [3, 4]), ([3], [5, 6])], "each level carries only its band"
    assert ao2["anyOf"][0]["properties"]["rationale"]["maxLength"] > 0
    assert bands_from_schema(ao2) == [(0, 0, 0), (1, 1, 2), (2, 3, 4), (3, 5, 6)]
    only = output_json_schema(holistic)["properties"]["objectives"]
    assert only["required"] == ["overall"]
    assert [v["properties"]["mark"]["enum"] for v in only["properties"]["overall"]["anyOf"]] == [
        [1],
        [2],
        [3],
        [4],
        [5],
        [6],
    ]


def test_sentence_mode_enumerates_sentence_refs(stalin: MarkScheme, essay: str) -> None:
    index = EssayIndex(essay, sentence_refs=True)
    assert index.sentences is not None
    refs = index.sentences.citable_refs()
    schema = output_json_schema(stalin, sentence_refs=refs)
    items = schema["properties"]["objectives"]["properties"]["AO1"]["anyOf"][2]["properties"]["evidence"]["items"]
    assert items == {"type": "string", "enum": refs} and refs[:3] == ["S1", "S2", "S3"]
    assert all(quote_problem(ref, index) is None for ref in refs)


def test_sentence_refs_validate_and_map_to_verbatim_text(stalin: MarkScheme, essay: str) -> None:
    draft = good_draft(stalin)
    draft["objectives"]["AO1"]["evidence"] = ["S2", "S999"]
    index = EssayIndex(essay, sentence_refs=True)
    found = parse_draft(dumps(draft), stalin, index)
    assert isinstance(found, list) and any("'S999' is not a sentence of this essay" in p for p in found)
    draft["objectives"]["AO1"]["evidence"] = ["S2"]
    assert not isinstance(parse_draft(dumps(draft), stalin, index), list)
    span = index.locate("S2")
    assert span is not None and index.sentences is not None
    assert essay[span.start : span.end] == index.sentences.sentences[1].text


def test_free_mode_does_not_read_refs_as_sentences(essay: str) -> None:
    assert EssayIndex(essay).locate("S2") is None


def test_schema_asks_for_a_small_answer(stalin: MarkScheme) -> None:
    """The output diet: no per-objective strengths/improvements, short rationale and feedback."""
    schema = output_json_schema(stalin, sentence_refs=["S1", "S2"])
    variant = schema["properties"]["objectives"]["properties"]["AO1"]["anyOf"][0]
    assert set(variant["properties"]) == {"evidence", "rationale", "level", "mark"}
    assert variant["properties"]["evidence"]["maxItems"] <= 3
    assert variant["properties"]["rationale"]["maxLength"] <= 240
    assert all(schema["properties"][f]["maxLength"] <= 240 for f in ("what_went_well", "even_better_if"))


def test_older_longer_answers_still_validate(stalin: MarkScheme, essay: str) -> None:
    draft = good_draft(stalin)
    draft["objectives"]["AO1"]["rationale"] = "long " * 200
    draft["objectives"]["AO1"]["strengths"] = ["a", "b", "c"]
    assert problems(stalin, essay, draft) == []


@pytest.mark.parametrize("field", ["minimum", "maximum"])
def test_schema_does_not_rely_on_integer_bounds(stalin: MarkScheme, field: str) -> None:
    assert field not in str(output_json_schema(stalin))
