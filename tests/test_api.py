"""The REST API through a real uvicorn server on 127.0.0.1, on SQLite and (in CI) PostgreSQL."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from schemas.result import TokenUsage
from schemas.scheme import MarkScheme
from service.errors import MarkingFailedError, ModelUnavailableError
from service.settings import Settings
from service.workflows.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.api_support import CountingFake, LiveServer, wait_for_batch


def make_settings(db_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "backend": "openai",
        "llm_base_url": "http://127.0.0.1:9/v1",
        "database_url": db_url,
        "batch_concurrency": 4,
        "webhook_secret": SecretStr("whsec-test"),
        "webhook_allow_private": True,
    }
    return Settings(**(values | extra))


@pytest.fixture
def fake() -> CountingFake:
    return CountingFake()


@pytest.fixture
def server(db_url: str, fake: CountingFake) -> Iterator[LiveServer]:
    with LiveServer(make_settings(db_url), fake) as live:
        yield live


@pytest.fixture
def api_key(server: LiveServer) -> str:
    _, key = server.app.state.draftmark.store.create_api_key("tests")
    return key


@pytest.fixture
def client(server: LiveServer, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as c:
        yield c


def marking_body(essay: str, **extra: Any) -> dict[str, Any]:
    return {"essay": essay, "scheme_id": "stalin-power-1929", **extra}


def assert_problem(response: httpx.Response, status: int, contains: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["request_id"] and contains in body["detail"], body
    assert response.headers["x-request-id"] == body["request_id"]
    return body  # type: ignore[no-any-return]


def test_mark_store_fetch_and_export(client: httpx.Client, essay: str) -> None:
    created = client.post("/v1/markings", json=marking_body(essay, external_id="sub-1"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/v1/markings/{body['id']}"
    result = body["result"]
    assert result["total"] == sum(m["mark"] for m in result["ao_marks"]) and result["max_total"] == 15
    fetched = client.get(f"/v1/markings/{body['id']}").json()
    assert fetched["result"] == result and fetched["external_id"] == "sub-1"

    refused = client.get(f"/v1/markings/{body['id']}/exports/canvas", params={"rubric": "false"})
    assert_problem(refused, 409, "not released")  # a draft never leaves as a grade
    lti = client.get(f"/v1/markings/{body['id']}/exports/lti-score", params={"user_id": "u-42", "include": "drafts"})
    score = lti.json()["payload"][0]
    assert score["gradingProgress"] == "PendingManual" and "scoreGiven" not in score and score["userId"] == "u-42"
    assert_problem(client.get(f"/v1/markings/{body['id']}/exports/lti-score"), 422, "user_id")
    assert_problem(client.get("/v1/markings/mk_nope"), 404, "no marking")


def test_inline_scheme_and_scheme_registry(client: httpx.Client, stalin: MarkScheme, essay: str) -> None:
    listed = client.get("/v1/schemes").json()
    assert {"stalin-power-1929", "persuasive-holistic-6"} <= {s["id"] for s in listed}
    custom = stalin.model_dump(mode="json") | {"id": "custom", "version": "1"}
    first = client.post("/v1/schemes", json=custom)
    assert first.status_code == 201 and first.json()["created"] is True
    assert client.post("/v1/schemes", json=custom).status_code == 200
    assert client.get("/v1/schemes/custom", params={"version": "1"}).json()["title"] == stalin.title
    assert_problem(client.post("/v1/schemes", json=custom | {"title": "Changed"}), 409, "new version")
    changed = custom | {"title": "Changed", "version": "2"}
    used = client.post("/v1/markings", json={"essay": essay, "scheme": changed})
    assert used.status_code == 201, used.text
    assert used.json()["result"]["provenance"]["scheme_version"] == "2"
    assert_problem(client.post("/v1/markings", json={"essay": essay, "scheme": changed | {"title": "x"}}), 409, "")
    bad = custom | {"total_marks": 99}
    assert_problem(client.post("/v1/schemes", json=bad), 422, "total_marks is 99")
    assert_problem(client.get("/v1/schemes/absent"), 404, "no registered mark scheme absent")


def test_auth(server: LiveServer, client: httpx.Client, essay: str) -> None:
    anonymous = httpx.post(f"{server.url}/v1/markings", json=marking_body(essay))
    assert_problem(anonymous, 401, "Authorization: Bearer")
    assert anonymous.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(f"{server.url}/v1/schemes", headers={"Authorization": "Bearer dm_wrong"})
    assert_problem(wrong, 401, "not valid")
    mine = client.post("/v1/markings", json=marking_body(essay)).json()["id"]
    _, other_key = server.app.state.draftmark.store.create_api_key("other")
    other = httpx.get(f"{server.url}/v1/markings/{mine}", headers={"Authorization": f"Bearer {other_key}"})
    assert_problem(other, 404, "no marking")
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}


def test_idempotency(client: httpx.Client, fake: CountingFake, essay: str) -> None:
    headers = {"Idempotency-Key": "k-123"}
    first = client.post("/v1/markings", json=marking_body(essay), headers=headers)
    again = client.post("/v1/markings", json=marking_body(essay), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    assert fake.calls == 1
    assert_problem(
        client.post("/v1/markings", json=marking_body(essay + " changed"), headers=headers),
        409,
        "different request body",
    )


def test_limits_and_malformed_bodies(server: LiveServer, client: httpx.Client, essay: str) -> None:
    long_essay = "word " * 7000
    assert_problem(client.post("/v1/markings", json=marking_body(long_essay)), 422, "the limit is 30,000")
    assert_problem(client.post("/v1/markings", json=marking_body("   ")), 422, "empty")
    huge = "x" * (16 * 1024 * 1024 + 10)
    assert_problem(
        client.post("/v1/markings", content=huge, headers={"content-type": "application/json"}),
        413,
        "the upload is 16,777,226 bytes; the limit is 16,777,216 bytes",
    )
    assert_problem(
        client.post("/v1/markings", content=b'{"essay": ', headers={"content-type": "application/json"}), 422, "JSON"
    )
    assert_problem(client.post("/v1/markings", content=b"essay=hi", headers={"content-type": "text/plain"}), 422, "")
    assert_problem(client.post("/v1/markings", json={"essay": essay}), 422, "exactly one of scheme_id")
    assert_problem(
        client.post("/v1/markings", json=marking_body(essay, scheme_id="nope")), 404, "no registered mark scheme nope"
    )
    assert_problem(client.post("/v1/markings", json=marking_body(essay, options={"samples": 50})), 422, "samples")
    nested: Any = {}
    for _ in range(200):
        nested = {"a": nested}
    assert_problem(client.post("/v1/markings", json=marking_body(essay, extra=nested)), 422, "")
    items = [{"external_id": str(i), "essay": "e"} for i in range(1001)]
    assert_problem(
        client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}), 413, "at most 1000"
    )
    dupes = [{"external_id": "a", "essay": "x"}, {"external_id": "a", "essay": "y"}]
    assert_problem(client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": dupes}), 422, "repeated")
    blank = [{"external_id": "a", "essay": " "}]
    assert_problem(client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": blank}), 422, "item 'a'")


def test_model_trouble_maps_to_5xx_with_retry_after(db_url: str, essay: str) -> None:
    fake = CountingFake(error=ModelUnavailableError("endpoint overloaded", retry_after=7))
    with LiveServer(make_settings(db_url, auth_disabled=True), fake) as live:
        response = httpx.post(f"{live.url}/v1/markings", json=marking_body(essay), timeout=30)
    assert_problem(response, 503, "overloaded")
    assert response.headers["retry-after"] == "7"


def test_readyz_and_openapi(server: LiveServer) -> None:
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    assert httpx.get(f"{server.url}/docs").status_code == 200
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/v1/markings", "/v1/batches", "/v1/schemes", "/v1/batches/{batch_id}"} <= set(paths)


def test_batch_of_50_with_bounded_concurrency(db_url: str, essay: str) -> None:
    fake = CountingFake(delay_s=0.05)
    with LiveServer(make_settings(db_url, auth_disabled=True, batch_concurrency=4), fake) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            items = [{"external_id": f"s{i:02d}", "essay": f"Essay number {i}. {essay[:400]}"} for i in range(50)]
            accepted = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items})
            assert accepted.status_code == 202, accepted.text
            batch = wait_for_batch(client, accepted.json()["id"])
            assert batch["counts"] == {"queued": 0, "running": 0, "done": 50, "failed": 0, "total": 50}
            assert sorted(i["external_id"] for i in batch["items"]) == [f"s{i:02d}" for i in range(50)]
            assert len({i["marking_id"] for i in batch["items"]}) == 50
            one = client.get(f"/v1/markings/{batch['items'][0]['marking_id']}").json()
            assert one["external_id"] == "s00" and one["batch_id"] == batch["id"]
            csv_text = client.get(f"/v1/batches/{batch['id']}/export.csv").text
    assert fake.peak == 4, "concurrency to the LLM must be bounded by batch_concurrency"
    lines = csv_text.strip().splitlines()
    assert (
        lines[0].startswith(
            "external_id,status,marking_id,source,total,max_total,draft_total,approved_total,AO1_draft,AO2_draft,AO3_draft,"
            "AO1_approved,AO2_approved,AO3_approved,flags,approved_by,approved_at"
        )
        and len(lines) == 51
    )


def test_batch_failures_are_never_scored_and_can_be_retried(db_url: str, essay: str) -> None:
    fake = CountingFake(error=ModelUnavailableError("down", retry_after=1), fail_when="FAILME")
    with LiveServer(make_settings(db_url, auth_disabled=True), fake) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            items = [{"external_id": "ok", "essay": essay}, {"external_id": "bad", "essay": "FAILME " + essay}]
            batch_id = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
            batch = wait_for_batch(client, batch_id)
            assert batch["status"] == "done_with_failures"
            bad = next(i for i in batch["items"] if i["external_id"] == "bad")
            assert bad["marking_id"] is None and bad["error"] == {
                "code": "model_unavailable",
                "message": "down",
                "retryable": True,
            }
            row = [
                line
                for line in client.get(f"/v1/batches/{batch_id}/export.csv").text.splitlines()
                if line.startswith("bad,")
            ]
            assert row[0].startswith("bad,failed,,,,")
            fake.error = None
            assert client.post(f"/v1/batches/{batch_id}/retry").json() == {"requeued": 1}
            assert wait_for_batch(client, batch_id)["counts"]["done"] == 2


class _Receiver:
    """A loopback webhook receiver that fails the first N deliveries."""

    def __init__(self, fail_first: int) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.calls.append((dict(self.headers.items()), body))
                self.send_response(500 if len(receiver.calls) <= receiver.fail_first else 204)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def test_webhook_signed_and_retried(db_url: str, essay: str) -> None:
    receiver = _Receiver(fail_first=2)
    with LiveServer(make_settings(db_url, auth_disabled=True), CountingFake()) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            batch_id = client.post(
                "/v1/batches",
                json={
                    "scheme_id": "stalin-power-1929",
                    "items": [{"external_id": "a", "essay": essay}],
                    "webhook_url": receiver.url,
                },
            ).json()["id"]
            wait_for_batch(client, batch_id)
            deadline = __import__("time").monotonic() + 20
            while client.get(f"/v1/batches/{batch_id}").json()["webhook_status"] != "delivered":
                assert __import__("time").monotonic() < deadline, "webhook not delivered"
                __import__("time").sleep(0.1)
            secret = client.get("/v1/webhooks/secret").json()["secret"]
    receiver.server.shutdown()
    assert len(receiver.calls) == 3
    headers, body = receiver.calls[-1]
    assert verify(secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert json.loads(body) == {
        "event": "batch.completed",
        "batch_id": batch_id,
        "status": "done",
        "counts": {"queued": 0, "running": 0, "done": 1, "failed": 0, "total": 1},
    }


def test_webhook_url_policy(db_url: str, essay: str) -> None:
    settings = make_settings(db_url, auth_disabled=True).model_copy(update={"webhook_allow_private": False})
    with LiveServer(settings, CountingFake()) as live:
        body = {"scheme_id": "stalin-power-1929", "items": [{"external_id": "a", "essay": essay}]}
        for url, message in [("http://127.0.0.1:9/hook", "private or loopback"), ("ftp://example.org/x", "http(s)")]:
            assert_problem(httpx.post(f"{live.url}/v1/batches", json=body | {"webhook_url": url}), 422, message)


def test_marking_through_the_openai_compatible_stub(db_url: str, stalin: MarkScheme, essay: str) -> None:
    """The API with the real OpenAI-compatible adapter and a real HTTP stub behind it."""
    from service.llm.openai_compat import OpenAICompatibleLLM
    from service.testing import OpenAIStub, StubReply
    from tests.conftest import dumps, good_draft

    script = [StubReply(content=dumps(good_draft(stalin))), StubReply(status=503, headers={"retry-after": "11"})]
    with OpenAIStub(script) as stub:
        llm = OpenAICompatibleLLM(
            model="stub-model",
            base_url=stub.base_url,
            api_key=None,
            structured_output="json_schema",
            timeout_s=5,
            transport_retries=0,
        )
        with LiveServer(make_settings(db_url, auth_disabled=True), llm) as live:
            ok = httpx.post(f"{live.url}/v1/markings", json=marking_body(essay), timeout=30)
            down = httpx.post(f"{live.url}/v1/markings", json=marking_body(essay), timeout=30)
    assert ok.status_code == 201 and ok.json()["result"]["provenance"]["model"] == "stub-model"
    assert ok.json()["result"]["total"] == 6
    assert_problem(down, 503, "unavailable")
    assert down.headers["retry-after"] == "11"


def test_per_key_rate_limit(db_url: str, essay: str) -> None:
    with LiveServer(make_settings(db_url, rate_limit_per_minute=3), CountingFake()) as live:
        _, key = live.app.state.draftmark.store.create_api_key("limited")
        _, other = live.app.state.draftmark.store.create_api_key("other")
        headers = {"Authorization": f"Bearer {key}"}
        started = time.monotonic()  # the key's bucket is created (full) by the first request
        codes = [httpx.get(f"{live.url}/v1/schemes", headers=headers).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = httpx.get(f"{live.url}/v1/schemes", headers=headers)
        elapsed = time.monotonic() - started
        body = assert_problem(limited, 429, "3 requests per minute")
        # 3 a minute: a token grows back every 20 s, and the first of them started growing at the first request.
        retry_after = int(limited.headers["retry-after"])
        assert body["code"] == "rate_limited" and 20 - elapsed <= retry_after <= 20, (retry_after, elapsed)
        assert httpx.get(f"{live.url}/v1/schemes", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_review_is_stored_beside_the_draft_and_exports_as_eval_data(client: httpx.Client, essay: str) -> None:
    from evals.dataset import load_jsonl
    from evals.loaders import eval_schemes

    marking = client.post("/v1/markings", json=marking_body(essay, external_id="stu-7")).json()
    draft_marks = {m["ao_id"]: m["mark"] for m in marking["result"]["ao_marks"]}
    bad = client.post(
        f"/v1/markings/{marking['id']}/review", json={"reviewer": "Ms Reed", "marks": {"AO1": 9, "AO2": 3, "AO3": 1}}
    )
    assert_problem(bad, 422, "AO1: mark 9 is outside 0-5")
    missing = client.post(f"/v1/markings/{marking['id']}/review", json={"reviewer": "Ms Reed", "marks": {"AO1": 2}})
    assert_problem(missing, 422, "exactly these objectives")
    approved = client.post(
        f"/v1/markings/{marking['id']}/review",
        json={"reviewer": "Ms Reed", "marks": {"AO1": 2, "AO2": 3, "AO3": 1}, "comments": {"AO1": "Stops in 1922."}},
    )
    assert approved.status_code == 201, approved.text
    review = approved.json()
    assert review["total"] == 6 and review["reviewer"] == "Ms Reed"
    assert [(m["ao_id"], m["level"], m["draft_mark"]) for m in review["marks"]] == [
        ("AO1", 1, draft_marks["AO1"]),
        ("AO2", 2, draft_marks["AO2"]),
        ("AO3", 1, draft_marks["AO3"]),
    ]
    fetched = client.get(f"/v1/markings/{marking['id']}").json()
    assert fetched["review"]["total"] == 6 and fetched["essay"] == essay
    assert {m["ao_id"]: m["mark"] for m in fetched["result"]["ao_marks"]} == draft_marks, "the draft is kept"
    exported = client.get("/v1/reviews/export.jsonl", params={"scheme_id": "stalin-power-1929"})
    assert exported.status_code == 200
    path = Path(__import__("tempfile").mkdtemp()) / "approved.jsonl"
    path.write_text(exported.text)
    dataset = load_jsonl(path, {s.id: s for s in eval_schemes().list()})
    assert [(i.id, i.human) for i in dataset.items] == [("stu-7", {"AO1": 2, "AO2": 3, "AO3": 1})]
    assert dataset.items[0].metadata["marker"] == "Ms Reed"


def test_essay_upload_extraction(client: httpx.Client) -> None:
    import io
    import zipfile

    text = client.post("/v1/essays/extract", content=b"Plain essay text.", headers={"content-type": "text/plain"})
    assert text.json() == {"text": "Plain essay text."}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "word/document.xml",
            (
                '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
                "<w:p><w:r><w:t>First paragraph.</w:t></w:r></w:p><w:p><w:r><w:t>Second</w:t></w:r>"
                '<w:r><w:t xml:space="preserve"> paragraph.</w:t></w:r></w:p></w:body></w:document>'
            ),
        )
    docx = client.post(
        "/v1/essays/extract",
        content=buffer.getvalue(),
        headers={"content-type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    )
    assert docx.json() == {"text": "First paragraph.\n\nSecond paragraph."}
    assert_problem(
        client.post(
            "/v1/essays/extract",
            content=b"not a zip",
            headers={"content-type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        ),
        422,
        "not a readable .docx",
    )
    assert_problem(
        client.post("/v1/essays/extract", content=b"\xff\xfe", headers={"content-type": "text/plain"}), 422, "UTF-8"
    )
    assert_problem(
        client.post("/v1/essays/extract", content=b"x", headers={"content-type": "image/png"}), 415, "text/plain"
    )


def test_no_essay_key_or_model_output_in_logs(
    db_url: str, essay: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A model error is logged by its safe fields (code, path, attempts, request id) and nothing else.

    The error's message quotes the essay and carries the model's output, as real ones do; with the
    logs at DEBUG neither may appear, nor the API key, nor a successful marking's model output.
    """

    caplog.set_level(logging.DEBUG)
    failing_essay = "FAILME Quetzal-essay-canary-5120 " + essay
    model_output = '{"teacher_notes": "Quetzal-output-canary-8841"}'
    error = MarkingFailedError(
        f"the model kept quoting text not in the essay: {failing_essay[:60]!r}; last output {model_output}",
        last_output=model_output,
        problems=["Quetzal-output-canary-8841 is not in the essay"],
        attempts=3,
        usage=TokenUsage(),
    )
    fake = CountingFake(error=error, fail_when="FAILME")
    with LiveServer(make_settings(db_url), fake) as live:
        _, key = live.app.state.draftmark.store.create_api_key("logs")
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            ok = client.post("/v1/markings", json=marking_body(essay)).json()
            failed = client.post("/v1/markings", json=marking_body(failing_essay))
            batch = client.post(
                "/v1/batches",
                json={"scheme_id": "stalin-power-1929", "items": [{"external_id": "a", "essay": failing_essay}]},
            ).json()
            assert wait_for_batch(client, batch["id"])["status"] == "done_with_failures"
    body = assert_problem(failed, 502, "kept quoting")
    assert body["code"] == "marking_failed"

    api_lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "draftmark.api"]
    expected = f"model error marking_failed on /v1/markings after 3 attempt(s) (request {body['request_id']})"
    assert (logging.WARNING, expected) in api_lines, api_lines
    batch_lines = [r.getMessage() for r in caplog.records if r.name == "draftmark.batches"]
    assert any(
        re.fullmatch(rf"batch {batch['id']} item \S+ try 1 failed: marking_failed", line) for line in batch_lines
    ), batch_lines

    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    for secret in (
        "Quetzal-essay-canary-5120",
        "Quetzal-output-canary-8841",
        essay[100:160],
        key,
        ok["result"]["feedback"]["what_went_well"],
        ok["result"]["ao_marks"][0]["rationale"],
    ):
        assert secret not in logged


