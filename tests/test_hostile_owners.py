"""Issue 12, defects 1, 6 and 9 (per-owner webhook secrets): what one API key could do to another's work.

Against a real uvicorn server on 127.0.0.1 with API keys on (SQLite, and PostgreSQL in CI).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, UniqueConstraint, insert, text
from sqlalchemy.exc import IntegrityError

from schemas.scheme import MarkScheme
from service.batches.notify import send_batch_webhook
from service.persistence.db import (
    BUILTIN_OWNER,
    LOCAL_OWNER,
    MIGRATIONS,
    MarkingRow,
    SchemeRow,
    make_engine,
    migrate,
    utcnow,
)
from service.persistence.stores import Store
from service.workflows.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, owner_secret, verify
from tests.api_support import CountingFake, LiveServer
from tests.test_hostile_input import make_settings, problem

SCHEME = "stalin-power-1929"


@dataclass
class Keyed:
    """A server with API keys on, and a client for each of two keys."""

    live: LiveServer
    alice: httpx.Client
    bob: httpx.Client
    alice_id: str

    @property
    def store(self) -> Store:
        store: Store = self.live.app.state.draftmark.store
        return store


@pytest.fixture
def fake() -> CountingFake:
    return CountingFake()


@pytest.fixture
def keyed(db_url: str, fake: CountingFake) -> Iterator[Keyed]:
    with LiveServer(make_settings(db_url, auth_disabled=False, idempotency_lease_s=1.0), fake) as live:
        store: Store = live.app.state.draftmark.store
        alice_id, alice_key = store.create_api_key("alice")
        _, bob_key = store.create_api_key("bob")
        with (
            httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {alice_key}"}, timeout=60) as alice,
            httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {bob_key}"}, timeout=60) as bob,
        ):
            yield Keyed(live, alice, bob, alice_id)


def custom(stalin: MarkScheme, **changes: Any) -> dict[str, Any]:
    return stalin.model_dump(mode="json") | {"id": "custom", "version": "1"} | changes


# ---- 1. schemes belong to an owner; built-ins are shared and read-only; a version never changes -----------------


def test_a_scheme_is_seen_only_by_its_owner(keyed: Keyed, stalin: MarkScheme, essay: str, fake: CountingFake) -> None:
    alice, bob = keyed.alice, keyed.bob
    assert alice.post("/v1/schemes", json=custom(stalin, title="Alice's")).status_code == 201
    listed = {(s["id"], s["builtin"]) for s in bob.get("/v1/schemes").json()}
    assert (SCHEME, True) in listed and "custom" not in {i for i, _ in listed}
    assert ("custom", False) in {(s["id"], s["builtin"]) for s in alice.get("/v1/schemes").json()}
    problem(bob.get("/v1/schemes/custom"), 404, "no registered mark scheme custom")
    problem(bob.post("/v1/markings", json={"essay": essay, "scheme_id": "custom"}), 404, "custom")
    batch = {"scheme_id": "custom", "items": [{"external_id": "a", "essay": essay}]}
    problem(bob.post("/v1/batches", json=batch), 404, "custom")
    problem(bob.get("/v1/schemes/custom/exemplars"), 404, "custom")
    problem(bob.get("/v1/schemes/custom/calibration"), 404, "custom")
    problem(bob.post("/v1/schemes/custom/exemplars", content=b"essay,AO1\n"), 404, "custom")
    assert fake.calls == 0

    # Bob's own custom@1 is his, whatever Alice registered under the same id@version.
    assert bob.post("/v1/schemes", json=custom(stalin, title="Bob's")).status_code == 201
    document = yaml.safe_dump(custom(stalin, title="Bob's")).encode()
    assert bob.post("/v1/schemes/import", content=document).status_code == 200
    assert alice.get("/v1/schemes/custom").json()["title"] == "Alice's"
    assert bob.get("/v1/schemes/custom", params={"version": "1"}).json()["title"] == "Bob's"
    marked = alice.post("/v1/markings", json={"essay": essay, "scheme_id": "custom"})
    assert marked.status_code == 201, marked.text
    assert bob.post("/v1/batches", json=batch).status_code == 202


def test_a_registered_version_never_changes(keyed: Keyed, stalin: MarkScheme, essay: str, fake: CountingFake) -> None:
    alice = keyed.alice
    assert alice.post("/v1/schemes", json=custom(stalin)).status_code == 201
    assert alice.post("/v1/schemes", json=custom(stalin)).status_code == 200
    body = problem(alice.post("/v1/schemes", json=custom(stalin, title="Changed")), 409, "new version")
    assert body["code"] == "conflict"
    document = yaml.safe_dump(custom(stalin, title="Changed")).encode()
    problem(alice.post("/v1/schemes/import", content=document), 409, "new version")
    inline = {"essay": essay, "scheme": custom(stalin, title="Changed")}
    problem(alice.post("/v1/markings", json=inline), 409, "new version")
    assert fake.calls == 0, "a refused scheme is never marked with"
    assert alice.get("/v1/schemes/custom").json()["title"] == stalin.title


def test_built_in_schemes_are_read_only(keyed: Keyed, stalin: MarkScheme, essay: str) -> None:
    alice, bob = keyed.alice, keyed.bob
    shipped = stalin.model_dump(mode="json")
    assert alice.post("/v1/schemes", json=shipped).status_code == 200
    problem(alice.post("/v1/schemes", json=shipped | {"title": "Hijacked"}), 409, "built-in", "read-only")
    problem(alice.post("/v1/schemes", json=shipped | {"version": "9", "title": "Hijacked"}), 409, "built-in")
    inline = {"essay": essay, "scheme": shipped | {"title": "Hijacked"}}
    problem(alice.post("/v1/markings", json=inline), 409, "built-in")
    assert bob.get(f"/v1/schemes/{SCHEME}").json() == shipped
    assert alice.post("/v1/markings", json={"essay": essay, "scheme": shipped}).status_code == 201


def test_a_reviewed_marking_keeps_its_owners_scheme(keyed: Keyed, stalin: MarkScheme, essay: str) -> None:
    alice = keyed.alice
    alice.post("/v1/schemes", json=custom(stalin))
    marking = alice.post("/v1/markings", json={"essay": essay, "scheme_id": "custom"}).json()
    marks = {m["ao_id"]: m["mark"] for m in marking["result"]["ao_marks"]}
    approved = alice.post(f"/v1/markings/{marking['id']}/review", json={"reviewer": "Ms A", "marks": marks})
    assert approved.status_code == 201, approved.text


_V6_SCHEMES = MetaData()
Table(
    "schemes",
    _V6_SCHEMES,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("scheme_id", String(64), index=True, nullable=False),
    Column("version", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("scheme_id", "version"),
)
Table(
    "idempotency",
    _V6_SCHEMES,
    Column("principal", String(32), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("route", String(200), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("status_code", Integer),
    Column("response", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _database_at_v6(db_url: str) -> Any:
    """A database as version 6 left it: schemes unique by (id, version), idempotency keys without a lease."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for step in MIGRATIONS[:6]:
            step(conn)
        conn.execute(text("DROP TABLE schemes"))
        conn.execute(text("DROP TABLE idempotency"))
        _V6_SCHEMES.create_all(conn)
        conn.execute(text("CREATE TABLE draftmark_schema (version INTEGER NOT NULL)"))
        for number in range(1, 7):
            conn.execute(text("INSERT INTO draftmark_schema (version) VALUES (:v)"), {"v": number})
    return engine


