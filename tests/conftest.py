"""Shared fixtures. The network is off by default: only loopback connections are allowed."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.scheme import MarkScheme
from service.schemes import SchemeLibrary
from service.settings import Settings

POSTGRES_ENV = "TEST_POSTGRES_URL"  # e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ESSAY = ROOT / "examples" / "stalin-1929.txt"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests that use a real local model")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: needs --runslow (CI runs them)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return isinstance(address, (str, bytes))  # unix sockets


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            raise RuntimeError(f"tests may not reach the network (tried {address!r})")
        real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            raise RuntimeError(f"tests may not reach the network (tried {address!r})")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("DRAFTMARK_") or key == "OPENAI_API_KEY":
            monkeypatch.delenv(key)
    monkeypatch.setenv("DRAFTMARK_MODEL_CACHE_DIR", str(tmp_path / "model-cache"))


DB_KINDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"set {POSTGRES_ENV}")),
]


@pytest.fixture(params=DB_KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: SQLite, and PostgreSQL when TEST_POSTGRES_URL is set (CI sets it)."""
    from tests.api_support import database

    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def library() -> SchemeLibrary:
    return SchemeLibrary()


@pytest.fixture(scope="session")
def stalin(library: SchemeLibrary) -> MarkScheme:
    return library.get("stalin-power-1929")


@pytest.fixture(scope="session")
def holistic(library: SchemeLibrary) -> MarkScheme:
    return library.get("persuasive-holistic-6")


@pytest.fixture(scope="session")
def essay() -> str:
    return EXAMPLE_ESSAY.read_text(encoding="utf-8")


@pytest.fixture
def settings() -> Settings:
    return Settings(backend="openai", llm_base_url="http://127.0.0.1:9/v1", max_reasks=2, samples=1)


def good_draft(scheme: MarkScheme, **overrides: Any) -> dict[str, Any]:
    """A valid draft for the Stalin essay (marks AO1 2, AO2 3, AO3 1)."""
    marks = {"AO1": (1, 2), "AO2": (2, 3), "AO3": (1, 1)}
    draft: dict[str, Any] = {
        "objectives": {
            ao: {
                "evidence": ["Stalin was rewarded with the additional role of General Secretary"],
                "rationale": f"{ao}: the General Secretary post, but nothing on the later 1920s.",
                "strengths": ["Some accurate detail."],
                "improvements": ["Cover 1922-29."],
                "level": level,
                "mark": mark,
            }
            for ao, (level, mark) in marks.items()
        },
        "what_went_well": "You show how the General Secretary post gave Stalin power.",
        "even_better_if": "Carry on to 1929: explain the triumvirate with Zinoviev and Kamenev.",
        "teacher_notes": "Narrative; stops in 1922.",
        "off_topic": False,
    }
    draft.update(overrides)
    return draft


def dumps(draft: dict[str, Any]) -> str:
    return json.dumps(draft)
