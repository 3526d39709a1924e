"""Contract tests: the real openai/langchain client against a real HTTP stub on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

import pytest

from schemas.result import FlagCode
from schemas.scheme import MarkScheme
from service.errors import (
    MarkingFailedError,
    ModelResponseError,
    ModelTimeoutError,
    ModelUnavailableError,
    OutputTruncatedError,
)
from service.llm.openai_compat import OpenAICompatibleLLM
from service.pipeline import mark_essay
from service.settings import Settings
from service.testing import OpenAIStub, StubReply
from tests.conftest import dumps, good_draft


def adapter(
    stub: OpenAIStub, *, mode: str = "json_schema", retries: int = 2, timeout: float = 5.0
) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        model="stub-model",
        base_url=stub.base_url,
        api_key=None,
        structured_output=mode,  # type: ignore[arg-type]
        timeout_s=timeout,
        transport_retries=retries,
    )


def bad_draft(stalin: MarkScheme, **change: Any) -> str:
    draft = good_draft(stalin)
    draft["objectives"]["AO1"].update(change)
    return dumps(draft)


async def test_good_answer(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    with OpenAIStub([StubReply(content=dumps(good_draft(stalin)))]) as stub:
        result = await mark_essay(essay, stalin, llm=adapter(stub), settings=settings)
    assert result.total == 6
    assert result.provenance.endpoint_kind == "openai_compatible" and result.provenance.model == "stub-model"
    assert result.provenance.usage.prompt_tokens == 100 and result.provenance.usage.completion_tokens == 50
    (body,) = stub.requests
    assert body["model"] == "stub-model" and body["temperature"] == 0.0 and body["seed"] == 0
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["properties"]["objectives"]["required"] == ["AO1", "AO2", "AO3"]
    assert [m["role"] for m in body["messages"]] == ["system", "user", "user"], "scheme, the reading's findings, essay"
    assert not result.has_flag(FlagCode.INDICATIVE_MODEL)


async def test_json_mode_servers_get_the_schema_beside_json_object(
    stalin: MarkScheme, essay: str, settings: Settings
) -> None:
    with OpenAIStub([StubReply(content=dumps(good_draft(stalin)))]) as stub:
        await mark_essay(essay, stalin, llm=adapter(stub, mode="json_mode"), settings=settings)
    fmt = stub.requests[0]["response_format"]
    assert fmt["type"] == "json_object" and "AO1" in fmt["schema"]["properties"]["objectives"]["properties"]


@pytest.mark.parametrize(
    ("first", "feedback"),
    [
        ({"evidence": ["Stalin crushed the United Opposition in 1927"]}, "does not appear in the essay"),
        ({"level": 1, "mark": 4}, "outside level 1's band 1-2"),
    ],
)
async def test_invalid_answers_are_reasked(
    stalin: MarkScheme, essay: str, settings: Settings, first: dict[str, Any], feedback: str
) -> None:
    script = [StubReply(content=bad_draft(stalin, **first)), StubReply(content=dumps(good_draft(stalin)))]
    with OpenAIStub(script) as stub:
        result = await mark_essay(essay, stalin, llm=adapter(stub), settings=settings)
    assert result.provenance.attempts == 2 and len(stub.requests) == 2
    assert result.provenance.usage.prompt_tokens == 200
    reask = stub.requests[1]["messages"]
    assert reask[3]["role"] == "assistant" and feedback in reask[4]["content"]


async def test_invalid_json_is_reasked(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    script = [StubReply(content='{"objectives": {"AO1": '), StubReply(content=dumps(good_draft(stalin)))]
    with OpenAIStub(script) as stub:
        result = await mark_essay(essay, stalin, llm=adapter(stub), settings=settings)
    assert "not valid JSON" in stub.requests[1]["messages"][4]["content"]
    assert result.total == 6


async def test_429_with_retry_after_then_success(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    script = [
        StubReply(status=429, headers={"retry-after": "0.5"}),
        StubReply(content=dumps(good_draft(stalin))),
    ]
    with OpenAIStub(script) as stub:
        started = time.monotonic()
        result = await mark_essay(essay, stalin, llm=adapter(stub), settings=settings)
        waited = time.monotonic() - started
    assert result.total == 6 and len(stub.requests) == 2
    assert waited >= 0.45, "the SDK must honour Retry-After"
    assert result.provenance.attempts == 1, "a transport retry is not a re-ask"


async def test_500_storm_is_a_typed_error_after_bounded_retries(
    stalin: MarkScheme, essay: str, settings: Settings
) -> None:
    with OpenAIStub([StubReply(status=500, headers={"retry-after": "0"})] * 10) as stub:
        with pytest.raises(ModelResponseError) as info:
            await mark_essay(essay, stalin, llm=adapter(stub, retries=2), settings=settings)
    assert len(stub.requests) == 3, "1 call + 2 transport retries, no re-asks stacked on top"
    assert info.value.status_code == 502


async def test_persistent_429_maps_to_503_with_retry_hint(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    with OpenAIStub([StubReply(status=429, headers={"retry-after": "0"})] * 5) as stub:
        with pytest.raises(ModelUnavailableError) as info:
            await mark_essay(essay, stalin, llm=adapter(stub, retries=1), settings=settings)
    assert info.value.status_code == 503 and info.value.retry_after is not None
    assert len(stub.requests) == 2


async def test_truncated_answer_is_its_own_error(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    with OpenAIStub([StubReply(content='{"objectives": {', finish_reason="length")] * 3) as stub:
        with pytest.raises(OutputTruncatedError, match="output token limit"):
            await mark_essay(essay, stalin, llm=adapter(stub), settings=settings)
    assert len(stub.requests) == 1


async def test_timeout_maps_to_504(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    with OpenAIStub([StubReply(content=dumps(good_draft(stalin)), delay_s=1.0)] * 2) as stub:
        with pytest.raises(ModelTimeoutError) as info:
            await mark_essay(essay, stalin, llm=adapter(stub, retries=0, timeout=0.2), settings=settings)
    assert info.value.status_code == 504


async def test_connection_refused_is_unavailable(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    llm = OpenAICompatibleLLM(
        model="m",
        base_url="http://127.0.0.1:9/v1",
        api_key=None,
        structured_output="json_schema",
        timeout_s=2,
        transport_retries=0,
    )
    with pytest.raises(ModelUnavailableError, match="cannot reach"):
        await mark_essay(essay, stalin, llm=llm, settings=settings)


async def test_reasks_exhausted_against_real_client(stalin: MarkScheme, essay: str, settings: Settings) -> None:
    with OpenAIStub([StubReply(content=bad_draft(stalin, mark=5))] * 3) as stub:
        with pytest.raises(MarkingFailedError) as info:
            await mark_essay(essay, stalin, llm=adapter(stub), settings=settings)
    assert info.value.attempts == 3 and info.value.usage.prompt_tokens == 300
