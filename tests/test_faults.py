"""Fault injection against the OpenAI-compatible stub: bounded retries, typed errors, no leaked sockets."""

from __future__ import annotations

import os
import time

import pytest

from schemas.scheme import MarkScheme
from service.errors import ModelError, ModelTimeoutError, ModelUnavailableError
from service.llm.openai_compat import OpenAICompatibleLLM
from service.pipeline import mark_essay
from service.settings import Settings
from service.testing import OpenAIStub, StubReply
from tests.conftest import dumps, good_draft


def adapter(stub: OpenAIStub, *, retries: int = 2, timeout: float = 5.0) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        model="stub",
        base_url=stub.base_url,
        api_key=None,
        structured_output="json_schema",
        timeout_s=timeout,
        transport_retries=retries,
    )


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


async def test_connection_reset_is_retried_then_unavailable(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    with OpenAIStub([StubReply(fault="reset")] * 5) as stub:
        with pytest.raises(ModelUnavailableError) as info:
            await mark_essay(essay, stalin, llm=adapter(stub, retries=2), settings=settings)
    assert len(stub.requests) == 3 and info.value.status_code == 503


async def test_reset_then_success(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    with OpenAIStub([StubReply(fault="reset"), StubReply(content=dumps(good_draft(stalin)))]) as stub:
        result = await mark_essay(essay, stalin, llm=adapter(stub), settings=settings)
    assert result.total == 6 and len(stub.requests) == 2


async def test_slow_loris_body_times_out(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    trickle = StubReply(content=dumps(good_draft(stalin)), fault="trickle", delay_s=0.2)
    with OpenAIStub([trickle] * 2) as stub:
        started = time.monotonic()
        with pytest.raises(ModelTimeoutError) as info:
            await mark_essay(essay, stalin, llm=adapter(stub, retries=0, timeout=1.0), settings=settings)
    assert info.value.status_code == 504 and time.monotonic() - started < 10


async def test_429_burst_with_retry_after_then_success(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    burst = [StubReply(status=429, headers={"retry-after": "0.2"})] * 2
    with OpenAIStub([*burst, StubReply(content=dumps(good_draft(stalin)))]) as stub:
        started = time.monotonic()
        result = await mark_essay(essay, stalin, llm=adapter(stub, retries=2), settings=settings)
    assert result.total == 6 and len(stub.requests) == 3 and time.monotonic() - started >= 0.35


async def test_no_leaked_connections_after_many_failures(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    script = [StubReply(status=500, headers={"retry-after": "0"}), StubReply(fault="reset")] * 40
    with OpenAIStub(script) as stub:
        llm = adapter(stub, retries=0)
        for _ in range(3):
            with pytest.raises(ModelError):
                await mark_essay(essay, stalin, llm=llm, settings=settings)
        baseline = open_sockets()
        for _ in range(20):
            with pytest.raises(ModelError):  # 500s and resets: typed, never a raw transport exception
                await mark_essay(essay, stalin, llm=llm, settings=settings)
        grown = open_sockets() - baseline
    assert grown <= 2, f"{grown} sockets leaked over 20 failed calls"
