"""Issue 12: the defects found by attacking the service, each with the test that proves it fixed.

Everything runs against a real uvicorn server on 127.0.0.1 (SQLite, and PostgreSQL in CI).
"""

from __future__ import annotations

import io
import logging
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr

from schemas.scheme import MarkScheme
from service.errors import CallerError, MarkingFailedError, ModelTimeoutError, ModelUnavailableError
from service.settings import Settings
from service.workflows.webhooks import address_allowed, check_webhook_url, deliver
from tests.api_support import CountingFake, LiveServer

ROOT = Path(__file__).resolve().parent.parent
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CANARY = "Zanzibar-canary-phrase-7431"


def make_settings(db_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "backend": "openai",
        "llm_base_url": "http://127.0.0.1:9/v1",
        "database_url": db_url,
        "batch_concurrency": 2,
        "webhook_secret": SecretStr("whsec-test"),
        "webhook_allow_private": True,
        "auth_disabled": True,
    }
    return Settings(**(values | extra))


@pytest.fixture
def fake() -> CountingFake:
    return CountingFake()


@pytest.fixture
def live(db_url: str, fake: CountingFake) -> Iterator[LiveServer]:
    with LiveServer(make_settings(db_url), fake) as server:
        yield server


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60) as c:
        yield c


def problem(response: httpx.Response, status: int, *contains: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    for text in contains:
        assert text in body["detail"], body
    return body


def marking(essay: str, **extra: Any) -> dict[str, Any]:
    return {"essay": essay, "scheme_id": "stalin-power-1929", **extra}


def docx_with(xml_body: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "word/document.xml",
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
            + xml_body
            + "</w:body></w:document>",
        )
    return buffer.getvalue()


# ---- 2. parsing uploads on the event loop ----------------------------------------------------------------------


def test_scheme_upload_is_capped_before_parsing(client: httpx.Client) -> None:
    big = b"title: x\nquestion: " + b"y" * (300 * 1024)
    body = problem(client.post("/v1/schemes/import", content=big), 413, "262,144 bytes", "DRAFTMARK_MAX_SCHEME_BYTES")
    assert body["code"] == "upload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap must hold while reading
        for _ in range(40):
            yield b"#" * 8192 + b"\n"

    problem(client.post("/v1/schemes/import", content=chunks()), 413, "DRAFTMARK_MAX_SCHEME_BYTES")


def test_docx_that_expands_hugely_is_refused(client: httpx.Client) -> None:
    bomb = docx_with("<w:p><w:r><w:t>" + "a" * (6 * 1024 * 1024) + "</w:t></w:r></w:p>")
    assert len(bomb) < 64 * 1024
    body = problem(client.post("/v1/essays/extract", content=bomb, headers={"content-type": DOCX}), 413, "4,194,304")
    assert body["code"] == "upload_too_large"


def test_essay_upload_is_capped(db_url: str) -> None:
    with LiveServer(make_settings(db_url, max_upload_bytes=4096), CountingFake()) as live:
        response = httpx.post(
            f"{live.url}/v1/essays/extract", content=b"word " * 2000, headers={"content-type": "text/plain"}
        )
    problem(response, 413, "4,096 bytes", "DRAFTMARK_MAX_UPLOAD_BYTES")


def test_slow_scheme_parse_does_not_freeze_the_server(db_url: str) -> None:
    document = ("indicative_content:\n" + "  - [a, b, c, d]\n" * 20_000).encode()
    with LiveServer(make_settings(db_url, max_scheme_bytes=4 * 1024 * 1024), CountingFake()) as live:
        outcome: dict[str, httpx.Response] = {}

        def upload() -> None:
            outcome["import"] = httpx.post(f"{live.url}/v1/schemes/import", content=document, timeout=120)

        worker = threading.Thread(target=upload)
        started = time.monotonic()
        worker.start()
        time.sleep(0.3)
        health = httpx.get(f"{live.url}/healthz", timeout=30)
        answered_after = time.monotonic() - started
        worker.join()
        parse_took = time.monotonic() - started
    assert health.status_code == 200
    problem(outcome["import"], 422, "not a valid mark scheme")
    assert parse_took > 1.0, "the document must take long enough to parse for this test to mean anything"
    assert answered_after < 0.3 + parse_took / 2, (
        f"/healthz waited {answered_after:.1f} s for a {parse_took:.1f} s parse"
    )


# ---- 3. hostile scheme documents are 4xx, and leave no traceback in the log -------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
        (b"id: x\ntotal_marks: " + b"9" * 5000 + b"\n", "cannot be read"),
        (b'{"id": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nested too deeply"),
    ],
    ids=["deep-list", "5000-digit-int", "deep-json"],
)
def test_hostile_scheme_documents_are_4xx(
    client: httpx.Client, document: bytes, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = problem(client.post("/v1/schemes/import", content=document), 422, message)
    assert body["code"] == "invalid_scheme"
    assert "Traceback" not in caplog.text and len(caplog.text) < 2000


# ---- 5. NUL and other unstorable characters, refused at the edge before any model call --------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (marking("An essay with a NUL \u0000 in the middle of it, long enough to mark."), "body.essay"),
        (marking("A fine essay about Stalin and the party.", external_id="sub\u00001"), "body.external_id"),
        (
            {"scheme_id": "stalin-power-1929", "items": [{"external_id": "a", "essay": "x\u0000y"}]},
            "body.items.0.essay",
        ),
        (
            {"scheme_id": "stalin-power-1929", "items": [{"external_id": "a\u0000", "essay": "ok"}]},
            "items.0.external_id",
        ),
    ],
    ids=["essay", "external_id", "batch-essay", "batch-external_id"],
)
def test_nul_is_a_422_naming_the_field(
    client: httpx.Client, fake: CountingFake, body: dict[str, Any], field: str
) -> None:
    path = "/v1/batches" if "items" in body else "/v1/markings"
    detail = problem(client.post(path, json=body), 422, field, "NUL")["detail"]
    assert "U+0000" in detail
    assert fake.calls == 0, "refused before any model call"


