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
from tests.lms_rules import (
    ags_errors,
    canvas_bulk_errors,
    canvas_csv_errors,
    canvas_submission_errors,
    moodle_csv_errors,
    moodle_errors,
)
from tests.test_api import assert_problem, make_settings, marking_body

LABEL = "Feedback drafted with AI and reviewed by your teacher."


@pytest.fixture
def client(db_url: str) -> Iterator[httpx.Client]:
    with LiveServer(make_settings(db_url, auth_disabled=True), CountingFake()) as live:
        with httpx.Client(base_url=live.url, timeout=30) as c:
            yield c


def _approve(client: httpx.Client, marking_id: str, *, release: bool = True, **extra: Any) -> dict[str, Any]:
    """Approve (and, unless told not to, release to the student: only released work leaves as a grade)."""
    body = {"reviewer": "Ms Reed", "marks": {"AO1": 4, "AO2": 4, "AO3": 1}} | extra
    response = client.post(f"/v1/markings/{marking_id}/review", json=body)
    assert response.status_code == 201, response.text
    if release:
        released = client.post(f"/v1/markings/{marking_id}/release")
        assert released.status_code == 200 and released.json()["released_at"], released.text
    return response.json()  # type: ignore[no-any-return]


def test_a_draft_never_leaves_as_a_grade(client: httpx.Client, essay: str) -> None:
    mid = client.post("/v1/markings", json=marking_body(essay)).json()["id"]
    for path, params in (
        ("canvas", {"rubric": "false"}),
        ("moodle", {"assignment_id": "7", "user_id": "42"}),
        ("lti-score", {"user_id": "u-1"}),
    ):
        refused = client.get(f"/v1/markings/{mid}/exports/{path}", params=params)
        assert_problem(refused, 409, "not released")
        assert refused.json()["code"] == "not_released"
    lti = client.get(f"/v1/markings/{mid}/exports/lti-score", params={"user_id": "u-1", "include": "drafts"}).json()
    score = lti["payload"][0]
    assert ags_errors(score) == [] and score["gradingProgress"] == "PendingManual"
    assert "scoreGiven" not in score and "comment" not in score, "Canvas records a given score even when pending"
    moodle = client.get(
        f"/v1/markings/{mid}/exports/moodle", params={"assignment_id": "7", "user_id": "42", "include": "drafts"}
    ).json()
    assert moodle_errors(moodle["payload"]) == [] and moodle["payload"]["grades"][0]["workflowstate"] == "inmarking"
    assert moodle["draftmark"]["scripts"][0]["source"] == "draft"