def test_migration_gives_existing_schemes_owners(db_url: str, stalin: MarkScheme, essay: str) -> None:
    engine = _database_at_v6(db_url)
    rows = [
        (SCHEME, "1.0", stalin.model_dump_json()),  # the shipped built-in
        ("shared", "1", stalin.model_copy(update={"id": "shared", "version": "1"}).model_dump_json()),
        ("unused", "1", stalin.model_copy(update={"id": "unused", "version": "1"}).model_dump_json()),
    ]
    old = _V6_SCHEMES.tables
    with engine.begin() as conn:
        for scheme_id, version, body in rows:
            conn.execute(
                insert(old["schemes"]).values(scheme_id=scheme_id, version=version, body=body, created_at=utcnow())
            )
        for n, owner in enumerate(["key_a", "key_b", None]):
            conn.execute(
                insert(MarkingRow).values(
                    id=f"mk_{n}", scheme_id="shared", scheme_version="1", essay="e", result="{}", owner=owner
                )
            )
        idempotency = {"principal": "key_a", "key": "k", "route": "r", "body_hash": "h", "created_at": utcnow()}
        conn.execute(insert(old["idempotency"]).values(**idempotency))
    assert migrate(engine) == len(MIGRATIONS)
    assert migrate(engine) == len(MIGRATIONS), "migrating again changes nothing"
    with engine.connect() as conn:
        owners = {(r.scheme_id, r.owner) for r in conn.execute(text("SELECT scheme_id, owner FROM schemes"))}
    assert owners == {
        (SCHEME, BUILTIN_OWNER),
        ("shared", "key_a"),
        ("shared", "key_b"),
        ("shared", LOCAL_OWNER),
        ("unused", LOCAL_OWNER),
    }
    store = Store(engine)
    assert store.get_scheme("shared", "1", owner="key_b") is not None
    assert store.get_scheme("unused", owner="key_a") is None
    assert store.get_scheme(SCHEME, owner="key_a") == stalin
    assert store.put_scheme(stalin.model_copy(update={"id": "shared", "version": "1"}), owner="key_c") is True
    with pytest.raises(IntegrityError), engine.begin() as conn:  # one id@version per owner, enforced by the database
        conn.execute(insert(SchemeRow).values(owner="key_c", scheme_id="shared", version="1", body=""))
    # a key left reserved by the old version, which had no lease, is free again
    assert store.idempotency_begin("key_a", "k", "r", "h", lease_s=5, holder="new") is None
    engine.dispose()


