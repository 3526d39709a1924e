"""Issue 19: the eight defects of the third hostile-input round, each with the test that proves it fixed.

API tests run against a real uvicorn server on 127.0.0.1, on SQLite and (in CI) PostgreSQL: the
racing approvals and the over-long ids were PostgreSQL-only 500s.
"""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from schemas.grounding import EssayIndex
from schemas.scheme import MarkScheme
from schemas.text import identifier_problem, plain_label
from service.api.class_set import MAX_OTHER_ENTRIES, SKIPPED_LISTED, from_csv, from_zip
from service.calibration.importing import parse_marked_scripts
from service.errors import CallerError, MarkingFailedError, PayloadTooLargeError
from service.llm.fake import ScriptedLLM
from service.persistence.exemplars import ExemplarStore
from service.pipeline import mark_essay
from service.reask import parse_draft
from service.settings import Settings
from service.workflows.refits import Refits
from service.workflows.review import ReviewCreate, build_review
from tests.api_support import CountingFake, LiveServer, settled_calibration
from tests.calibration_support import marked_csv
from tests.conftest import good_draft
from tests.test_hostile_input import make_settings

ZIP = {"content-type": "application/zip"}
CSV = {"content-type": "text/csv"}
JSONL = {"content-type": "application/x-ndjson"}


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    with LiveServer(make_settings(db_url), CountingFake()) as server:
        yield server


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60) as c:
        yield c


def problem(response: httpx.Response, status: int, *parts: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    detail = response.json()["detail"]
    for part in parts:
        assert part in detail, detail


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


# 1. A class set of empty rows or files is bounded, summarised and refused past the bound.


def test_a_csv_of_empty_rows_is_refused_with_413_after_the_bound_not_read_to_the_end() -> None:
    rows = b"student,essay\n" + b"x,\n" * 5_000_000  # the attack: 15 MB, 5 million empty rows
    # Bytes that are not UTF-8 at the very end: a parser that read (or decoded) the whole file first
    # would answer "not UTF-8"; one that stops at the bound never reaches them.
    with pytest.raises(PayloadTooLargeError, match=f"more than {MAX_OTHER_ENTRIES:,} entries without an essay"):
        from_csv(rows + b"\xff\xfe,\n", max_files=1000, max_chars=30_000)
    with pytest.raises(CallerError, match="not UTF-8"):
        from_csv(b"student,essay\n" + b"x,\n" * 10 + b"\xff\xfe,\n", max_files=1000, max_chars=30_000)


def test_skipped_rows_are_counted_and_only_the_first_few_listed() -> None:
    body = "student,essay\n" + "".join(f"s{i},\n" for i in range(300)) + "ann,An essay.\nbob,Another one.\n"
    found = from_csv(body.encode(), max_files=1000, max_chars=30_000)
    assert [e.external_id for e in found.essays] == ["ann", "bob"]
    assert found.skipped_count == 300
    assert len(found.skipped) == SKIPPED_LISTED and found.skipped[0].name == "row 2"


def test_a_zip_of_many_empty_files_is_refused_before_any_is_read() -> None:
    members = {f"s{i}.txt": b"" for i in range(1000 + MAX_OTHER_ENTRIES + 1)}
    with pytest.raises(PayloadTooLargeError, match=r"the zip holds 2,001 entries; a class set may hold at most 2,000"):
        from_zip(_zip(members), max_files=1000, max_file_bytes=10_000, max_chars=30_000)
    found = from_zip(
        _zip({"a.txt": b"An essay.", **{f"e{i}.txt": b"" for i in range(50)}}),
        max_files=1000,
        max_file_bytes=10_000,
        max_chars=30_000,
    )
    assert len(found.essays) == 1 and found.skipped_count == 50 and len(found.skipped) == SKIPPED_LISTED


def test_the_api_answers_413_and_a_small_answer_for_empty_rows(client: httpx.Client) -> None:
    rows = b"student,essay\n" + b"x,\n" * 1_000_000
    problem(client.post("/v1/essays/extract-set", content=rows, headers=CSV), 413, "entries without an essay")
    ok = client.post("/v1/essays/extract-set", content=b"student,essay\n" + b"x,\n" * 500 + b"y,Text.\n", headers=CSV)
    assert ok.status_code == 200 and len(ok.content) < 5_000, len(ok.content)
    assert ok.json()["skipped_count"] == 500 and len(ok.json()["essays"]) == 1
    assert client.get("/healthz").status_code == 200


# 7. Names with control characters are made printable at extraction, so the set queues as returned.


def test_control_characters_in_names_are_cleaned_and_the_set_queues_as_returned(client: httpx.Client) -> None:
    sheet = 'student,essay\r\n"Ann\tLee\x07",First essay.\r\n\x1b[31mBob,Second essay.\r\n\x01\x02,Third.\r\n'
    extracted = client.post("/v1/essays/extract-set", content=sheet.encode(), headers=CSV)
    assert extracted.status_code == 200, extracted.text
    names = [e["external_id"] for e in extracted.json()["essays"]]
    assert names == ["Ann Lee", "[31mBob", "row 4"]
    archive = _zip({"Cara\x1f Doe.txt": b"Zip essay."})
    from_archive = client.post("/v1/essays/extract-set", content=archive, headers=ZIP).json()["essays"]
    assert [e["external_id"] for e in from_archive] == ["Cara Doe"]
    items = [{"external_id": e["external_id"], "essay": e["text"]} for e in extracted.json()["essays"] + from_archive]
    queued = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items})
    assert queued.status_code == 202, queued.text