def test_approved_exports_are_what_the_platforms_accept(client: httpx.Client, essay: str) -> None:
    marking = client.post("/v1/markings", json=marking_body(essay, external_id="1234")).json()
    mid, draft = marking["id"], marking["result"]
    review = _approve(client, mid, comments={"AO1": "Knowledge stops in 1922."}, overall_comment="Go on to 1929.")
    student = client.get(f"/v1/markings/{mid}/student").json()
    text = "\n".join(
        [
            f"What went well: {student['what_went_well']}",
            f"Even better if: {student['even_better_if']}",
            "Go on to 1929.",
            LABEL,
        ]
    )

    rubric = {"_111": 5, "_222": 6, "_333": 4}
    canvas = client.get(
        f"/v1/markings/{mid}/exports/canvas", params={"criterion": ["AO1=_111:5", "AO2=_222:6", "AO3=_333"]}
    ).json()
    body = canvas["payload"]
    assert canvas_submission_errors(body, rubric) == []
    assert body["submission"] == {"posted_grade": "9"} and body["comment"] == {"text_comment": text}
    assert body["rubric_assessment"]["_111"] == {"points": 4, "comments": "Knowledge stops in 1922."}
    assert canvas["draftmark"]["request"].startswith("PUT /api/v1/courses/")
    assert canvas["draftmark"]["scripts"] == [
        {
            "user_id": "1234",
            "marking_id": mid,
            "source": "approved",
            "approved_by": "Ms Reed",
            "approved_at": canvas["draftmark"]["scripts"][0]["approved_at"],
        }
    ]
    assert canvas["draftmark"]["scripts"][0]["approved_at"].startswith(review["approved_at"][:19])
    plain = client.get(f"/v1/markings/{mid}/exports/canvas", params={"rubric": "false"}).json()["payload"]
    assert "rubric_assessment" not in plain and canvas_submission_errors(plain, None) == []

    moodle = client.get(
        f"/v1/markings/{mid}/exports/moodle",
        params={"assignment_id": "7", "criterion": ["AO1=101", "AO2=102", "AO3=103"]},
    ).json()
    params = moodle["payload"]
    assert moodle_errors(params, {101: 5, 102: 6, 103: 4}) == []
    (grade,) = params["grades"]
    assert (params["assignmentid"], grade["userid"], grade["grade"], grade["workflowstate"]) == (
        7,
        1234,
        9.0,
        "released",
    )
    assert grade["plugindata"]["assignfeedbackcomments_editor"] == {"text": text, "format": 2}
    fillings = {c["criterionid"]: c["fillings"][0] for c in grade["advancedgradingdata"]["guide"]["criteria"]}
    assert fillings[101] == {"criterionid": 101, "remark": "Knowledge stops in 1922.", "remarkformat": 2, "score": 4.0}

    lti = client.get(f"/v1/markings/{mid}/exports/lti-score", params={"user_id": "u-1"}).json()
    (score,) = lti["payload"]
    assert ags_errors(score) == []
    assert (score["scoreGiven"], score["scoreMaximum"], score["gradingProgress"]) == (9, 15, "FullyGraded")
    assert score["activityProgress"] == "Completed" and score["comment"] == text
    assert score["timestamp"].startswith(review["approved_at"][:19]), "the approval time, so Moodle accepts a re-send"
    for payload in (body, params, score):
        assert not _keys(payload) & {"source", "approved_by", "approved_at", "draft"}, "our metadata stays outside"

    fetched = client.get(f"/v1/markings/{mid}").json()
    assert fetched["result"]["ao_marks"] == draft["ao_marks"], "the draft stays for audit"


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"criterion": ["AO1=_111", "AO3=_333"]}, "no Canvas criterion for AO2"),
        ({}, "rubric criterion id of every objective"),
        (
            {"criterion": ["AO1=_111:5", "AO2=_222:5", "AO3=_333"]},
            "AO2 is out of 6 but Canvas criterion _222 is out of 5",
        ),
        ({"criterion": ["AO1=_1", "AO2=_2", "AO3=_3", "AO9=_9"]}, "no objective AO9"),
        ({"criterion": ["AO1"]}, "criterion must look like AO1=_1234"),
    ],
)
def test_canvas_mappings_that_canvas_would_reject_are_refused(
    client: httpx.Client, essay: str, params: dict[str, Any], message: str
) -> None:
    mid = client.post("/v1/markings", json=marking_body(essay)).json()["id"]
    _approve(client, mid)
    body = assert_problem(client.get(f"/v1/markings/{mid}/exports/canvas", params=params), 422, message)
    assert body["code"] == "lms_mapping"


def test_moodle_criterion_ids_are_integers(client: httpx.Client, essay: str) -> None:
    mid = client.post("/v1/markings", json=marking_body(essay, external_id="5")).json()["id"]
    _approve(client, mid)
    params = {"assignment_id": "7", "criterion": ["AO1=first", "AO2=2", "AO3=3"]}
    assert_problem(
        client.get(f"/v1/markings/{mid}/exports/moodle", params=params), 422, "Moodle criterion ids are integers"
    )
    named = client.post("/v1/markings", json=marking_body(essay, external_id="jsmith")).json()["id"]
    _approve(client, named)
    refused = client.get(f"/v1/markings/{named}/exports/moodle", params={"assignment_id": "7"})
    assert_problem(refused, 422, "'jsmith' is not a Moodle user id")


