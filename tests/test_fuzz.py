"""Input fuzzing against the live API: each answer is the one the input deserves (4xx problem or 2xx), never a 5xx."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from service.schemes import SchemeLibrary
from service.settings import Settings
from tests.api_support import CountingFake, LiveServer

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
words = st.lists(st.text(st.characters(categories=["L"]), min_size=1, max_size=12), min_size=4, max_size=40).map(
    " ".join
)
"""Essays of random words of letters: the fake model can always quote from them (so markings succeed)."""
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


KNOWN_SCHEMES = sorted(s.id for s in SchemeLibrary().list())
"""The only scheme ids a request can name on this server (nothing registers others)."""


def check(response: httpx.Response, expected: int | None = None) -> None:
    """The answer ``expected`` (a status), or, left out, a 4xx problem: the input is invalid.

    Never a 5xx, and never a 2xx for input that does not deserve one.
    """
    if expected is None:
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
    else:
        assert response.status_code == expected, (expected, response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]


def essay_is_valid(essay: str) -> bool:
    """Some visible character (letter, digit, punctuation, symbol) and nothing a store cannot hold (NUL)."""
    return any(unicodedata.category(c)[0] in "LNPS" for c in essay) and "\x00" not in essay


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
def test_random_marking_bodies(client: httpx.Client, body: dict[str, Any]) -> None:
    # Random values name no registered scheme and make no valid inline one: every such body is invalid.
    assume(body.get("scheme_id") not in KNOWN_SCHEMES)
    check(client.post("/v1/markings", json=body))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_random_json_everywhere(client: httpx.Client, body: Any) -> None:
    assume(not (isinstance(body, dict) and body.get("scheme_id") in KNOWN_SCHEMES))
    for path in ("/v1/markings", "/v1/batches", "/v1/schemes"):
        check(client.post(path, json=body))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(essay=st.text(max_size=300) | words, scheme=st.sampled_from(KNOWN_SCHEMES) | st.text(max_size=30))
@example(essay=" \n\t ", scheme="stalin-power-1929")  # blank
@example(essay="\u200b\u2060\u00ad", scheme="stalin-power-1929")  # only invisible format characters
@example(essay="Stalin won in nineteen twenty\x00nine", scheme="stalin-power-1929")  # unstorable
@example(essay="Stalin won the succession struggle", scheme="persuasive-holistic-6")
def test_random_strings_in_valid_shapes(client: httpx.Client, essay: str, scheme: str) -> None:
    known, valid = scheme in KNOWN_SCHEMES, essay_is_valid(essay)
    marked = client.post("/v1/markings", json={"essay": essay, "scheme_id": scheme})
    event(f"marking answered {marked.status_code}")
    quotable = len(essay.split()) >= 4 and all(word.isalpha() for word in essay.split())
    if known and valid and not quotable and marked.status_code == 502:
        # Valid input that the fake model finds nothing to quote from (it quotes the first words as
        # evidence): the model's failure after the re-asks, never the caller's, and never a 4xx.
        assert marked.json()["code"] == "marking_failed"
    elif known and valid:
        check(marked, 201)
        assert marked.json()["result"]["provenance"]["scheme_id"] == scheme
    elif known or "\x00" in essay:
        check(marked, 422)  # the essay is empty or unstorable
    elif valid:
        check(marked, 404)  # no such scheme
    else:
        check(marked)  # both wrong: either answer is right
    external_id = scheme or "x"
    id_is_valid = not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in external_id)
    check(
        client.post(
            "/v1/batches",
            json={"scheme_id": "stalin-power-1929", "items": [{"external_id": external_id, "essay": essay}]},
        ),
        202 if valid and id_is_valid else 422,
    )
    from urllib.parse import quote

    path = quote(scheme, safe="") or "x"
    if not path.strip("."):  # "." and ".." would be dot segments the client resolves away
        path = path.replace(".", "%2E")
    check(client.get("/v1/schemes/" + path), 200 if known else 422 if "\x00" in scheme else 404)


def _printable_line(text: str, max_length: int) -> bool:
    return (
        0 < len(text) <= max_length
        and bool(text.strip())
        and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(max_size=130),
    skipped=st.lists(st.fixed_dictionaries({"name": st.text(max_size=12), "reason": st.text(max_size=12)}), max_size=3),
)
@example(name="10B History – Stalin essay", skipped=[{"name": "photo.png", "reason": "not a .txt file"}])
def test_random_set_names_and_skipped_files(client: httpx.Client, name: str, skipped: list[dict[str, str]]) -> None:
    valid = _printable_line(name, 120) and all(
        _printable_line(s["name"], 500) and _printable_line(s["reason"], 1000) for s in skipped
    )
    body = {"scheme_id": "stalin-power-1929", "name": name, "skipped": skipped}
    accepted = client.post("/v1/batches", json=body | {"items": [{"external_id": "a", "essay": "Stalin won by 1929."}]})
    check(accepted, 202 if valid else 422)
    if valid:
        stored = client.get(f"/v1/batches/{accepted.json()['id']}").json()
        assert (stored["name"], stored["skipped"]) == (name, skipped)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_random_bytes_and_malformed_utf8(client: httpx.Client, raw: bytes) -> None:
    check(client.post("/v1/markings", content=raw, headers={"content-type": "application/json"}))


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"essay": "\xff\xfe bad utf8", "scheme_id": "stalin-power-1929"}', "application/json", 400),
        (b"essay=hello&scheme_id=stalin-power-1929", "application/x-www-form-urlencoded", 422),
        (b"<essay>hello</essay>", "application/xml", 422),
        (b"", "application/json", 422),
        (json.dumps({"essay": "x" * 5001, "scheme_id": "stalin-power-1929"}).encode(), "application/json", 422),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400),  # unparseable bodies: 400
        (
            json.dumps({"essay": "hi", "scheme_id": "stalin-power-1929", "options": {"samples": 10**30}}).encode(),
            "application/json",
            422,
        ),
    ],
)
def test_hostile_payloads(client: httpx.Client, content: bytes, content_type: str, status: int) -> None:
    check(client.post("/v1/markings", content=content, headers={"content-type": content_type}), status)


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