def test_lone_surrogate_is_refused(client: httpx.Client, fake: CountingFake) -> None:
    raw = b'{"scheme_id": "stalin-power-1929", "essay": "An essay \\ud800 with a lone surrogate in it."}'
    problem(client.post("/v1/markings", content=raw, headers={"content-type": "application/json"}), 422, "body.essay")
    assert fake.calls == 0


def test_nul_in_reviewer_name_and_url(client: httpx.Client, essay: str) -> None:
    created = client.post("/v1/markings", json=marking(essay)).json()
    review = {"reviewer": "Ms\u0000Reed", "marks": {"AO1": 2, "AO2": 3, "AO3": 1}}
    problem(client.post(f"/v1/markings/{created['id']}/review", json=review), 422, "body.reviewer", "NUL")
    problem(client.get("/v1/markings/mk_%00x"), 422, "NUL")
    problem(client.get("/v1/schemes/stalin-power-1929", params={"version": "1\u0000"}), 422, "NUL")


# ---- 7. inline schemes cannot smuggle unbounded prompt text ------------------------------------------------------


def test_scheme_text_is_bounded(client: httpx.Client, fake: CountingFake, stalin: MarkScheme, essay: str) -> None:
    scheme = stalin.model_dump(mode="json") | {"id": "smuggler", "version": "1"}
    one_huge = [scheme["objectives"][0] | {"indicative_content": ["x" * 100_000]}, *scheme["objectives"][1:]]
    problem(
        client.post("/v1/markings", json={"essay": essay, "scheme": scheme | {"objectives": one_huge}}),
        422,
        "at most 2000 characters",
    )
    many = [ao | {"indicative_content": ["y" * 1999] * 30} for ao in scheme["objectives"]]
    problem(
        client.post("/v1/markings", json={"essay": essay, "scheme": scheme | {"objectives": many}}),
        422,
        "the limit is 50,000",
    )
    assert fake.calls == 0


