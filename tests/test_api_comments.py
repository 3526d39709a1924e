"""The comment bank API (/v1/schemes/{id}/comments) through a real server, on SQLite and (in CI) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from service.persistence.stores.comments import MAX_COMMENT_CHARS, MAX_COMMENTS_PER_SCHEME
from tests.api_support import CountingFake, LiveServer
from tests.test_api import assert_problem, make_settings

BANK = "/v1/schemes/stalin-power-1929/comments"


@pytest.fixture
def server(db_url: str) -> Iterator[LiveServer]:
    with LiveServer(make_settings(db_url), CountingFake()) as live:
        yield live


def _client(server: LiveServer, name: str) -> httpx.Client:
    _, key = server.app.state.draftmark.store.create_api_key(name)
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with _client(server, "tests") as c:
        yield c


def test_save_list_dedupe_and_delete(client: httpx.Client) -> None:
    first = client.post(BANK, json={"text": "  Date each example.  "})
    assert first.status_code == 201, first.text
    assert first.json()["text"] == "Date each example." and first.json()["scheme_id"] == "stalin-power-1929"
    second = client.post(BANK, json={"text": "Weigh the factors against each other.\nSay which mattered most."})
    assert second.status_code == 201
    again = client.post(BANK, json={"text": "Date each example."})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]

    listed = client.get(BANK).json()
    assert [c["id"] for c in listed] == [second.json()["id"], first.json()["id"]]  # newest first
    assert client.get("/v1/schemes/other-scheme/comments").json() == []

    assert client.delete(f"{BANK}/{first.json()['id']}").status_code == 204
    assert [c["id"] for c in client.get(BANK).json()] == [second.json()["id"]]
    assert_problem(client.delete(f"{BANK}/{first.json()['id']}"), 404, "no saved comment")


def test_another_owner_neither_sees_nor_deletes(server: LiveServer, client: httpx.Client) -> None:
    mine = client.post(BANK, json={"text": "Date each example."}).json()
    with _client(server, "other") as other:
        assert other.get(BANK).json() == []
        assert_problem(other.delete(f"{BANK}/{mine['id']}"), 404, "no saved comment")
        theirs = other.post(BANK, json={"text": "Date each example."})
        assert theirs.status_code == 201 and theirs.json()["id"] != mine["id"]
    assert [c["id"] for c in client.get(BANK).json()] == [mine["id"]]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("   ", "the comment is empty"),
        ("x" * (MAX_COMMENT_CHARS + 1), "the limit is 1,000"),
        ("Date each\x00 example.", "control characters"),
        ("Date\x1b[31m each example.", "control characters"),
    ],
)
def test_refused_text_says_how_to_fix_it(client: httpx.Client, text: str, says: str) -> None:
    assert_problem(client.post(BANK, json={"text": text}), 422, says)
    assert client.get(BANK).json() == []


def test_longest_comment_is_kept(client: httpx.Client) -> None:
    longest = "é" * MAX_COMMENT_CHARS
    saved = client.post(BANK, json={"text": longest})
    assert saved.status_code == 201 and saved.json()["text"] == longest


def test_at_most_200_per_scheme(client: httpx.Client) -> None:
    for n in range(MAX_COMMENTS_PER_SCHEME - 1):
        assert client.post(BANK, json={"text": f"comment {n}"}).status_code == 201
    assert client.post(BANK, json={"text": "the last one"}).status_code == 201
    assert client.post(BANK, json={"text": "the last one"}).status_code == 200  # an existing text is not a new one
    assert_problem(client.post(BANK, json={"text": "one too many"}), 409, "delete comments you no longer use")
    assert client.post("/v1/schemes/other-scheme/comments", json={"text": "one too many"}).status_code == 201
    assert len(client.get(BANK).json()) == MAX_COMMENTS_PER_SCHEME
