"""A class set's name and skipped files through the REST API: stored, listed, validated, dismissed by the owner."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from schemas.class_set import MAX_SKIPPED_FILES
from tests.api_support import CountingFake, LiveServer, wait_for_batch
from tests.test_api import assert_problem, make_settings

NAME = "10B History – Stalin essay"
SKIPPED = [
    {"name": "photo.png", "reason": "not a .txt, .docx, .zip or .csv file"},
    {"name": "set.zip: class/broken.docx", "reason": "the file is not a readable .docx document"},
]


@pytest.fixture
def server(db_url: str) -> Iterator[LiveServer]:
    with LiveServer(make_settings(db_url), CountingFake()) as live:
        yield live


def _client(server: LiveServer) -> httpx.Client:
    _, key = server.app.state.draftmark.store.create_api_key("tests")
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with _client(server) as c:
        yield c


def _batch(essay: str, **extra: Any) -> dict[str, Any]:
    return {"scheme_id": "stalin-power-1929", "items": [{"external_id": "amy", "essay": essay}], **extra}


def test_name_and_skipped_files_are_stored_and_listed(client: httpx.Client, essay: str) -> None:
    accepted = client.post("/v1/batches", json=_batch(essay, name=NAME, skipped=SKIPPED))
    assert accepted.status_code == 202, accepted.text
    batch = wait_for_batch(client, accepted.json()["id"])
    assert batch["name"] == NAME
    assert batch["skipped"] == SKIPPED and batch["skipped_dismissed_at"] is None
    assert batch["created_at"]
    listed = client.get("/v1/batches").json()
    assert [(b["id"], b["name"]) for b in listed] == [(batch["id"], NAME)]

    unnamed = client.post("/v1/batches", json=_batch(essay)).json()["id"]
    plain = client.get(f"/v1/batches/{unnamed}").json()
    assert plain["name"] is None and plain["skipped"] == []
    assert {b["id"]: b["name"] for b in client.get("/v1/batches").json()}[unnamed] is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": "10B\nHistory"}, "name"),
        ({"skipped": [{"name": "a.png", "reason": "x"}] * (MAX_SKIPPED_FILES + 1)}, "skipped"),
        ({"skipped": [{"name": "a.png"}]}, "reason"),
        ({"skipped": [{"name": "a\x00.png", "reason": "x"}]}, "name"),
        ({"skipped": [{"name": "a.png", "reason": "r" * 1001}]}, "reason"),
        ({"skipped": [{"name": "a.png", "reason": "x", "extra": 1}]}, "extra"),
    ],
)
def test_a_bad_name_or_skipped_list_is_refused(
    client: httpx.Client, essay: str, extra: dict[str, Any], field: str
) -> None:
    body = assert_problem(client.post("/v1/batches", json=_batch(essay, **extra)), 422, field)
    assert body["errors"], body
    assert client.get("/v1/batches").json() == [], "nothing was queued"


def test_a_thousand_skipped_files_are_accepted(client: httpx.Client, essay: str) -> None:
    skipped = [{"name": f"image-{i}.png", "reason": "not a .txt or .docx file"} for i in range(MAX_SKIPPED_FILES)]
    batch_id = client.post("/v1/batches", json=_batch(essay, skipped=skipped)).json()["id"]
    assert len(client.get(f"/v1/batches/{batch_id}").json()["skipped"]) == MAX_SKIPPED_FILES


def test_dismissing_skipped_files_keeps_them_on_record(client: httpx.Client, essay: str) -> None:
    batch_id = client.post("/v1/batches", json=_batch(essay, skipped=SKIPPED)).json()["id"]
    dismissed = client.post(f"/v1/batches/{batch_id}/skipped/dismiss")
    assert dismissed.status_code == 200, dismissed.text
    when = dismissed.json()["skipped_dismissed_at"]
    assert when is not None and dismissed.json()["skipped"] == SKIPPED, "the list and its count stay recorded"
    fresh = client.get(f"/v1/batches/{batch_id}").json()
    assert fresh["skipped_dismissed_at"] == when and len(fresh["skipped"]) == 2
    again = client.post(f"/v1/batches/{batch_id}/skipped/dismiss").json()
    assert again["skipped_dismissed_at"] == when, "dismissing again keeps the first time"


def test_only_the_owner_can_dismiss(server: LiveServer, client: httpx.Client, essay: str) -> None:
    batch_id = client.post("/v1/batches", json=_batch(essay, name=NAME, skipped=SKIPPED)).json()["id"]
    with _client(server) as other:
        assert_problem(other.post(f"/v1/batches/{batch_id}/skipped/dismiss"), 404, "no batch")
        assert_problem(other.get(f"/v1/batches/{batch_id}"), 404, "no batch")
        assert other.get("/v1/batches").json() == [], "another key does not see the name"
    assert client.get(f"/v1/batches/{batch_id}").json()["skipped_dismissed_at"] is None
    assert_problem(client.post("/v1/batches/bt_missing/skipped/dismiss"), 404, "no batch")


def test_released_is_reported_per_script(client: httpx.Client, essay: str) -> None:
    batch = wait_for_batch(client, client.post("/v1/batches", json=_batch(essay)).json()["id"])
    marking = batch["items"][0]["marking_id"]
    assert batch["items"][0]["released"] is False
    client.post(
        f"/v1/markings/{marking}/review", json={"reviewer": "T", "marks": {"AO1": 3, "AO2": 3, "AO3": 1}}
    ).raise_for_status()
    assert client.get(f"/v1/batches/{batch['id']}").json()["items"][0]["released"] is False, "approved only"
    client.post(f"/v1/batches/{batch['id']}/release").raise_for_status()
    assert client.get(f"/v1/batches/{batch['id']}").json()["items"][0]["released"] is True


def test_skipped_names_from_a_zip_can_be_sent_back_with_the_set(client: httpx.Client, essay: str) -> None:
    """A zip member's name may hold control characters; extract-set answers it printable, so the set is accepted."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        z.writestr("class/amy.txt", essay[:900])
        z.writestr("class/\x07bell\x1b.png", b"\x89PNG")
    extracted = client.post(
        "/v1/essays/extract-set", content=data.getvalue(), headers={"Content-Type": "application/zip"}
    )
    assert extracted.status_code == 200, extracted.text
    skipped = extracted.json()["skipped"]
    assert skipped == [{"name": "class/ bell .png", "reason": "not a .txt or .docx file"}]
    items = [{"external_id": e["external_id"], "essay": e["text"]} for e in extracted.json()["essays"]]
    accepted = client.post("/v1/batches", json=_batch(essay, items=items, skipped=skipped))
    assert accepted.status_code == 202, accepted.text
    assert client.get(f"/v1/batches/{accepted.json()['id']}").json()["skipped"] == skipped
