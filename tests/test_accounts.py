"""Teacher accounts: one command adds a teacher, who signs in with a password; sessions, CSRF, throttling, own keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from service.persistence.db import make_engine
from service.persistence.stores import Store
from tests.api_support import CountingFake, LiveServer
from tests.test_api import assert_problem, make_settings, marking_body

PASSWORD = "correct horse battery"


@pytest.fixture
def server(db_url: str) -> Iterator[tuple[str, Store]]:
    with LiveServer(make_settings(db_url, auth_failures_per_minute=5), CountingFake()) as live:
        yield live.url, Store(make_engine(db_url))


@contextmanager
def _sign_in(url: str, email: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as client:
        answer = client.post("/v1/session", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        yield client


def _csrf(client: httpx.Client) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies["draftmark_csrf"]}


def test_a_teacher_added_with_one_command_sets_a_password_and_signs_in(server: tuple[str, Store]) -> None:
    url, store = server
    user, token = store.add_user("Ms.Reed@School.org")
    assert token and not user.has_password
    with httpx.Client(base_url=url) as anon:
        assert anon.post("/v1/session", json={"email": "ms.reed@school.org", "password": PASSWORD}).status_code == 401
        assert_problem(anon.post("/v1/users/password", json={"token": token, "password": "short"}), 422, "at least 10")
        assert anon.post("/v1/users/password", json={"token": token, "password": PASSWORD}).status_code == 204
        reused = anon.post("/v1/users/password", json={"token": token, "password": PASSWORD + "!"})
        assert_problem(reused, 422, "not valid"), "the link works once"
    with _sign_in(url, "MS.REED@school.org ") as teacher:
        cookie = next(c for c in teacher.cookies.jar if c.name == "draftmark_session")
        assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite", "").lower() == "lax"
        me = teacher.get("/v1/me").json()
        assert me == {"principal": user.id, "email": "ms.reed@school.org", "via": "session"}
        created = teacher.post("/v1/markings", json=marking_body("Stalin rose to power. " * 30), headers=_csrf(teacher))
        assert created.status_code == 201, created.text
        mine = created.json()["id"]
        assert teacher.get(f"/v1/markings/{mine}").status_code == 200


def test_cookie_writes_need_the_csrf_header_and_sign_out_ends_the_session(server: tuple[str, Store]) -> None:
    url, store = server
    store.add_user("t@school.org", PASSWORD)
    with _sign_in(url, "t@school.org") as teacher:
        body = marking_body("Stalin rose to power. " * 30)
        forged = teacher.post("/v1/markings", json=body)
        assert_problem(forged, 403, "X-CSRF-Token")
        wrong = teacher.post("/v1/markings", json=body, headers={"X-CSRF-Token": "guess"})
        assert wrong.status_code == 403
        session = teacher.cookies["draftmark_session"]
        assert teacher.delete("/v1/session", headers=_csrf(teacher)).status_code == 204
        with httpx.Client(base_url=url) as replay:
            replay.cookies.set("draftmark_session", session)
            assert replay.get("/v1/me").status_code == 401, "the session ended on the server, not only in the browser"


def test_failed_sign_ins_are_throttled_per_address_and_account(server: tuple[str, Store]) -> None:
    url, store = server
    store.add_user("t@school.org", PASSWORD)
    with httpx.Client(base_url=url) as guesser:
        codes = [
            guesser.post("/v1/session", json={"email": "t@school.org", "password": f"guess-{i}-xxxx"}).status_code
            for i in range(8)
        ]
        assert codes[:5] == [401] * 5 and codes[-1] == 429
        unknown = guesser.post("/v1/session", json={"email": "nobody@school.org", "password": "whatever-long"})
        assert unknown.status_code == 429
        right = guesser.post("/v1/session", json={"email": "t@school.org", "password": PASSWORD})
        assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1


def test_a_teachers_keys_act_as_the_teacher_and_owners_are_apart(server: tuple[str, Store]) -> None:
    url, store = server
    reed, _ = store.add_user("reed@school.org", PASSWORD)
    store.add_user("khan@school.org", PASSWORD)
    with _sign_in(url, "reed@school.org") as teacher, _sign_in(url, "khan@school.org") as other:
        made = teacher.post("/v1/me/keys", json={"name": "Moodle"}, headers=_csrf(teacher))
        assert made.status_code == 201 and made.json()["key"].startswith("dm_")
        key = made.json()["key"]
        listed = teacher.get("/v1/me/keys").json()
        assert [(k["name"], k["revoked"], k["key"]) for k in listed] == [("Moodle", False, None)], "shown once"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as integration:
            assert integration.get("/v1/me").json() == {"principal": reed.id, "email": "reed@school.org", "via": "key"}
            marking = integration.post("/v1/markings", json=marking_body("Stalin rose to power. " * 30)).json()["id"]
        assert teacher.get(f"/v1/markings/{marking}").status_code == 200, "the key's work is the teacher's"
        assert other.get(f"/v1/markings/{marking}").status_code == 404, "another teacher sees nothing of it"
        key_id = listed[0]["id"]
        assert other.delete(f"/v1/me/keys/{key_id}", headers=_csrf(other)).status_code == 404
        assert teacher.delete(f"/v1/me/keys/{key_id}", headers=_csrf(teacher)).status_code == 204
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as revoked:
            assert revoked.get("/v1/me").status_code == 401


def test_a_disabled_teacher_is_signed_out_everywhere(server: tuple[str, Store]) -> None:
    url, store = server
    store.add_user("gone@school.org", PASSWORD)
    with _sign_in(url, "gone@school.org") as teacher:
        store.disable_user("gone@school.org")
        assert teacher.get("/v1/me").status_code == 401, "its sessions end (a cached one within 30 s)"
        with httpx.Client(base_url=url) as again:
            assert again.post("/v1/session", json={"email": "gone@school.org", "password": PASSWORD}).status_code == 401


def test_the_users_cli(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    monkeypatch.setenv("DRAFTMARK_DATABASE_URL", f"sqlite:///{tmp_path}/u.db")
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "a@school.org", "--url", "https://marking.school.org"])
    assert added.exit_code == 0 and added.stdout.startswith("https://marking.school.org/teacher#/set-password/")
    piped = runner.invoke(app, ["users", "add", "b@school.org", "--password-stdin"], input=PASSWORD + "\n")
    assert piped.exit_code == 0 and piped.stdout == ""
    assert runner.invoke(app, ["users", "add", "b@school.org", "--password-stdin"], input=PASSWORD).exit_code == 2
    assert runner.invoke(app, ["users", "add", "c@school.org", "--password-stdin"], input="short\n").exit_code == 2
    listed = runner.invoke(app, ["users", "list"]).stdout
    assert "a@school.org  (no password yet)" in listed and "b@school.org\n" in listed
    assert runner.invoke(app, ["users", "disable", "b@school.org"]).exit_code == 0
    assert "b@school.org  (disabled)" in runner.invoke(app, ["users", "list"]).stdout


def test_sessions_and_lti_logins_expire(db_url: str) -> None:
    from datetime import timedelta

    from service.persistence.db import LtiStateRow, migrate

    engine = make_engine(db_url)
    migrate(engine)
    store = Store(engine)
    live = store.create_session_key("usr_a", "sign-in", timedelta(hours=1))
    over = store.create_session_key("usr_a", "sign-in", timedelta(seconds=-1))
    assert store.principal_for(live) == "usr_a" and store.principal_for(over) is None
    state, _ = store.new_state("plt_x")
    with store.transaction() as s:
        row = s.get(LtiStateRow, state)
        assert row is not None
        row.created_at = row.created_at - timedelta(minutes=11)
    assert store.use_state(state) is None, "a login older than 10 minutes is refused"
    fresh, nonce = store.new_state("plt_x")
    assert store.use_state(fresh) == ("plt_x", nonce) and store.use_state(fresh) is None
