"""LTI 1.3 against a platform emulator (tests/lti_platform.py): login, launch checks, roles, grade passback."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from joserfc.jwk import RSAKey

from service.persistence.db import make_engine
from service.persistence.stores import Store
from service.workflows.lti import rotate_key, signing_key
from tests.api_support import CountingFake, LiveServer, wait_for_batch
from tests.lti_platform import INSTRUCTOR, LEARNER, Platform, PlatformServer
from tests.test_api import assert_problem, make_settings, marking_body


@pytest.fixture
def lms(db_url: str) -> Iterator[tuple[Platform, httpx.Client, str]]:
    """(the platform, a client of the tool with an API key, the tool's URL); the platform is registered."""
    with LiveServer(make_settings(db_url, lti_allow_private=True), CountingFake()) as live:
        key = _api_key(live, db_url)
        with PlatformServer(Platform(tool_url=live.url)) as platform:
            with httpx.Client(base_url=live.url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
                created = client.post("/v1/lti/platforms", json=platform.registration())
                assert created.status_code == 201, created.text
                yield platform, client, live.url


_DB: dict[str, str] = {}


def _store(tool: str) -> Store:
    return Store(make_engine(_DB[tool]))


def _api_key(live: LiveServer, db_url: str) -> str:
    _DB[live.url] = db_url
    return _store(live.url).create_api_key("teacher")[1]


def _login(tool: str, platform: Platform, hint: str) -> dict[str, str]:
    """The platform starts a login; the tool redirects to the platform's authorize URL; the platform answers."""
    with httpx.Client(base_url=tool, timeout=30) as browser:
        started = browser.post(
            "/lti/login",
            data={
                "iss": platform.url,
                "login_hint": hint,
                "target_link_uri": f"{tool}/lti/launch",
                "client_id": platform.client_id,
                "lti_deployment_id": platform.deployment_id,
            },
        )
        assert started.status_code == 302, started.text
        location = started.headers["location"]
        query = parse_qs(urlparse(location).query)
        answer = httpx.get(location, timeout=30)
        assert answer.status_code == 200, answer.text
        fields = dict(re.findall(r"name='(\w+)' value='([^']*)'", answer.text))
        return fields | {"nonce": query["nonce"][0]}


def _launch(tool: str, fields: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{tool}/lti/launch", data={"id_token": fields["id_token"], "state": fields["state"]}, timeout=30)


def test_the_tool_publishes_its_keys_and_rotates_them(lms: tuple[Platform, httpx.Client, str]) -> None:
    _, _, tool = lms
    keys = httpx.get(f"{tool}/lti/jwks").json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and "d" not in keys[0], "public parts only"
    store = _store(tool)
    new_kid = rotate_key(store)
    rotated = httpx.get(f"{tool}/lti/jwks").json()["keys"]
    assert {k["kid"] for k in rotated} == {keys[0]["kid"], new_kid}, "the old key stays published a while"
    assert signing_key(store).kid == new_kid


def test_an_instructor_launch_signs_the_teacher_in(lms: tuple[Platform, httpx.Client, str]) -> None:
    platform, client, tool = lms
    page = _launch(tool, _login(tool, platform, "t-1:instructor"))
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    session = re.search(r"data-key='([^']+)'", page.text)
    assert session, page.text
    with httpx.Client(base_url=tool, headers={"Authorization": f"Bearer {session[1]}"}) as teacher:
        mine = client.post("/v1/markings", json=marking_body("Stalin rose to power. " * 30)).json()["id"]
        assert teacher.get(f"/v1/markings/{mine}").status_code == 200, "the session acts as the registration's owner"
    assert httpx.get(f"{tool}/v1/markings/{mine}").status_code == 401


def test_a_learner_sees_only_released_feedback(lms: tuple[Platform, httpx.Client, str], essay: str) -> None:
    platform, client, tool = lms
    mid = client.post("/v1/markings", json=marking_body(essay, external_id="s-9")).json()["id"]
    draft = client.get(f"/v1/markings/{mid}").json()["result"]
    page = _launch(tool, _login(tool, platform, "s-9:learner"))
    assert page.status_code == 200 and "has not released any feedback yet" in page.text
    assert draft["feedback"]["what_went_well"][:40] not in page.text, "never a draft"
    assert "data-key" not in page.text, "a learner is not signed in to the teacher page"
    review = {"reviewer": "Ms Reed", "marks": {"AO1": 4, "AO2": 4, "AO3": 1}, "overall_comment": "Go on to 1929."}
    client.post(f"/v1/markings/{mid}/review", json=review).raise_for_status()
    page = _launch(tool, _login(tool, platform, "s-9:learner"))
    assert "has not released any feedback yet" in page.text, "approved is not yet released"
    client.post(f"/v1/markings/{mid}/release").raise_for_status()
    page = _launch(tool, _login(tool, platform, "s-9:learner"))
    assert "9 / 15" in page.text and "Go on to 1929." in page.text
    other = _launch(tool, _login(tool, platform, "s-10:learner"))
    assert "Go on to 1929." not in other.text, "only the learner's own feedback"


def test_launches_that_fail_a_security_check_are_refused(lms: tuple[Platform, httpx.Client, str]) -> None:
    platform, _, tool = lms
    fields = _login(tool, platform, "t-1:instructor")
    head, claims, signature = fields["id_token"].split(".")
    tampered = f"{head}.{claims[:-4]}AAAA.{signature}"
    assert_problem(_launch(tool, fields | {"id_token": tampered}), 401, "")

    good = _login(tool, platform, "t-1:instructor")
    assert _launch(tool, good).status_code == 200
    replay = _launch(tool, good)
    assert_problem(replay, 401, "unknown, used or expired login state")

    fresh = _login(tool, platform, "t-1:instructor")
    token = platform.id_token(good["nonce"], sub="t-1", roles=[INSTRUCTOR])
    assert_problem(_launch(tool, fresh | {"id_token": token}), 401, "nonce")

    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"https://purl.imsglobal.org/spec/lti/claim/deployment_id": "dep-other"},
            "deployment 'dep-other' is not registered",
        ),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3900}, "expired"),
        ({"aud": "someone-else"}, "client id"),
        ({"https://purl.imsglobal.org/spec/lti/claim/version": "1.1"}, "1.3.0"),
    ]
    for override, message in cases:
        login = _login(tool, platform, "t-1:instructor")
        token = platform.id_token(login["nonce"], sub="t-1", roles=[INSTRUCTOR], **override)
        assert_problem(_launch(tool, login | {"id_token": token}), 401, message)

    login = _login(tool, platform, "t-1:instructor")
    stranger = RSAKey.generate_key(2048, parameters={"kid": "plat-1", "alg": "RS256"})
    forged = platform.id_token(login["nonce"], sub="t-1", roles=[INSTRUCTOR], key=stranger)
    assert_problem(_launch(tool, login | {"id_token": forged}), 401, "signature")

    with httpx.Client(base_url=tool) as browser:
        unknown = browser.post("/lti/login", data={"iss": "https://nobody.example", "login_hint": "x"})
        assert_problem(unknown, 401, "no registered platform")