def test_rendered_prompt_is_bounded_before_any_model_call(db_url: str, stalin: MarkScheme) -> None:
    fake = CountingFake()
    settings = make_settings(db_url, max_essay_chars=9_000, max_prompt_chars=12_000)
    long_essay = ("Stalin rose to power through the party machine. " * 180)[:8_900]
    with LiveServer(settings, fake) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        body = problem(
            client.post("/v1/markings", json=marking(long_essay)), 413, "12,000", "DRAFTMARK_MAX_PROMPT_CHARS"
        )
        assert body["code"] == "prompt_too_large"
        batch = {"scheme_id": "stalin-power-1929", "items": [{"external_id": "long", "essay": long_essay}]}
        problem(client.post("/v1/batches", json=batch), 413, "item 'long'", "DRAFTMARK_MAX_PROMPT_CHARS")
    assert fake.calls == 0


# ---- 8. essays with no visible text ------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["\u200b" * 50, "\u200b \u2060\ufeff\n\t" * 10, "\u00a0\u3000" * 20])
def test_invisible_essays_are_empty_not_model_calls(client: httpx.Client, fake: CountingFake, blank: str) -> None:
    body = problem(client.post("/v1/markings", json=marking(blank)), 422, "empty", "no visible text")
    assert body["code"] == "invalid_essay"
    batch = {"scheme_id": "stalin-power-1929", "items": [{"external_id": "z", "essay": blank}]}
    problem(client.post("/v1/batches", json=batch), 422, "item 'z'", "empty")
    assert fake.calls == 0


# ---- 12. a chunked body over the limit is the same 413 -----------------------------------------------------------


def test_chunked_body_over_the_limit_is_413(db_url: str) -> None:
    with LiveServer(make_settings(db_url, max_body_bytes=4096), CountingFake()) as live:

        def chunks() -> Iterator[bytes]:
            yield b'{"scheme_id": "stalin-power-1929", "essay": "'
            for _ in range(10):
                yield b"word " * 200
            yield b'"}'

        response = httpx.post(f"{live.url}/v1/markings", content=chunks(), headers={"content-type": "application/json"})
    body = problem(response, 413, "the limit is 4.1 KB", "DRAFTMARK_MAX_BODY_BYTES")
    assert body["code"] == "body_too_large"


def test_a_body_over_the_limit_says_both_sizes_in_words(db_url: str) -> None:
    with LiveServer(make_settings(db_url, max_body_bytes=10_000_000), CountingFake()) as live:
        response = httpx.post(
            f"{live.url}/v1/essays/extract", content=b"x" * 41_200_000, headers={"content-type": "text/plain"}
        )
    problem(response, 413, "the upload is 41.2 MB; the limit is 10 MB", "split a class set")


# ---- 14. the teacher page cannot be framed and runs only its own scripts ----------------------------------------


def test_teacher_page_security_headers(client: httpx.Client) -> None:
    page = client.get("/teacher")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert directives["default-src"] == ["'self'"] and directives["frame-ancestors"] == ["'none'"]
    assert directives["script-src"] == ["'self'"] and directives["object-src"] == ["'none'"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text and " style=" not in page.text, "inline code would be blocked by the policy"


# ---- 15. every problem type links to a section of docs/errors.md -------------------------------------------------


def test_every_error_code_is_documented() -> None:
    import ast
    import re

    codes: set[str] = set()
    for path in (ROOT / "service").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and [getattr(t, "id", None) for t in item.targets] == ["code"]
                        and isinstance(item.value, ast.Constant)
                    ):
                        codes.add(str(item.value.value))
            is_problem = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "problem"
            if is_problem and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant):
                codes.add(str(node.args[2].value))
    problems = ast.parse((ROOT / "service" / "api" / "problems.py").read_text(encoding="utf-8"))
    for node in ast.walk(problems):
        if isinstance(node, ast.Dict) and all(
            isinstance(k, ast.Constant) and isinstance(k.value, int) for k in node.keys
        ):
            codes |= {
                str(v.value)
                for v in node.values
                if isinstance(v, ast.Constant) and re.fullmatch("[a-z_]+", str(v.value))
            }
    codes.add("http_error")
    assert {"internal_error", "marking_failed", "rate_limited", "body_too_large", "not_ready"} <= codes
    headings = set(re.findall(r"^## (\S+)$", (ROOT / "docs" / "errors.md").read_text(encoding="utf-8"), re.M))
    assert codes - headings == set(), "undocumented error codes"
    assert headings - codes == set(), "documented codes that nothing raises"


