"""Direct pushes with the owner's own Canvas or Moodle token, against emulators of their grade APIs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.persistence.db import LmsConnectionRow, make_engine
from service.persistence.stores import Store
from tests.api_support import CountingFake, LiveServer, wait_for_batch
from tests.lms_api_emulator import LmsApis, LmsApiServer, decode_moodle_form
from tests.test_api import assert_problem, make_settings


@pytest.fixture
def setup(db_url: str, essay: str) -> Iterator[tuple[httpx.Client, LmsApis, str]]:
    """(client with a key, the LMS emulator, a class set of 3 with 2 approved)."""
    with LiveServer(make_settings(db_url, lti_allow_private=True), CountingFake()) as live:
        key = Store(make_engine(db_url)).create_api_key("teacher")[1]
        with LmsApiServer(LmsApis(rubric={"_1": 5, "_2": 6, "_3": 4})) as apis:
            with httpx.Client(base_url=live.url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
                items = [{"external_id": str(100 + i), "essay": essay[: 700 + 80 * i]} for i in range(3)]
                batch_id = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()[
                    "id"
                ]
                batch = wait_for_batch(client, batch_id)
                for item in batch["items"][:2]:
                    review = {"reviewer": "Ms Reed", "marks": {"AO1": 4, "AO2": 4, "AO3": 1}}
                    client.post(f"/v1/markings/{item['marking_id']}/review", json=review).raise_for_status()
                    client.post(f"/v1/markings/{item['marking_id']}/release").raise_for_status()
                yield client, apis, batch_id


def test_a_class_is_pushed_to_canvas_with_the_teachers_token(
    setup: tuple[httpx.Client, LmsApis, str], caplog: pytest.LogCaptureFixture, db_url: str
) -> None:
    client, apis, batch_id = setup
    params: dict[str, Any] = {"course_id": "7", "assignment_id": "55", "criterion": ["AO1=_1", "AO2=_2", "AO3=_3"]}
    not_connected = client.post(f"/v1/batches/{batch_id}/push/canvas", params=params)
    assert_problem(not_connected, 409, "PUT /v1/lms/connections/canvas")

    caplog.set_level(logging.DEBUG)
    put = client.put("/v1/lms/connections/canvas", json={"base_url": apis.url, "token": apis.canvas_token})
    assert put.status_code == 204, put.text
    assert client.get("/v1/lms/connections").json() == [{"kind": "canvas", "base_url": apis.url}]
    with Store(make_engine(db_url)).session() as s:
        stored = s.query(LmsConnectionRow).one()
        assert apis.canvas_token not in stored.token_encrypted, "encrypted at rest"

    drafts = client.post(f"/v1/batches/{batch_id}/push/canvas", params=params)
    assert_problem(drafts, 409, "1 script(s) are not released: 102")

    dry = client.post(
        f"/v1/batches/{batch_id}/push/canvas", params=params | {"released_only": "true", "dry_run": "true"}
    )
    shown = dry.json()
    assert dry.status_code == 200 and shown["dry_run"] is True and apis.canvas_grades == {}
    assert shown["request"]["url"] == f"{apis.url}/api/v1/courses/7/assignments/55/submissions/update_grades"
    assert shown["request"]["headers"]["Authorization"] == "Bearer ***"
    assert sorted(shown["request"]["json"]["grade_data"]) == ["100", "101"]

    sent = client.post(f"/v1/batches/{batch_id}/push/canvas", params=params | {"released_only": "true"})
    assert sent.status_code == 200, sent.text
    assert sent.json()["answer"]["workflow_state"] == "queued"
    assert apis.canvas_grades["100"]["posted_grade"] == "9"
    assert apis.canvas_grades["100"]["rubric_assessment"]["_2"]["points"] == 4
    assert "102" not in apis.canvas_grades, "the draft never went"
    assert apis.canvas_token not in caplog.text and apis.canvas_token not in dry.text, "the token is never shown"

    client.put("/v1/lms/connections/canvas", json={"base_url": apis.url, "token": "wrong"}).raise_for_status()
    refused = client.post(f"/v1/batches/{batch_id}/push/canvas", params=params | {"released_only": "true"})
    assert_problem(refused, 422, "canvas refused the grades (401)")
    assert client.delete("/v1/lms/connections/canvas").status_code == 204
    assert client.delete("/v1/lms/connections/canvas").status_code == 404


def test_a_class_is_pushed_to_moodle_with_drafts_held_back(setup: tuple[httpx.Client, LmsApis, str]) -> None:
    client, apis, batch_id = setup
    client.put("/v1/lms/connections/moodle", json={"base_url": apis.url, "token": apis.moodle_token}).raise_for_status()
    params: dict[str, Any] = {
        "assignment_id": "17",
        "criterion": ["AO1=101", "AO2=102", "AO3=103"],
        "include": "drafts",
    }
    dry = client.post(f"/v1/batches/{batch_id}/push/moodle", params=params | {"dry_run": "true"}).json()
    form = dict(dry["request"]["form"])
    assert form["wstoken"] == "***" and form["wsfunction"] == "mod_assign_save_grades"
    assert form["grades[0][advancedgradingdata][guide][criteria][0][fillings][0][criterionid]"] == "101"
    sent = client.post(f"/v1/batches/{batch_id}/push/moodle", params=params)
    assert sent.status_code == 200, sent.text
    states = {g["userid"]: (g["workflowstate"], g["grade"]) for g in apis.moodle_grades}
    assert states == {100: ("released", 9), 101: ("released", 9), 102: ("inmarking", states[102][1])}

    client.put("/v1/lms/connections/moodle", json={"base_url": apis.url, "token": "nope"}).raise_for_status()
    assert_problem(
        client.post(f"/v1/batches/{batch_id}/push/moodle", params=params),
        422,
        "Moodle refused the grades (invalidtoken)",
    )


def test_the_moodle_form_round_trips() -> None:
    from service.lms.requests import form_pairs

    params = {
        "assignmentid": 7,
        "applytoall": False,
        "grades": [{"userid": 4, "grade": 9.0, "plugindata": {"x": {"t": "a b"}}}],
    }
    assert decode_moodle_form(form_pairs(params)) == {
        "assignmentid": 7, "applytoall": 0, "grades": [{"userid": 4, "grade": 9, "plugindata": {"x": {"t": "a b"}}}]
    }  # fmt: skip


def test_connections_need_https_unless_private_networks_are_allowed(db_url: str) -> None:
    with LiveServer(make_settings(db_url), CountingFake()) as live:
        key = Store(make_engine(db_url)).create_api_key("teacher")[1]
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}) as c:
            plain = c.put("/v1/lms/connections/moodle", json={"base_url": "http://moodle.example", "token": "t"})
            assert_problem(plain, 422, "https address")