def test_the_validators_catch_what_the_platforms_refuse() -> None:
    """The transcribed rules fail on the old shapes (so a passing contract test means something)."""
    old_moodle = {
        "grade": 9,
        "advancedgradingdata": {"guide": {"criteria": [{"criterionshortname": "AO1", "score": 4}]}},
    }
    errors = moodle_errors({"assignmentid": 7, "applytoall": False, "grades": [old_moodle]})
    assert any("Missing required key" in e and "userid" in e for e in errors)
    assert any("Unexpected keys (criterionshortname, score)" in e for e in errors)
    assert moodle_errors({"assignmentid": 7, "applytoall": False, "grades": [], "draft": True}) != []
    assert canvas_submission_errors({"rubric_assessment": {"AO1": {"points": 4}}}, {"_1": 5}) != []
    assert canvas_csv_errors("external_id,status,marking_id\ns1,done,mk\n") != []
    assert (
        ags_errors(
            {
                "userId": "u",
                "scoreGiven": 3,
                "gradingProgress": "FullyGraded",
                "timestamp": "x",
                "activityProgress": "Completed",
                "source": "draft",
            }
        )
        != []
    )
    assert moodle_csv_errors("username,grade,feedback\n'-jsmith,9,x\n", {"-jsmith"}) != []


CLASS = 30


@pytest.fixture
def class_set(client: httpx.Client, essay: str) -> dict[str, Any]:
    """30 scripts; 28 approved, 2 left as drafts."""
    items = [{"external_id": str(2000 + i), "essay": essay[: 600 + 40 * i]} for i in range(CLASS)]
    batch_id = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
    batch = wait_for_batch(client, batch_id)
    for item in batch["items"][2:]:
        _approve(client, item["marking_id"])
    return batch


def test_a_class_set_exports_only_approved_scripts(client: httpx.Client, class_set: dict[str, Any]) -> None:
    bid = class_set["id"]
    drafts = [i["external_id"] for i in class_set["items"][:2]]
    criteria = ["AO1=_111", "AO2=_222", "AO3=_333"]
    for path, params in (
        ("canvas", {"criterion": criteria}),
        ("canvas.csv", {"assignment_id": "55"}),
        ("moodle", {"assignment_id": "7"}),
        ("moodle.csv", {}),
        ("lti-scores", {}),
    ):
        refused = client.get(f"/v1/batches/{bid}/exports/{path}", params=params)
        assert_problem(refused, 409, f"2 script(s) are not released: {drafts[0]}, {drafts[1]}")

    canvas = client.get(
        f"/v1/batches/{bid}/exports/canvas", params={"criterion": criteria, "released_only": "true"}
    ).json()
    assert canvas_bulk_errors(canvas["payload"], {"_111": 5, "_222": 6, "_333": 4}) == []
    assert sorted(canvas["payload"]["grade_data"]) == [str(2000 + i) for i in range(2, CLASS)]
    assert canvas["draftmark"]["held_back"] == [{"external_id": d, "reason": "not approved"} for d in drafts]
    assert canvas["payload"]["grade_data"]["2002"]["posted_grade"] == "9"
    refused = client.get(f"/v1/batches/{bid}/exports/canvas", params={"criterion": criteria, "include": "drafts"})
    assert refused.status_code == 409, "Canvas has no held-back state: drafts are never sent"

    text = client.get(
        f"/v1/batches/{bid}/exports/canvas.csv",
        params={"assignment_id": "55", "assignment": "Stalin essay", "released_only": "true"},
    ).text
    assert canvas_csv_errors(text) == []
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][-1] == "Stalin essay (55)" and len(rows) == CLASS - 1 and rows[1][1:] == ["2002", "", "", "", "9"]

    moodle = client.get(f"/v1/batches/{bid}/exports/moodle", params={"assignment_id": "7", "include": "drafts"}).json()
    assert moodle_errors(moodle["payload"]) == []
    states = {g["userid"]: g["workflowstate"] for g in moodle["payload"]["grades"]}
    assert len(states) == CLASS and states[2000] == states[2001] == "inmarking" and states[2002] == "released"
    held = client.get(
        f"/v1/batches/{bid}/exports/moodle",
        params={"assignment_id": "7", "released_only": "true", "workflow": "readyforrelease"},
    ).json()
    assert {g["workflowstate"] for g in held["payload"]["grades"]} == {"readyforrelease"}

    lti = client.get(f"/v1/batches/{bid}/exports/lti-scores", params={"include": "drafts"}).json()
    assert all(ags_errors(s) == [] for s in lti["payload"])
    given = {s["userId"]: s.get("scoreGiven") for s in lti["payload"]}
    assert given["2000"] is None and given["2002"] == 9