def test_one_identifier_rule() -> None:
    assert identifier_problem("stu-1") is None
    assert "empty" in (identifier_problem("  ") or "")
    assert "300 characters" in (identifier_problem("x" * 300) or "")
    assert "U+0000" in (identifier_problem("a\x00b") or "")
    assert "U+0085" in (identifier_problem("a\x85b") or "")
    assert plain_label("\x00a\tb\n\nc\x7f") == "a b c" and len(plain_label("y" * 500)) == 200


# 3. and 4. Malformed marked-script files and ids: 422 naming the line, on every database.


@pytest.mark.parametrize(
    ("content", "headers", "expected"),
    [
        ("essay,mark\nGood text.,²\n", CSV, "line 2: overall mark '²' is not a whole number"),
        ("essay,mark\nGood text.,--1\n", CSV, "line 2: overall mark '--1' is not a whole number"),
        ("essay,mark\nGood text.,٣\n", CSV, "is not a whole number"),
        (
            '{"id":"a","essay":"Text.","scheme_id":"persuasive-holistic-6","human":{"overall":' + "9" * 5000 + "}}\n",
            JSONL,
            "line 1: not a JSON object",
        ),
        (
            '{"id":"a","essay":"Text \\ud800.","scheme_id":"persuasive-holistic-6","human":{"overall":2}}\n',
            JSONL,
            "line 1: the essay contains a lone surrogate (U+D800)",
        ),
        (
            '{"id":"a\\u0000b","essay":"Text.","scheme_id":"persuasive-holistic-6","human":{"overall":2}}\n',
            JSONL,
            "line 1: the id contains a NUL character",
        ),
        (
            '{"id":"' + "i" * 300 + '","essay":"Text.","scheme_id":"persuasive-holistic-6","human":{"overall":2}}\n',
            JSONL,
            "line 1: the id is 300 characters long",
        ),
        ('id,essay,mark\nok,Text one.,2\n"a\x1bb",Text two.,3\n', CSV, "line 3: the 'id' contains the control"),
        ("student,essay,mark\n" + "s" * 10_000 + ",Text.,2\n", CSV, "line 2: the 'student' is 10,000 characters"),
        ("essay,mark\nSame text.,2\nOther.,1\nSame text.,3\n", CSV, "line 2 and line 4 hold the same essay"),
    ],
)
def test_malformed_marked_scripts_are_422_naming_the_line(
    client: httpx.Client, content: str, headers: dict[str, str], expected: str
) -> None:
    url = "/v1/schemes/persuasive-holistic-6/exemplars"
    problem(client.post(url, content=content.encode("utf-8", "surrogatepass"), headers=headers), 422, expected)
    assert client.get(url).json() == [], "nothing half-imported"