# ---- 10. every 5xx says when to retry, and upstream hints survive ------------------------------------------------


def test_502_answers_carry_retry_after(db_url: str, essay: str) -> None:
    from schemas.result import TokenUsage

    failing = CountingFake(
        error=MarkingFailedError("no valid marking", last_output="{}", problems=["x"], attempts=3, usage=TokenUsage())
    )
    with LiveServer(make_settings(db_url), failing) as live:
        response = httpx.post(f"{live.url}/v1/markings", json=marking(essay), timeout=30)
    problem(response, 502, "no valid marking")
    assert int(response.headers["retry-after"]) >= 1


async def test_upstream_503_retry_after_survives_the_deadline(stalin: MarkScheme, essay: str) -> None:
    from service.llm.openai_compat import OpenAICompatibleLLM
    from service.llm.port import CompletionRequest
    from service.testing import OpenAIStub, StubReply

    with OpenAIStub([StubReply(status=503, headers={"retry-after": "7"})] * 5) as stub:
        llm = OpenAICompatibleLLM(
            model="stub",
            base_url=stub.base_url,
            api_key=None,
            structured_output="json_schema",
            timeout_s=1,
            transport_retries=1,
        )
        request = CompletionRequest(
            messages=(), json_schema={"type": "object"}, schema_name="x", temperature=0, max_output_tokens=256, seed=0
        )
        started = time.monotonic()
        with pytest.raises(ModelUnavailableError) as info:
            await llm.complete(request)
    assert not isinstance(info.value, ModelTimeoutError)
    assert info.value.status_code == 503 and info.value.retry_after == 7
    assert time.monotonic() - started < 10


# ---- 9. webhooks reach only public addresses, and the address checked is the one connected to --------------------


@pytest.mark.parametrize(
    "address", ["100.64.0.1", "100.100.100.200", "192.0.0.192", "2002:7f00:1::", "::ffff:127.0.0.1", "10.0.0.1", "::1"]
)
def test_webhook_refuses_non_global_addresses(address: str) -> None:
    assert not address_allowed(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111"])
def test_webhook_allows_public_addresses(address: str) -> None:
    assert address_allowed(address)


async def test_webhook_url_check_uses_every_resolved_address() -> None:
    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "100.100.100.200"]

    with pytest.raises(CallerError, match="not public"):
        await check_webhook_url("https://hooks.example/x", allow_private=False, resolver=rebinding)