# ---- 6. an Idempotency-Key whose request died is free again after its lease ---------------------------------------


def _marking_request(essay: str) -> tuple[bytes, str]:
    body = json.dumps({"essay": essay, "scheme_id": SCHEME}).encode()
    return body, hashlib.sha256(body).hexdigest()


def test_idempotency_key_of_a_crashed_request_can_be_retried(keyed: Keyed, essay: str, fake: CountingFake) -> None:
    body, digest = _marking_request(essay)
    # What a process that crashed mid-request leaves behind: the key held, no response, nobody renewing.
    keyed.store.idempotency_begin(keyed.alice_id, "k-1", "POST /v1/markings", digest, lease_s=1.0, holder="dead")
    headers = {"Idempotency-Key": "k-1", "content-type": "application/json"}
    busy = keyed.alice.post("/v1/markings", content=body, headers=headers)
    assert problem(busy, 409, "still in progress")["code"] == "idempotency_in_progress"
    assert busy.headers["retry-after"] == "1"
    time.sleep(1.2)
    retried = keyed.alice.post("/v1/markings", content=body, headers=headers)
    assert retried.status_code == 201, retried.text
    replayed = keyed.alice.post("/v1/markings", content=body, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true" and replayed.json() == retried.json()
    assert fake.calls == 1


def test_a_running_request_keeps_its_idempotency_key(db_url: str, essay: str) -> None:
    slow = CountingFake(delay_s=2.5)
    settings = make_settings(db_url, idempotency_lease_s=1.0)
    with LiveServer(settings, slow) as live:
        body, _ = _marking_request(essay)
        headers = {"Idempotency-Key": "k-2", "content-type": "application/json"}
        first: dict[str, httpx.Response] = {}
        url = f"{live.url}/v1/markings"
        worker = threading.Thread(
            target=lambda: first.update(r=httpx.post(url, content=body, headers=headers, timeout=60))
        )
        worker.start()
        time.sleep(1.6)  # past one lease: only renewal keeps the key
        during = httpx.post(f"{live.url}/v1/markings", content=body, headers=headers, timeout=60)
        worker.join()
        after = httpx.post(f"{live.url}/v1/markings", content=body, headers=headers, timeout=60)
    problem(during, 409, "still in progress")
    assert during.headers["retry-after"] == "1"
    assert first["r"].status_code == 201 and after.json() == first["r"].json()
    assert slow.calls == 1


# ---- 9. webhooks are signed with the batch owner's own secret, and delivery re-checks the address -------------------


class _Receiver:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                calls.append((dict(self.headers.items()), self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def test_webhooks_are_signed_with_the_owners_secret(keyed: Keyed, essay: str) -> None:
    receiver = _Receiver()
    batch = {"scheme_id": SCHEME, "items": [{"external_id": "a", "essay": essay}], "webhook_url": receiver.url}
    batch_id = keyed.alice.post("/v1/batches", json=batch).json()["id"]
    deadline = time.monotonic() + 30
    while keyed.alice.get(f"/v1/batches/{batch_id}").json()["webhook_status"] != "delivered":
        assert time.monotonic() < deadline, "webhook not delivered"
        time.sleep(0.1)
    receiver.server.shutdown()
    mine = keyed.alice.get("/v1/webhooks/secret").json()
    theirs = keyed.bob.get("/v1/webhooks/secret").json()["secret"]
    assert mine["secret"] == owner_secret("whsec-test", keyed.alice_id), "the documented derivation"
    headers, body = receiver.calls[-1]
    signed = headers[mine["timestamp_header"]], body, headers[mine["signature_header"]]
    assert verify(mine["secret"], *signed)
    assert not verify(theirs, *signed) and not verify("whsec-test", *signed)


async def test_delivery_checks_the_address_against_the_servers_policy(
    db_url: str, stalin: MarkScheme, essay: str
) -> None:
    receiver = _Receiver()
    engine = make_engine(db_url)
    migrate(engine)
    store = Store(engine)
    store.put_scheme(stalin, owner=BUILTIN_OWNER)
    batch_id = store.create_batch(stalin, [("a", essay)], samples=1, webhook_url=receiver.url, owner="key_a")
    strict = make_settings(db_url, webhook_allow_private=False, webhook_attempts=1)
    await send_batch_webhook(store, strict, batch_id, receiver.url)
    assert receiver.calls == [] and store.get_batch(batch_id).webhook_status == "failed"
    await send_batch_webhook(store, make_settings(db_url, webhook_attempts=1), batch_id, receiver.url)
    receiver.server.shutdown()
    assert len(receiver.calls) == 1 and store.get_batch(batch_id).webhook_status == "delivered"
    engine.dispose()
    headers, body = receiver.calls[0]
    assert verify(owner_secret("whsec-test", "key_a"), headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