def test_cors_is_closed_by_default(server: LiveServer) -> None:
    preflight = httpx.options(
        f"{server.url}/v1/markings", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = httpx.get(f"{server.url}/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_scheme_import_from_yaml(client: httpx.Client, holistic: MarkScheme) -> None:
    import yaml

    document = yaml.safe_dump(holistic.model_dump(mode="json") | {"id": "uploaded", "version": "2"})
    created = client.post("/v1/schemes/import", content=document.encode(), headers={"content-type": "application/yaml"})
    assert created.status_code == 201 and created.json() == {"id": "uploaded", "version": "2", "created": True}
    broken = client.post("/v1/schemes/import", content=b"id: [", headers={"content-type": "application/yaml"})
    assert_problem(broken, 422, "not valid UTF-8 YAML")
    invalid = client.post(
        "/v1/schemes/import", content=b"id: x\nversion: '1'\n", headers={"content-type": "application/yaml"}
    )
    assert_problem(invalid, 422, "the uploaded scheme is not a valid mark scheme")


def test_api_keys_are_stored_as_peppered_hmacs(server: LiveServer) -> None:
    import hashlib

    import sqlalchemy

    store = server.app.state.draftmark.store
    _, key = store.create_api_key("audit")
    with store.engine.connect() as conn:
        stored = conn.execute(sqlalchemy.text("SELECT key_hash FROM api_keys WHERE name = 'audit'")).scalar_one()
        pepper = conn.execute(sqlalchemy.text("SELECT value FROM server_secrets")).scalar_one()
    assert key not in stored and stored != hashlib.sha256(key.encode()).hexdigest()
    assert len(bytes.fromhex(pepper)) == 32 and store.principal_for(key) is not None