async def test_webhook_is_delivered_to_the_checked_address() -> None:
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            received.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    lookups: list[str] = []

    async def resolver(host: str, _port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    try:
        ok = await deliver(
            f"http://hooks.example:{port}/hook", {"event": "x"}, secret="s", attempts=1, resolver=resolver
        )
        refused = await deliver(
            f"http://hooks.example:{port}/hook",
            {"event": "x"},
            secret="s",
            attempts=1,
            allow_private=False,
            resolver=resolver,
        )
    finally:
        server.shutdown()
    # hooks.example does not resolve (and tests may not use the network): only the pinned address can have worked
    assert ok and received[0]["host"] == f"hooks.example:{port}" and lookups[0] == "hooks.example"
    assert not refused and len(received) == 1, "a host that now resolves to loopback is refused at delivery"


# ---- 13. failed authentication is throttled per client address ---------------------------------------------------


def test_failed_authentication_is_throttled(db_url: str) -> None:
    settings = make_settings(db_url, auth_disabled=False, auth_failures_per_minute=5)
    with LiveServer(settings, CountingFake()) as live:
        _, key = live.app.state.draftmark.store.create_api_key("real")
        good = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{live.url}/v1/schemes", headers=good).status_code == 200
        started = time.monotonic()  # the address's bucket is created (full) by the first failure
        codes = [
            httpx.get(f"{live.url}/v1/schemes", headers={"Authorization": f"Bearer dm_guess{i}"}).status_code
            for i in range(8)
        ]
        assert codes == [401] * 5 + [429] * 3
        throttled = httpx.get(f"{live.url}/v1/schemes", headers={"Authorization": "Bearer dm_guess-more"})
        elapsed = time.monotonic() - started
        body = problem(throttled, 429, "failed authentications", "DRAFTMARK_AUTH_FAILURES_PER_MINUTE")
        # 5 a minute: one failure is forgiven every 12 s, the first growing back since the first failure.
        retry_after = int(throttled.headers["retry-after"])
        assert body["code"] == "rate_limited" and 12 - elapsed <= retry_after <= 12, (retry_after, elapsed)
        assert httpx.get(f"{live.url}/v1/schemes", headers=good).status_code == 200, "a verified key still works"


# ---- 4. no essay text or model output in any log line, at any level ---------------------------------------------


def test_no_essay_text_in_logs_on_any_failure_path(
    db_url: str, essay: str, stalin: MarkScheme, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from schemas.result import TokenUsage
    from tests.conftest import dumps, good_draft

    caplog.set_level(logging.DEBUG)
    canary_essay = f"{essay}\n\n{CANARY} is the phrase the logs must never contain."
    invented = good_draft(stalin)
    invented["objectives"]["AO1"]["evidence"] = [f"{CANARY} said Stalin won every vote"]
    failures: list[Exception] = [
        MarkingFailedError(
            f"last problems: evidence {CANARY!r} is not in the essay",
            last_output=dumps(invented),
            problems=[f"{CANARY} is not in the essay"],
            attempts=3,
            usage=TokenUsage(),
        ),
        RuntimeError(f"a bug whose message quotes the essay: {CANARY}"),
        ModelUnavailableError(f"the endpoint echoed {CANARY}", retry_after=1),
    ]
    for error in failures:
        fake = CountingFake(error=error)
        with LiveServer(make_settings(db_url), fake) as live, httpx.Client(base_url=live.url, timeout=30) as client:
            assert client.post("/v1/markings", json=marking(canary_essay)).status_code >= 500
            if not isinstance(error, MarkingFailedError | ModelUnavailableError):
                continue  # a bug in a batch is the batch workers' own test
            batch = {"scheme_id": "stalin-power-1929", "items": [{"external_id": "c", "essay": canary_essay}]}
            batch_id = client.post("/v1/batches", json=batch).json()["id"]
            deadline = time.monotonic() + 30
            while client.get(f"/v1/batches/{batch_id}").json()["status"] not in ("done", "done_with_failures"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert "unhandled RuntimeError" in logged and "model error marking_failed" in logged, "failures are logged"
    assert CANARY not in logged


def test_database_errors_do_not_quote_parameters(db_url: str) -> None:
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from service.persistence.db import MarkingRow, make_engine, migrate

    engine = make_engine(db_url)
    migrate(engine)
    row = {"id": "mk_dup", "scheme_id": "s", "scheme_version": "1", "essay": CANARY, "result": "{}"}
    with pytest.raises(IntegrityError) as info:
        with engine.begin() as conn:
            conn.execute(insert(MarkingRow), [row, row])
    engine.dispose()
    assert CANARY not in str(info.value)


# ---- 11. CRLF essays: the response carries the text the offsets index into ----------------------------------------


def test_crlf_essay_is_returned_as_marked(client: httpx.Client, essay: str) -> None:
    crlf = essay.replace("\n", "\r\n")
    created = client.post("/v1/markings", json=marking(crlf))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["essay"] == essay, "the essay as marked (CRLF normalised) comes back with the result"
    quotes = [ev for ao in body["result"]["ao_marks"] for ev in ao["evidence"]]
    assert quotes and all(body["essay"][ev["start"] : ev["end"]] == ev["quote"] for ev in quotes)
    assert client.get(f"/v1/markings/{body['id']}").json()["essay"] == body["essay"]


def test_scheme_import_still_accepts_a_real_scheme(client: httpx.Client, holistic: MarkScheme) -> None:
    document = yaml.safe_dump(holistic.model_dump(mode="json") | {"id": "still-ok", "version": "1"}).encode()
    created = client.post("/v1/schemes/import", content=document)
    assert created.status_code == 201, created.text