def test_approved_marks_reach_the_gradebook_and_drafts_never_do(
    lms: tuple[Platform, httpx.Client, str], essay: str
) -> None:
    platform, client, tool = lms
    assert _launch(tool, _login(tool, platform, "t-1:instructor")).status_code == 200
    items = [{"external_id": f"s-{i}", "essay": essay[: 700 + 50 * i]} for i in range(4)]
    batch_id = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
    batch = wait_for_batch(client, batch_id)
    approved = {}
    for item in batch["items"][:3]:
        review = client.post(
            f"/v1/markings/{item['marking_id']}/review",
            json={"reviewer": "Ms Reed", "marks": {"AO1": 4, "AO2": 4, "AO3": 1}, "overall_comment": "Well argued."},
        ).json()
        approved[item["external_id"]] = review
    assert client.post(f"/v1/batches/{batch_id}/release").json() == {
        "released": 3,
        "not_approved": ["s-3"],
        "not_marked": [],
    }
    link_id = _link_id(client)

    platform.token_fail, platform.score_fail = 0, 1  # one 503 from the scores endpoint: retried with backoff
    queued = client.post(f"/v1/lti/links/{link_id}/scores", params={"batch_id": batch_id})
    assert queued.status_code == 202, queued.text
    assert {s["user_id"]: s["outcome"] for s in queued.json()}["s-3"] == "held_back"
    outcomes = _settled(client, link_id, batch_id)
    assert outcomes == {"s-0": "sent", "s-1": "sent", "s-2": "sent", "s-3": "held_back"}
    assert set(platform.gradebook) == {"s-0", "s-1", "s-2"}, "the draft never reaches the gradebook"
    entry = platform.gradebook["s-0"]
    assert (entry["score"], entry["max"]) == (9, 15) and "Well argued." in entry["comment"]
    student = client.get(f"/v1/markings/{batch['items'][0]['marking_id']}/student").json()
    assert entry["comment"].startswith(f"What went well: {student['what_went_well']}"), "exactly what the student gets"
    assert sum(1 for code, _ in platform.score_log if code == 200) == 3

    client.post(f"/v1/lti/links/{link_id}/scores", params={"batch_id": batch_id}).raise_for_status()
    assert _settled(client, link_id, batch_id)["s-0"] == "sent"
    assert sum(1 for code, _ in platform.score_log if code == 200) == 3, "sending again re-sends nothing already sent"

    client.post(
        f"/v1/markings/{batch['items'][3]['marking_id']}/review",
        json={"reviewer": "Ms Reed", "marks": {"AO1": 1, "AO2": 1, "AO3": 0}},
    ).raise_for_status()
    client.post(f"/v1/lti/links/{link_id}/scores", params={"batch_id": batch_id}).raise_for_status()
    held = _settled(client, link_id, batch_id)
    assert held["s-3"] == "held_back", "approved, not released"
    client.post(f"/v1/markings/{batch['items'][3]['marking_id']}/release").raise_for_status()
    client.post(f"/v1/lti/links/{link_id}/scores", params={"batch_id": batch_id}).raise_for_status()
    assert _settled(client, link_id, batch_id)["s-3"] == "sent"
    assert platform.gradebook["s-3"]["score"] == 2


