"""Exemplars and calibration through the REST API: import, list, delete, approve, calibrated marking, isolation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from schemas.scheme import MarkScheme
from service.llm.fake import FakeMarker
from tests.api_support import LiveServer, settled_calibration
from tests.calibration_support import marked_csv, synthetic_essay
from tests.test_api import assert_problem, make_settings


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    with LiveServer(make_settings(db_url), FakeMarker(policy=lambda *_: 1)) as server:
        yield server


def _client(live: LiveServer, name: str) -> httpx.Client:
    _, key = live.app.state.draftmark.store.create_api_key(name)
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _csv(holistic: MarkScheme, n: int, seed: int) -> bytes:
    return marked_csv(holistic, n, seed)


def test_import_calibrate_mark_list_delete(live: LiveServer, holistic: MarkScheme) -> None:
    with _client(live, "teacher-a") as a, _client(live, "teacher-b") as b:
        base = f"/v1/schemes/{holistic.id}"
        before = a.get(f"{base}/calibration").json()
        assert before["status"] == "too_few_exemplars" and before["exemplars"] == 0

        imported = a.post(f"{base}/exemplars", content=_csv(holistic, 40, 2), headers={"content-type": "text/csv"})
        assert imported.status_code == 201, imported.text
        body = imported.json()
        assert (body["added"], body["updated"]) == (40, 0)
        assert body["calibration"]["refit_pending"] is True, "the import answers before its refit"
        calibration = settled_calibration(a, base)
        assert calibration["status"] == "calibrated" and calibration["exemplars"] == 40
        (objective,) = calibration["objectives"]
        assert objective["used"] and objective["cv"]["n_scripts"] == 40
        assert "calibrated on 40 of your marked scripts" in objective["summary"]
        assert "word count alone" in objective["summary"]
        again = a.post(f"{base}/exemplars", content=_csv(holistic, 40, 2), headers={"content-type": "text/csv"})
        assert (again.json()["added"], again.json()["updated"]) == (0, 40), "same texts update, never duplicate"
        calibration = settled_calibration(a, base)

        essay = synthetic_essay(5, __import__("random").Random(3), "vocabulary")
        marked = a.post("/v1/markings", json={"essay": essay, "scheme_id": holistic.id})
        assert marked.status_code == 201, marked.text
        provenance = marked.json()["result"]["provenance"]
        assert provenance["calibration"]["status"] == "calibrated"
        assert provenance["calibration"]["version"] == calibration["version"]
        assert marked.json()["result"]["ao_marks"][0]["mark"] > 1, "the fake says 1; calibration decides"

        other = b.post("/v1/markings", json={"essay": essay, "scheme_id": holistic.id}).json()
        assert other["result"]["provenance"]["calibration"]["status"] == "uncalibrated", "calibration is per owner"
        assert b.get(f"{base}/exemplars").json() == []
        assert b.get(f"{base}/calibration").json()["exemplars"] == 0

        listed = a.get(f"{base}/exemplars").json()
        assert len(listed) == 40 and {e["source"] for e in listed} == {"import"}
        assert listed[0]["external_id"].startswith("stu-") and "essay" not in listed[0]
        assert_problem(b.delete(f"{base}/exemplars/{listed[0]['id']}"), 404, "no exemplar")
        assert a.delete(f"{base}/exemplars/{listed[0]['id']}").status_code == 204
        assert settled_calibration(a, base)["exemplars"] == 39
        assert_problem(a.delete(f"{base}/exemplars/{listed[0]['id']}"), 404, "no exemplar")


def test_bad_imports_are_4xx_naming_the_line(live: LiveServer, holistic: MarkScheme) -> None:
    with _client(live, "teacher") as a:
        url = f"/v1/schemes/{holistic.id}/exemplars"
        bad = b"essay,mark\nGood text.,3\nMore text.,11\n"
        assert_problem(a.post(url, content=bad, headers={"content-type": "text/csv"}), 422, "line 3: overall mark 11")
        line = json.dumps({"id": "x", "essay": "Text.", "scheme_id": holistic.id, "human": {"overall": 2}})
        jsonl = (line + "\n{broken\n").encode()
        ndjson = {"content-type": "application/x-ndjson"}
        assert_problem(a.post(url, content=jsonl, headers=ndjson), 422, "line 2: not a JSON object")
        assert_problem(a.post(url, content=b"x", headers={"content-type": "image/png"}), 422, "send text/csv")
        assert_problem(a.post(url, content=b"\xff\xfe", headers={"content-type": "text/csv"}), 422, "not UTF-8")
        assert_problem(a.post("/v1/schemes/nope/exemplars", content=bad), 404, "no registered mark scheme nope")
        assert a.get(f"/v1/schemes/{holistic.id}/calibration").json()["exemplars"] == 0, "nothing half-imported"


def test_an_approved_script_becomes_an_exemplar_with_the_models_marks(live: LiveServer, essay: str) -> None:
    with _client(live, "teacher") as a:
        marking = a.post("/v1/markings", json={"essay": essay, "scheme_id": "stalin-power-1929"}).json()
        review = {"reviewer": "Ms Reed", "marks": {"AO1": 2, "AO2": 3, "AO3": 1}}
        assert a.post(f"/v1/markings/{marking['id']}/review", json=review).status_code == 201
        (exemplar,) = a.get("/v1/schemes/stalin-power-1929/exemplars").json()
        assert exemplar["source"] == "approved" and exemplar["marking_id"] == marking["id"]
        assert exemplar["marks"] == {"AO1": 2, "AO2": 3, "AO3": 1}
        store = live.app.state.draftmark.store
        from service.persistence.exemplars import ExemplarStore

        principal = store.principal_for(a.headers["Authorization"].split()[1])
        scripts, model = ExemplarStore(store).scripts(principal, "stalin-power-1929", "1.0")
        assert model == "fake-marker" and scripts[0].llm_marks == {
            m["ao_id"]: m["mark"] for m in marking["result"]["ao_marks"]
        }
        review["marks"] = {"AO1": 3, "AO2": 3, "AO3": 1}
        assert a.post(f"/v1/markings/{marking['id']}/review", json=review).status_code == 201
        (updated,) = a.get("/v1/schemes/stalin-power-1929/exemplars").json()
        assert updated["marks"]["AO1"] == 3 and updated["id"] == exemplar["id"], "a re-approval updates it"


def test_approval_answers_before_the_refit_and_refits_coalesce(
    live: LiveServer, essay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from service.persistence.exemplars import ExemplarStore

    started, release = threading.Event(), threading.Event()
    calls: list[str] = []
    real = ExemplarStore.refit

    def slow_refit(self: ExemplarStore, owner: str, scheme: MarkScheme):  # type: ignore[no-untyped-def]
        calls.append(scheme.ref)
        started.set()
        release.wait(10)
        return real(self, owner, scheme)

    monkeypatch.setattr(ExemplarStore, "refit", slow_refit)
    with _client(live, "teacher") as a:
        ids = [
            a.post("/v1/markings", json={"essay": essay[: 900 + 50 * i], "scheme_id": "stalin-power-1929"}).json()["id"]
            for i in range(4)
        ]
        review = {"reviewer": "Ms Reed", "marks": {"AO1": 2, "AO2": 3, "AO3": 1}}
        refit = "/v1/schemes/stalin-power-1929/calibration/refit"
        assert a.post(f"/v1/markings/{ids[0]}/review", json=review).status_code == 201
        assert a.post(refit).status_code == 202
        assert started.wait(10), "the refit runs after the answer"
        for marking_id in ids[1:]:
            assert a.post(f"/v1/markings/{marking_id}/review", json=review).status_code == 201, "no wait for the fit"
            assert a.post(refit).status_code == 202, "no wait for the fit"
        assert len(calls) == 1, "a refit is running: the requests wait for it to end, not in the request"
        release.set()
        deadline = time.monotonic() + 20
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert len(calls) == 2, "three requests during one refit make one more refit, not three"
        assert a.get("/v1/schemes/stalin-power-1929/calibration").json()["exemplars"] == 4