def test_a_repeated_script_with_the_same_marks_is_one_exemplar(holistic: MarkScheme) -> None:
    scripts = parse_marked_scripts(b"essay,mark\nSame text.,2\nOther.,1\nSame text.,2\n", "text/csv", holistic)
    assert [s.essay for s in scripts] == ["Same text.", "Other."]


# 2. No request waits for a fit; fits are bounded per owner and in total.


def _marked_csv(scheme: MarkScheme, n: int, seed: int) -> bytes:
    return marked_csv(scheme, n, seed, prefix=f"stu-{seed}")


def test_an_import_answers_before_its_refit_and_says_one_is_pending(
    client: httpx.Client, holistic: MarkScheme, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    started = threading.Event()
    real = ExemplarStore.refit

    def slow_refit(self: ExemplarStore, owner: str, scheme: MarkScheme) -> Any:
        started.set()
        release.wait(30)
        return real(self, owner, scheme)

    monkeypatch.setattr(ExemplarStore, "refit", slow_refit)
    url = f"/v1/schemes/{holistic.id}"
    try:
        imported = client.post(f"{url}/exemplars", content=_marked_csv(holistic, 30, 1), headers=CSV)
        assert imported.status_code == 201, imported.text
        assert imported.json()["calibration"]["refit_pending"] is True
        assert started.wait(10), "the refit starts in the background"
        during = client.get(f"{url}/calibration").json()
        assert during["refit_pending"] is True and during["status"] == "too_few_exemplars"
        assert "previous figures" in during["message"]
        deleted = client.delete(f"{url}/exemplars/{client.get(f'{url}/exemplars').json()[0]['id']}")
        assert deleted.status_code == 204, "a deletion does not wait for the running fit either"
    finally:
        release.set()
    after = settled_calibration(client, url)
    assert after["refit_pending"] is False and after["status"] == "calibrated" and after["exemplars"] == 29
    assert after["objectives"][0]["cv"]["n_scripts"] == 29, "the deletion was folded into one more refit"


def test_a_deletion_removes_the_fit_holding_the_scripts_text_at_once(
    live: LiveServer, holistic: MarkScheme, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        url = f"/v1/schemes/{holistic.id}"
        client.post(f"{url}/exemplars", content=_marked_csv(holistic, 30, 2), headers=CSV)
        assert settled_calibration(client, url)["status"] == "calibrated"
        store = ExemplarStore(live.app.state.draftmark.store)
        release = threading.Event()
        real = ExemplarStore.refit
        monkeypatch.setattr(ExemplarStore, "refit", lambda self, o, s: (release.wait(30), real(self, o, s))[1])
        try:
            gone = client.get(f"{url}/exemplars").json()[0]["id"]
            assert client.delete(f"{url}/exemplars/{gone}").status_code == 204
            assert store.current("local", holistic.id, holistic.version) is None, "the fit went with the script"
            assert client.get(f"{url}/calibration").json()["refit_pending"] is True
        finally:
            release.set()
        assert settled_calibration(client, url)["exemplars"] == 29


async def test_refits_are_bounded_per_owner_and_in_total(holistic: MarkScheme, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = threading.Lock()
    running: dict[str, int] = {}
    calls: dict[str, int] = {}
    peaks: dict[str, int] = {}

    def fake_refit(self: ExemplarStore, owner: str, scheme: MarkScheme) -> None:
        with lock:
            calls[owner] = calls.get(owner, 0) + 1
            running[owner] = running.get(owner, 0) + 1
            peaks[owner] = max(peaks.get(owner, 0), running[owner])
            peaks["total"] = max(peaks.get("total", 0), sum(running.values()))
        time.sleep(0.05)
        with lock:
            running[owner] -= 1

    monkeypatch.setattr(ExemplarStore, "refit", fake_refit)
    refits = Refits(total=2, per_owner=1)
    schemes = [holistic.model_copy(update={"id": f"scheme-{i}"}) for i in range(4)]
    for owner in ("a", "b"):
        for scheme in schemes:
            refits.request(None, owner, scheme)  # type: ignore[arg-type]
    for _ in range(5):
        refits.request(None, "c", schemes[0])  # type: ignore[arg-type]
    await refits.drain()
    assert peaks == {"total": 2, "a": 1, "b": 1, "c": 1}
    assert calls == {"a": 4, "b": 4, "c": 1}, "five requests for one scheme before its refit starts: one refit"


# 5. Racing approvals and imports: every caller gets its 201, one exemplar, approval and exemplar together.


def test_racing_approvals_and_imports_all_succeed_with_one_exemplar(
    client: httpx.Client, essay: str, holistic: MarkScheme
) -> None:
    marking = client.post("/v1/markings", json={"essay": essay, "scheme_id": "stalin-power-1929"}).json()
    review = {"reviewer": "Ms Reed", "marks": {"AO1": 2, "AO2": 3, "AO3": 1}}
    url = f"/v1/markings/{marking['id']}/review"
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: client.post(url, json=review).status_code, range(8)))
    assert statuses == [201] * 8
    (exemplar,) = client.get("/v1/schemes/stalin-power-1929/exemplars").json()
    assert exemplar["marking_id"] == marking["id"]

    body = _marked_csv(holistic, 12, 3)
    with ThreadPoolExecutor(3) as pool:
        imports = list(
            pool.map(
                lambda _: client.post(f"/v1/schemes/{holistic.id}/exemplars", content=body, headers=CSV).status_code,
                range(3),
            )
        )
    assert imports == [201] * 3
    assert len(client.get(f"/v1/schemes/{holistic.id}/exemplars").json()) == 12


def test_an_approval_and_its_exemplar_are_one_transaction(live: LiveServer, essay: str) -> None:
    store = live.app.state.draftmark.store
    with httpx.Client(base_url=live.url, timeout=60) as client:
        marking = client.post("/v1/markings", json={"essay": essay, "scheme_id": "stalin-power-1929"}).json()
    stored = store.get_marking(marking["id"])
    scheme = store.get_scheme("stalin-power-1929", None, owner="local")
    assert scheme is not None
    body = ReviewCreate(reviewer="Ms Reed", marks={"AO1": 2, "AO2": 3, "AO3": 1})
    review = build_review(stored.id, body, stored.result, scheme, datetime.now(UTC))

    def fails(_: object) -> None:
        raise RuntimeError("the exemplar write failed")

    with pytest.raises(RuntimeError):
        store.save_review(review, also=fails)
    assert store.latest_reviews([stored.id]) == {}, "no approval without its exemplar"


# 8. Review marks are strict integers.


@pytest.mark.parametrize("bad", [True, "3", 3.0, "three", None])
def test_review_marks_must_be_json_integers(client: httpx.Client, essay: str, bad: object) -> None:
    marking = client.post("/v1/markings", json={"essay": essay, "scheme_id": "stalin-power-1929"}).json()
    review = {"reviewer": "Ms Reed", "marks": {"AO1": bad, "AO2": 3, "AO3": 1}}
    problem(client.post(f"/v1/markings/{marking['id']}/review", json=review), 422, "AO1")
    assert client.get(f"/v1/markings/{marking['id']}").json().get("review") is None


# 6. A model reply with a 5,000-digit integer is a re-ask, then marking_failed (502), never a 500.


def test_a_reply_with_a_huge_integer_is_a_problem_to_reask(stalin: MarkScheme, essay: str) -> None:
    problems = parse_draft('{"objectives": {"AO1": {"mark": ' + "9" * 5000 + "}}}", stalin, EssayIndex(essay))
    assert problems == ["the reply is not valid JSON (a number is too long; marks are small whole numbers)"]
    assert parse_draft("[" * 100_000 + "]" * 100_000, stalin, EssayIndex(essay)) == [
        "the reply is not valid JSON (nested too deeply)"
    ]


async def test_huge_integers_end_in_marking_failed_after_the_reasks(
    stalin: MarkScheme, essay: str, settings: Settings
) -> None:
    huge = json.dumps(good_draft(stalin)).replace('"mark": 2', '"mark": ' + "9" * 5000, 1)
    llm = ScriptedLLM([huge] * 3)
    with pytest.raises(MarkingFailedError):
        await mark_essay(essay, stalin, llm=llm, settings=settings)
    assert len(llm.history) == 3, "two re-asks, then the typed failure"
    assert "a number is too long" in llm.history[1].messages[-1].content


# Operational endpoints: open by default, behind DRAFTMARK_OPS_TOKEN when it is set.


def test_ops_endpoints_are_open_by_default(client: httpx.Client) -> None:
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "draftmark"
    assert client.get("/docs").status_code == 200 and "swagger" in client.get("/docs").text.lower()
    assert "model" in client.get("/readyz").json()


def test_an_ops_token_guards_metrics_docs_and_readiness_detail(db_url: str) -> None:
    token = "ops-token-0123456789abcdef"
    with LiveServer(make_settings(db_url, ops_token=SecretStr(token)), CountingFake()) as server:
        with httpx.Client(base_url=server.url, timeout=30) as anon:
            for path in ("/metrics", "/openapi.json", "/docs", "/redoc"):
                problem(anon.get(path), 401, "DRAFTMARK_OPS_TOKEN")
                assert anon.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
            assert anon.get("/readyz").json() == {"status": "ready"}, "status alone: no model, workers or broker"
            assert anon.get("/healthz").status_code == 200
        with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as ops:
            assert ops.get("/metrics").status_code == 200 and "draftmark" in ops.get("/metrics").text
            assert ops.get("/openapi.json").status_code == 200 and ops.get("/docs").status_code == 200
            assert ops.get("/readyz").json()["model"] == "counting-fake"


def test_a_short_ops_token_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="DRAFTMARK_OPS_TOKEN must be at least 16 characters"):
        Settings(ops_token=SecretStr("short"))


def test_marks_as_parsed_are_unchanged_for_valid_files(holistic: MarkScheme) -> None:
    scripts = parse_marked_scripts(b"id,essay,mark\nstu-1,Text one.,1\nstu-2,Text two.,06\n", "text/csv", holistic)
    assert [(s.external_id, s.marks) for s in scripts] == [("stu-1", {"overall": 1}), ("stu-2", {"overall": 6})]
    with pytest.raises(CallerError, match="line 2: overall mark 7 is outside 1-6"):
        parse_marked_scripts(b"essay,mark\nText.,7\n", "text/csv", holistic)


def test_a_zip64_entry_marker_is_counted_after_parsing_not_refused() -> None:
    data = bytearray(_zip({"a.txt": b"First essay.", "b.txt": b"Second essay."}))
    at = data.rfind(b"PK\x05\x06")
    data[at + 8 : at + 12] = b"\xff\xff\xff\xff"  # "see the zip64 record": the 16-bit counts say nothing
    found = from_zip(bytes(data), max_files=1000, max_file_bytes=10_000, max_chars=30_000)
    assert [e.external_id for e in found.essays] == ["a", "b"]
