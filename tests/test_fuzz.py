"""Input fuzzing against the live API: whatever arrives, the answer is never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.settings import Settings
from tests.api_support import CountingFake, LiveServer

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
FIELDS = ["essay", "scheme_id", "scheme_version", "scheme", "options", "external_id", "items", "webhook_url"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    config = Settings(
        backend="openai",
        llm_base_url="http://127.0.0.1:9/v1",
        database_url=f"sqlite:///{db}",
        auth_disabled=True,
        max_essay_chars=5000,
    )
    with LiveServer(config, CountingFake()) as server:
        yield server


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as c:
        yield c


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
def test_random_marking_bodies(client: httpx.Client, body: dict[str, Any]) -> None:
    check(client.post("/v1/markings", json=body))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_random_json_everywhere(client: httpx.Client, body: Any) -> None:
    for path in ("/v1/markings", "/v1/batches", "/v1/schemes"):
        check(client.post(path, json=body))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(essay=st.text(max_size=300), scheme=st.text(max_size=30))
def test_random_strings_in_valid_shapes(client: httpx.Client, essay: str, scheme: str) -> None:
    check(client.post("/v1/markings", json={"essay": essay, "scheme_id": scheme}))
    check(
        client.post(
            "/v1/batches",
            json={"scheme_id": "stalin-power-1929", "items": [{"external_id": scheme or "x", "essay": essay}]},
        )
    )
    from urllib.parse import quote

    check(client.get("/v1/schemes/" + (quote(scheme, safe="") or "x")))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_random_bytes_and_malformed_utf8(client: httpx.Client, raw: bytes) -> None:
    check(client.post("/v1/markings", content=raw, headers={"content-type": "application/json"}))


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"essay": "\xff\xfe bad utf8", "scheme_id": "stalin-power-1929"}', "application/json"),
        (b"essay=hello&scheme_id=stalin-power-1929", "application/x-www-form-urlencoded"),
        (b"<essay>hello</essay>", "application/xml"),
        (b"", "application/json"),
        (json.dumps({"essay": "x" * 5001, "scheme_id": "stalin-power-1929"}).encode(), "application/json"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (
            json.dumps({"essay": "hi", "scheme_id": "stalin-power-1929", "options": {"samples": 10**30}}).encode(),
            "application/json",
        ),
    ],
)
def test_hostile_payloads(client: httpx.Client, content: bytes, content_type: str) -> None:
    check(client.post("/v1/markings", content=content, headers={"content-type": content_type}))


def test_path_and_query_garbage(client: httpx.Client) -> None:
    for path in [
        "/v1/markings/%00",
        "/v1/markings/" + "a" * 5000,
        "/v1/batches/..%2f..%2fetc",
        "/v1/schemes/%ff",
        "/v1/markings/x/exports/lti-score?user_id=",
        "/v1/markings/x/exports/canvas?criterion=bad",
    ]:
        check(client.get(path))


def test_docs_reachable(client: httpx.Client, tmp_path: Path) -> None:
    assert client.get("/openapi.json").status_code == 200