def _settled(client: httpx.Client, link_id: str, batch_id: str, timeout_s: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get(f"/v1/lti/links/{link_id}/scores", params={"batch_id": batch_id}).json()
        outcomes = {s["user_id"]: s["outcome"] for s in status}
        if not {"queued", "sending"} & set(outcomes.values()) or time.monotonic() > deadline:
            return outcomes
        time.sleep(0.1)


def test_scores_survive_a_restart_and_give_up_with_a_reason(
    db_url: str, essay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.workflows import lti as workflow

    monkeypatch.setattr(workflow, "RETRY_BASE_S", 0.05)
    settings = make_settings(db_url, lti_allow_private=True)
    with LiveServer(settings, CountingFake()) as live:
        key = _api_key(live, db_url)
        auth = {"Authorization": f"Bearer {key}"}
        with (
            PlatformServer(Platform(tool_url=live.url)) as platform,
            httpx.Client(base_url=live.url, headers=auth) as c,
        ):
            c.post("/v1/lti/platforms", json=platform.registration()).raise_for_status()
            assert _launch(live.url, _login(live.url, platform, "t-1:instructor")).status_code == 200
            link_id = _link_id(c)
            items = [{"external_id": "s-0", "essay": essay}]
            batch_id = c.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
            marking_id = wait_for_batch(c, batch_id)["items"][0]["marking_id"]
            c.post(f"/v1/markings/{marking_id}/review", json={"reviewer": "T", "marks": {"AO1": 2, "AO2": 2, "AO3": 1}})
            c.post(f"/v1/markings/{marking_id}/release").raise_for_status()
            monkeypatch.setattr(workflow, "RETRY_BASE_S", 30.0)  # the platform is down: the next try is far off
            platform.score_fail = 1
            c.post(f"/v1/lti/links/{link_id}/scores", params={"batch_id": batch_id}).raise_for_status()
            deadline = time.monotonic() + 20
            while platform.score_fail and time.monotonic() < deadline:
                time.sleep(0.05)
            status = c.get(f"/v1/lti/links/{link_id}/scores", params={"batch_id": batch_id}).json()
            assert status[0]["outcome"] == "queued" and "503" in status[0]["detail"]
            assert platform.gradebook == {}
            saved = platform
    monkeypatch.setattr(workflow, "RETRY_BASE_S", 0.05)
    store = Store(make_engine(db_url))
    with store.transaction() as s:  # the retry falls due while the server is down
        from service.persistence.db import LtiScoreRow

        for row in s.query(LtiScoreRow):
            row.next_attempt_at = row.updated_at
    with LiveServer(settings, CountingFake()) as again, PlatformServer(saved):
        saved.tool_url = again.url
        with httpx.Client(base_url=again.url, headers=auth) as c:
            assert _settled(c, link_id, batch_id)["s-0"] == "sent", "delivered after the restart"
    assert saved.gradebook["s-0"]["score"] == 5

    monkeypatch.setattr(workflow, "MAX_ATTEMPTS", 2)
    with LiveServer(settings, CountingFake()) as third, PlatformServer(Platform(tool_url=third.url)) as platform:
        with httpx.Client(base_url=third.url, headers=auth) as c:
            platform.registration()
            refused = {"issuer": platform.url, "client_id": "other"} | {
                k: v for k, v in platform.registration().items() if k not in ("issuer", "client_id")
            }
            c.post("/v1/lti/platforms", json=refused).raise_for_status()
            platform.client_id = "other"
            assert _launch(third.url, _login(third.url, platform, "t-1:instructor")).status_code == 200
            link = next(k for k in c.get("/v1/lti/links").json() if k["id"] != link_id)
            platform.score_fail = 100
            c.post(f"/v1/lti/links/{link['id']}/scores", params={"batch_id": batch_id}).raise_for_status()
            status = _settled(c, link["id"], batch_id)
            assert status["s-0"] == "failed"
            detail = c.get(f"/v1/lti/links/{link['id']}/scores", params={"batch_id": batch_id}).json()[0]["detail"]
            assert "after 2 attempts" in detail


def _link_id(client: httpx.Client) -> str:
    links = client.get("/v1/lti/links").json()
    assert [(link["title"], link["context_id"]) for link in links] == [("Stalin essay", "course-7")]
    return str(links[0]["id"])


def test_the_cli_registers_platforms_and_rotates_the_key(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    monkeypatch.setenv("DRAFTMARK_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    runner = CliRunner()
    args = [
        "lti", "register", "--issuer", "https://canvas.example", "--client-id", "100",
        "--auth-url", "https://canvas.example/auth", "--token-url", "https://canvas.example/token",
        "--jwks-url", "https://canvas.example/jwks", "--deployment-id", "d1", "--deployment-id", "d2",
    ]  # fmt: skip
    unresolved = runner.invoke(app, args)
    assert unresolved.exit_code == 2 and "does not resolve to a public address" in unresolved.output
    plain_http = runner.invoke(
        app, [a.replace("https://canvas.example/jwks", "http://canvas.example/jwks") for a in args]
    )
    assert plain_http.exit_code == 2 and "jwks_url must be an https URL" in plain_http.output

    monkeypatch.setenv("DRAFTMARK_LTI_ALLOW_PRIVATE", "1")  # an on-premises LMS: no public DNS needed
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    listed = runner.invoke(app, ["lti", "list"])
    assert '"deployment_ids": ["d1", "d2"]' in listed.stdout
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already registered" in again.output
    assert runner.invoke(app, ["lti", "rotate-key"]).exit_code == 0


def test_platform_requests_stay_on_public_https_unless_allowed() -> None:
    from service.lti.http import platform_client
    from service.lti.tool import PlatformError

    with platform_client(allow_private=False) as guarded:
        for url in ("http://127.0.0.1:9/jwks", "https://127.0.0.1:9/jwks", "https://[::1]:9/x", "https://10.0.0.1/x"):
            with pytest.raises(PlatformError, match="DRAFTMARK_LTI_ALLOW_PRIVATE"):
                guarded.get(url)
    with platform_client(allow_private=True) as open_client, pytest.raises(httpx.ConnectError):
        open_client.get("http://127.0.0.1:9/jwks")


def test_a_platform_on_a_private_network_is_refused_by_default(db_url: str) -> None:
    with LiveServer(make_settings(db_url), CountingFake()) as live:
        key = _api_key(live, db_url)
        with PlatformServer(Platform(tool_url=live.url)) as platform:
            refused = httpx.post(
                f"{live.url}/v1/lti/platforms", json=platform.registration(), headers={"Authorization": f"Bearer {key}"}
            )
            assert_problem(refused, 422, "must be an https URL")


def test_an_instructor_creates_the_assignment_by_deep_linking(lms: tuple[Platform, httpx.Client, str]) -> None:
    platform, client, tool = lms
    picker = _launch(tool, _login(tool, platform, "t-1:instructor:deeplink"))
    assert picker.status_code == 200 and "stalin-power-1929@" in picker.text, picker.text
    ticket = re.search(r"name='ticket' value='([^']+)'", picker.text)
    scheme = re.search(r"value='(stalin-power-1929@[^']+)'", picker.text)
    assert ticket and scheme
    answer = httpx.post(
        f"{tool}/lti/deep-link", data={"ticket": ticket[1], "scheme": scheme[1], "title": "Stalin essay"}
    )
    assert answer.status_code == 200 and "lti-autopost.js" in answer.text
    action = re.search(r"action='([^']+)'", answer.text)
    response_jwt = re.search(r"name='JWT' value='([^']+)'", answer.text)
    assert action and response_jwt and action[1] == f"{platform.url}/deep-link-return"
    accepted = httpx.post(action[1], data={"JWT": response_jwt[1]})
    assert accepted.status_code == 200, accepted.text
    (item,) = platform.created
    assert item["lineItem"]["scoreMaximum"] == 15 and item["title"] == "Stalin essay"
    assert item["url"] == f"{tool}/lti/launch"

    assert _launch(tool, _login(tool, platform, "t-1:instructor")).status_code == 200
    (link,) = client.get("/v1/lti/links").json()
    assert link["scheme_ref"] == scheme[1], "a launch from the new assignment knows its scheme"

    learner = _launch(tool, _login(tool, platform, "s-1:learner:deeplink"))
    assert_problem(learner, 401, "only an instructor")
    forged = httpx.post(f"{tool}/lti/deep-link", data={"ticket": ticket[1][:-6] + "AAAAAA", "scheme": scheme[1]})
    assert_problem(forged, 401, "does not verify")


def test_the_course_roster_names_the_learners(lms: tuple[Platform, httpx.Client, str]) -> None:
    platform, client, tool = lms
    platform.roster = [
        {"user_id": "s-0", "name": "Ada Lovelace", "roles": [LEARNER], "status": "Active"},
        {"user_id": "t-1", "name": "Ms Reed", "roles": [INSTRUCTOR], "status": "Active"},
        {"user_id": "s-1", "given_name": "Alan", "family_name": "Turing", "roles": [LEARNER], "status": "Active"},
        {"user_id": "s-2", "name": "Left", "roles": [LEARNER], "status": "Inactive"},
        {"user_id": "s-3", "name": "Grace Hopper", "roles": ["Learner"], "status": "Active"},
    ]
    assert _launch(tool, _login(tool, platform, "t-1:instructor")).status_code == 200
    link = _link_id(client)
    members = client.get(f"/v1/lti/links/{link}/members")
    assert members.status_code == 200, members.text
    assert members.json() == [
        {"user_id": "s-0", "name": "Ada Lovelace"},
        {"user_id": "s-1", "name": "Alan Turing"},
        {"user_id": "s-3", "name": "Grace Hopper"},
    ], "learners only, active only, across three pages"
    with httpx.Client(base_url=tool, timeout=30) as stranger:
        other_key = _store(tool).create_api_key("another school")[1]
        refused = stranger.get(f"/v1/lti/links/{link}/members", headers={"Authorization": f"Bearer {other_key}"})
        assert_problem(refused, 404, "no LTI link")


def test_a_class_set_named_by_files_takes_the_lms_ids_from_the_roster(
    lms: tuple[Platform, httpx.Client, str], essay: str
) -> None:
    platform, client, tool = lms
    platform.roster = [
        {"user_id": "s-0", "name": "Ada Lovelace", "roles": [LEARNER], "status": "Active"},
        {"user_id": "s-1", "given_name": "Alan", "family_name": "Turing", "roles": [LEARNER], "status": "Active"},
        {"user_id": "s-3", "name": "Grace Hopper", "roles": [LEARNER], "status": "Active"},
        {"user_id": "s-4", "name": "Sam Smith", "roles": [LEARNER], "status": "Active"},
        {"user_id": "s-5", "name": "Sam Smith", "roles": [LEARNER], "status": "Active"},
    ]
    assert _launch(tool, _login(tool, platform, "t-1:instructor")).status_code == 200
    link = _link_id(client)
    names = ["Ada Lovelace.docx", "turing_alan.txt", "s-3", "Sam Smith.docx", "unknown.docx"]
    items = [{"external_id": n, "essay": essay[: 700 + 50 * i]} for i, n in enumerate(names)]
    batch_id = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
    batch = wait_for_batch(client, batch_id)
    matches = client.get(f"/v1/lti/links/{link}/roster-match", params={"batch_id": batch_id}).json()
    found = {m["external_id"]: (m["user_id"], m["matched_by"]) for m in matches}
    assert found == {
        "Ada Lovelace.docx": ("s-0", "name"),
        "turing_alan.txt": ("s-1", "name"),
        "s-3": ("s-3", "id"),
        "Sam Smith.docx": (None, None),  # two Sam Smiths: never guessed
        "unknown.docx": (None, None),
    }
    renames = {k: v for k, (v, how) in found.items() if how == "name"}
    renamed = client.post(f"/v1/batches/{batch_id}/rename", json={"renames": renames})
    assert renamed.status_code == 200, renamed.text
    assert [i["external_id"] for i in renamed.json()["items"]] == [
        "s-0",
        "s-1",
        "s-3",
        "Sam Smith.docx",
        "unknown.docx",
    ]
    first = batch["items"][0]["marking_id"]
    assert client.get(f"/v1/markings/{first}").json()["external_id"] == "s-0", "the marking follows its script"

    swapped = client.post(f"/v1/batches/{batch_id}/rename", json={"renames": {"s-0": "s-1", "s-1": "s-0"}})
    assert swapped.status_code == 200 and [i["external_id"] for i in swapped.json()["items"]][:2] == ["s-1", "s-0"]
    assert_problem(client.post(f"/v1/batches/{batch_id}/rename", json={"renames": {"s-0": "s-3"}}), 409, "share the id")
    assert_problem(client.post(f"/v1/batches/{batch_id}/rename", json={"renames": {"nope": "x"}}), 422, "not in this")