def test_moodle_csv_keeps_ids_as_they_are_and_maps_users(client: httpx.Client, class_set: dict[str, Any]) -> None:
    bid = class_set["id"]
    usernames = {i["external_id"]: ("-jsmith" if n == 2 else f"@pupil{n}") for n, i in enumerate(class_set["items"])}
    params = {"released_only": "true", "user": [f"{k}={v}" for k, v in usernames.items()]}
    text = client.get(f"/v1/batches/{bid}/exports/moodle.csv", params=params).text
    assert moodle_csv_errors(text, set(usernames.values())) == []
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["username"] == "-jsmith" and rows[0]["grade"] == "9" and rows[0]["feedback"].endswith(LABEL)
    unknown = client.get(f"/v1/batches/{bid}/exports/moodle.csv", params={"user": "nobody=1"})
    assert_problem(unknown, 422, "not in this class set: nobody")
    canvas = client.get(
        f"/v1/batches/{bid}/exports/canvas", params={"rubric": "false", "released_only": "true", "user": "2002=x"}
    )
    assert_problem(canvas, 422, "'x' is not a Canvas user id")


def test_class_report_csv_has_draft_and_approved_marks_and_neutralises_formulas(
    client: httpx.Client, essay: str
) -> None:
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
    moodle = client.get(f"/v1/markings/{mid}/exports/moodle", params={"assignment_id": "7", "user_id": "42"}).json()
    canvas = client.get(f"/v1/markings/{mid}/exports/canvas", params={"rubric": "false"}).json()
    lti = client.get(f"/v1/markings/{mid}/exports/lti-score", params={"user_id": "u-1"}).json()
    assert moodle["payload"]["grades"][0]["plugindata"]["assignfeedbackcomments_editor"]["text"] == text
    assert canvas["payload"]["comment"]["text_comment"] == text
    assert lti["payload"][0]["comment"] == text, "every route out carries exactly the approved text"

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
        lti = c.get(f"/v1/markings/{mid}/exports/lti-score", params={"user_id": "u"}).json()
        assert LABEL not in lti["payload"][0]["comment"]


def test_only_released_work_leaves_and_a_new_approval_needs_a_new_release(client: httpx.Client, essay: str) -> None:
    mid = client.post("/v1/markings", json=marking_body(essay)).json()["id"]
    lti = f"/v1/markings/{mid}/exports/lti-score"
    assert_problem(client.post(f"/v1/markings/{mid}/release"), 409, "not approved yet")
    _approve(client, mid, release=False)
    assert_problem(client.get(lti, params={"user_id": "u"}), 409, "not released")
    assert client.get(f"/v1/markings/{mid}/student").json()["released_at"] is None
    released = client.post(f"/v1/markings/{mid}/release").json()
    assert released["released_at"] and client.get(lti, params={"user_id": "u"}).status_code == 200
    assert client.delete(f"/v1/markings/{mid}/release").status_code == 204
    assert_problem(client.get(lti, params={"user_id": "u"}), 409, "not released")
    assert_problem(client.delete(f"/v1/markings/{mid}/release"), 409, "not released")
    _approve(client, mid)
    _approve(client, mid, release=False, marks={"AO1": 1, "AO2": 1, "AO3": 1})
    assert_problem(client.get(lti, params={"user_id": "u"}), 409, "not released"), "a changed approval is not released"
