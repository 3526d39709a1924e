"""Exemplars a calibrator can trust: blind vs anchored approvals, unchanged drafts not counted, refits every 10."""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest

from schemas.scheme import MarkScheme
from service.calibration.fit import MIN_SCRIPTS
from service.llm.fake import FakeMarker
from service.persistence.exemplars import REFIT_EVERY, ExemplarStore
from tests.api_support import LiveServer, settled_calibration
from tests.calibration_support import marked_csv, synthetic_essay
from tests.test_api import make_settings


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    with LiveServer(make_settings(db_url), FakeMarker(policy=lambda *_: 1)) as server:
        yield server


def _client(live: LiveServer) -> tuple[httpx.Client, str]:
    store = live.app.state.draftmark.store
    _, key = store.create_api_key("teacher")
    client = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    return client, store.principal_for(key)


def _mark(client: httpx.Client, scheme: MarkScheme, seed: int) -> str:
    essay = synthetic_essay(3, random.Random(seed), "length")
    marked = client.post("/v1/markings", json={"essay": essay, "scheme_id": scheme.id})
    assert marked.status_code == 201, marked.text
    return str(marked.json()["id"])


def _approve(client: httpx.Client, marking_id: str, mark: int, mode: str | None = None) -> dict:  # type: ignore[type-arg]
    body: dict[str, object] = {"reviewer": "Ms Reed", "marks": {"overall": mark}}
    if mode is not None:
        body["mode"] = mode
    answer = client.post(f"/v1/markings/{marking_id}/review", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_blind_anchored_and_unchanged_approvals_are_told_apart(live: LiveServer, holistic: MarkScheme) -> None:
    client, principal = _client(live)
    base = f"/v1/schemes/{holistic.id}"
    with client:
        draft = 1  # the fake marks every script 1
        assert _approve(client, _mark(client, holistic, 1), draft, "blind")["mode"] == "blind"
        assert _approve(client, _mark(client, holistic, 2), draft + 2)["mode"] == "anchored", "anchored by default"
        _approve(client, _mark(client, holistic, 3), draft)  # the draft left as it was, with the draft in view
        listed = {e["basis"]: e for e in client.get(f"{base}/exemplars").json()}
        assert set(listed) == {"blind", "anchored", "unchanged_draft"}
        assert [listed[b]["counted"] for b in ("blind", "anchored", "unchanged_draft")] == [True, True, False]
        calibration = client.get(f"{base}/calibration").json()
        assert (calibration["exemplars"], calibration["counted_exemplars"]) == (3, 2)
        assert "1 approved draft(s) left unchanged" in calibration["message"]
        scripts, _ = ExemplarStore(live.app.state.draftmark.store).scripts(principal, holistic.id, holistic.version)
        assert sorted(s.marks["overall"] for s in scripts) == [1, 3], "the unchanged draft is not fitted on"

        bad = client.post(
            "/v1/markings/" + _mark(client, holistic, 4) + "/review",
            json={"reviewer": "Ms Reed", "marks": {"overall": 2}, "mode": "peeked"},
        )
        assert bad.status_code == 422 and "mode" in bad.text


def test_a_reapproval_changes_the_basis(live: LiveServer, holistic: MarkScheme) -> None:
    client, _ = _client(live)
    base = f"/v1/schemes/{holistic.id}/exemplars"
    with client:
        marking = _mark(client, holistic, 5)
        _approve(client, marking, 1)
        assert [e["basis"] for e in client.get(base).json()] == ["unchanged_draft"]
        _approve(client, marking, 1, "blind")  # marked again blind: the same mark, now independent evidence
        assert [(e["basis"], e["counted"]) for e in client.get(base).json()] == [("blind", True)]


def test_approvals_refit_every_ten_counted_scripts_and_on_request(live: LiveServer, holistic: MarkScheme) -> None:
    client, _ = _client(live)
    base = f"/v1/schemes/{holistic.id}"
    with client:
        imported = client.post(
            f"{base}/exemplars", content=marked_csv(holistic, MIN_SCRIPTS + 12, 2), headers={"content-type": "text/csv"}
        )
        assert imported.status_code == 201
        first = settled_calibration(client, base)
        assert first["status"] == "calibrated" and first["new_since_fit"] == 0
        assert first["refit_every"] == REFIT_EVERY

        markings = [_mark(client, holistic, 100 + i) for i in range(REFIT_EVERY + 1)]
        for i, marking in enumerate(markings[: REFIT_EVERY - 1]):
            _approve(client, marking, 2 + i % 3, "blind")
            now = client.get(f"{base}/calibration").json()
            assert not now["refit_pending"] and now["version"] == first["version"], "no refit script by script"
            assert now["new_since_fit"] == i + 1
        _approve(client, markings[REFIT_EVERY], 1)  # an unchanged draft: kept, but it does not count towards ten
        assert client.get(f"{base}/calibration").json()["new_since_fit"] == REFIT_EVERY - 1
        waiting = client.get(f"{base}/calibration").json()["message"]
        assert f"{REFIT_EVERY - 1} new marked script(s) since this fit" in waiting

        _approve(client, markings[REFIT_EVERY - 1], 4, "blind")  # the tenth counted script
        after = settled_calibration(client, base)
        assert after["new_since_fit"] == 0 and after["counted_exemplars"] == MIN_SCRIPTS + 12 + REFIT_EVERY
        assert after["exemplars"] == after["counted_exemplars"] + 1
        assert after["fitted_at"] > first["fitted_at"]

        _approve(client, _mark(client, holistic, 999), 5, "blind")
        assert client.get(f"{base}/calibration").json()["new_since_fit"] == 1
        asked = client.post(f"{base}/calibration/refit")
        assert asked.status_code == 202 and asked.json()["refit_pending"] is True
        assert settled_calibration(client, base)["new_since_fit"] == 0, "the teacher's refit takes the new script in"
        assert client.post("/v1/schemes/nope/calibration/refit").status_code == 404
