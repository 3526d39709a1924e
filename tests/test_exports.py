"""What leaves the tool is what the teacher approved: LMS exports and the batch CSV after review."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.workflows.exports import csv_cell
from tests.api_support import CountingFake, LiveServer, wait_for_batch
from tests.test_api import make_settings, marking_body

LABEL = "Feedback drafted with AI and reviewed by your teacher."


@pytest.fixture
def client(db_url: str) -> Iterator[httpx.Client]:
    with LiveServer(make_settings(db_url, auth_disabled=True), CountingFake()) as live:
        with httpx.Client(base_url=live.url, timeout=30) as c:
            yield c


def _approve(client: httpx.Client, marking_id: str, **extra: Any) -> dict[str, Any]:
    body = {"reviewer": "Ms Reed", "marks": {"AO1": 4, "AO2": 4, "AO3": 1}} | extra
    response = client.post(f"/v1/markings/{marking_id}/review", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_exports_carry_the_draft_until_approved_then_the_teachers_marks(client: httpx.Client, essay: str) -> None:
    marking = client.post("/v1/markings", json=marking_body(essay)).json()
    mid, draft = marking["id"], marking["result"]
    draft_marks = {m["ao_id"]: m["mark"] for m in draft["ao_marks"]}
    assert draft_marks != {"AO1": 4, "AO2": 4, "AO3": 1}, "the approval below must differ from the draft"

    moodle = client.get(f"/v1/markings/{mid}/exports/moodle").json()
    assert moodle["source"] == "draft" and moodle["draft"] is True and moodle["grade"] == draft["total"]
    lti = client.get(f"/v1/markings/{mid}/exports/lti-score", params={"user_id": "u-1"}).json()
    assert lti["gradingProgress"] == "PendingManual" and lti["source"] == "draft" and lti["approved_by"] is None

    review = _approve(
        client,
        mid,
        comments={"AO1": "Knowledge stops in 1922."},
        overall_comment="Carry the story on to 1929 and weigh the causes.",
    )
    moodle = client.get(f"/v1/markings/{mid}/exports/moodle").json()
    criteria = {c["criterionshortname"]: c for c in moodle["advancedgradingdata"]["guide"]["criteria"]}
    assert moodle["grade"] == 9 and moodle["source"] == "approved" and moodle["draft"] is False
    assert moodle["approved_by"] == "Ms Reed" and moodle["approved_at"].startswith(review["approved_at"][:19])
    assert {k: c["score"] for k, c in criteria.items()} == {"AO1": 4, "AO2": 4, "AO3": 1}
    assert criteria["AO1"]["remark"] == "Knowledge stops in 1922."
    feedback = moodle["feedback"].split("\n")
    assert feedback[2:] == ["Carry the story on to 1929 and weigh the causes.", LABEL], "the student view, as one text"
    assert feedback[0] == "What went well: " + draft["feedback"]["what_went_well"]

    canvas = client.get(f"/v1/markings/{mid}/exports/canvas", params={"criterion": ["AO1=_111"]}).json()
    assert canvas["rubric_assessment"]["_111"] == {"points": 4, "comments": "Knowledge stops in 1922."}
    assert canvas["rubric_assessment"]["AO2"]["points"] == 4 and canvas["source"] == "approved"
    assert canvas["comment"]["text_comment"] == moodle["feedback"]

    lti = client.get(f"/v1/markings/{mid}/exports/lti-score", params={"user_id": "u-1"}).json()
    assert (lti["scoreGiven"], lti["scoreMaximum"]) == (9, 15)
    assert lti["gradingProgress"] == "FullyGraded" and lti["activityProgress"] == "Completed"
    assert lti["source"] == "approved" and lti["approved_by"] == "Ms Reed"

    fetched = client.get(f"/v1/markings/{mid}").json()
    assert {m["ao_id"]: m["mark"] for m in fetched["result"]["ao_marks"]} == draft_marks, "the draft stays for audit"


def test_a_changed_mark_without_a_comment_does_not_carry_the_models_rationale(client: httpx.Client, essay: str) -> None:
    marking = client.post("/v1/markings", json=marking_body(essay)).json()
    draft = {m["ao_id"]: m for m in marking["result"]["ao_marks"]}
    marks = {"AO1": draft["AO1"]["mark"], "AO2": (draft["AO2"]["mark"] + 1) % 8, "AO3": draft["AO3"]["mark"]}
    _approve(client, marking["id"], marks=marks)
    criteria = client.get(f"/v1/markings/{marking['id']}/exports/moodle").json()["advancedgradingdata"]["guide"]
    remarks = {c["criterionshortname"]: c["remark"] for c in criteria["criteria"]}
    assert remarks["AO1"].startswith(draft["AO1"]["rationale"]), "an unchanged mark keeps the draft's remark"
    assert remarks["AO2"] == "", "the rationale argued for the draft's mark, not the teacher's"


def test_batch_csv_has_draft_and_approved_marks_and_neutralises_formulas(client: httpx.Client, essay: str) -> None:
    items = [{"external_id": '=HYPERLINK("http://x")', "essay": essay}, {"external_id": "plain", "essay": essay}]
    batch_id = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
    batch = wait_for_batch(client, batch_id)
    approved_id = next(i["marking_id"] for i in batch["items"] if i["external_id"] == "plain")
    _approve(client, approved_id, reviewer="@admin")
    rows = list(csv.DictReader(io.StringIO(client.get(f"/v1/batches/{batch_id}/export.csv").text)))
    by_id = {r["external_id"]: r for r in rows}
    formula = by_id['\'=HYPERLINK("http://x")']
    assert formula["source"] == "draft" and formula["approved_total"] == "" and formula["AO1_approved"] == ""
    assert formula["total"] == formula["draft_total"] != ""
    plain = by_id["plain"]
    assert plain["source"] == "approved" and plain["total"] == plain["approved_total"] == "9"
    assert (plain["AO1_approved"], plain["AO2_approved"], plain["AO3_approved"]) == ("4", "4", "1")
    assert plain["AO1_draft"] != "" and plain["approved_by"] == "'@admin" and plain["approved_at"].endswith("Z")
    plain_item = next(i for i in batch["items"] if i["external_id"] == "plain")
    assert plain["flags"] == ";".join(plain_item["flags"])


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(value: str) -> None:
    assert csv_cell(value) == "'" + value


def test_csv_cells_that_are_safe_are_unchanged() -> None:
    assert csv_cell("Ms Reed") == "Ms Reed" and csv_cell(7) == "7" and csv_cell(None) == ""
    assert csv_cell(datetime(2026, 1, 1, tzinfo=UTC).isoformat()).startswith("2026")


def test_what_the_student_receives_is_one_definition_everywhere(client: httpx.Client, essay: str) -> None:
    marking = client.post("/v1/markings", json=marking_body(essay)).json()
    mid = marking["id"]
    refused = client.get(f"/v1/markings/{mid}/student")
    assert refused.status_code == 409 and "approve it first" in refused.json()["detail"]
    preview = client.get(f"/v1/markings/{mid}/student", params={"preview": "true"}).json()
    assert preview["source"] == "draft" and preview["what_went_well"] == marking["result"]["feedback"]["what_went_well"]
    assert preview["label"] == LABEL

    _approve(
        client,
        mid,
        what_went_well="You explain the General Secretary post clearly.",
        even_better_if="Carry the story on to 1929.",
        comments={"AO1": "Knowledge stops in 1922."},
        overall_comment="A good start.",
    )
    student = client.get(f"/v1/markings/{mid}/student").json()
    assert student["source"] == "approved" and student["approved_by"] == "Ms Reed"
    assert (student["what_went_well"], student["even_better_if"], student["teacher_note"]) == (
        "You explain the General Secretary post clearly.",
        "Carry the story on to 1929.",
        "A good start.",
    )
    assert [m["mark"] for m in student["marks"]] == [4, 4, 1] and student["marks"][0][
        "comment"
    ] == "Knowledge stops in 1922."
    text = (
        "What went well: You explain the General Secretary post clearly.\nEven better if: Carry the story on to 1929."
        f"\nA good start.\n{LABEL}"
    )
    moodle = client.get(f"/v1/markings/{mid}/exports/moodle").json()
    canvas = client.get(f"/v1/markings/{mid}/exports/canvas").json()
    lti = client.get(f"/v1/markings/{mid}/exports/lti-score", params={"user_id": "u-1"}).json()
    assert moodle["feedback"] == text and canvas["comment"]["text_comment"] == text
    assert lti["comment"] == text.replace("\n", " "), "every route out carries exactly the approved text"

    _approve(client, mid)  # approved again without feedback fields: the draft's, not the previous edit
    again = client.get(f"/v1/markings/{mid}/student").json()
    assert again["what_went_well"] == marking["result"]["feedback"]["what_went_well"]
    too_long = client.post(
        f"/v1/markings/{mid}/review",
        json={"reviewer": "T", "marks": {"AO1": 1, "AO2": 1, "AO3": 1}, "even_better_if": "x" * 2001},
    )
    assert too_long.status_code == 422


def test_the_label_is_a_setting(db_url: str, essay: str) -> None:
    settings = make_settings(db_url, auth_disabled=True).model_copy(update={"student_label": ""})
    with LiveServer(settings, CountingFake()) as live, httpx.Client(base_url=live.url, timeout=30) as c:
        mid = c.post("/v1/markings", json=marking_body(essay)).json()["id"]
        _approve(c, mid)
        assert c.get(f"/v1/markings/{mid}/student").json()["label"] == ""
        assert LABEL not in c.get(f"/v1/markings/{mid}/exports/moodle").json()["feedback"]
