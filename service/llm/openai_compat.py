"""OpenAI-compatible adapter (OpenAI, Azure, vLLM, Ollama, llama.cpp server) via langchain-openai.

Transport retries live here and only here: the OpenAI SDK retries 408/409/429/5xx and
connection errors ``transport_retries`` times, honouring ``Retry-After``. Semantic re-asks
(invalid output) are the pipeline's job. Nothing else retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from schemas.result import EndpointKind, TokenUsage
from service.errors import (
    ContentFilteredError,
    ModelError,
    ModelRateLimitedError,
    ModelResponseError,
    ModelTimeoutError,
    ModelUnavailableError,
    OutputTruncatedError,
)
from service.llm.port import ChatMessage, Completion, CompletionRequest, FinishReason
from service.settings import Settings, StructuredMode

_MESSAGE_TYPES: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "user": HumanMessage,
    "assistant": AIMessage,
}


_TRUNCATED = (
    "the model's answer hit the output token limit; raise DRAFTMARK_MAX_OUTPUT_TOKENS "
    "or use a model that answers more briefly"
)


_MALFORMED_REPLY = (ValueError, LookupError, AttributeError, TypeError)
"""What the SDK and langchain raise on an HTTP 200 they cannot read: the SDK does not validate a
reply's shape, so a body that is not JSON raises JSONDecodeError, ``{"choices": []}`` an
IndexError, a choice without a message an AttributeError. Only the call itself is guarded."""


def _to_langchain(messages: tuple[ChatMessage, ...]) -> list[BaseMessage]:
    return [_MESSAGE_TYPES[m.role](content=m.content) for m in messages]


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(exc: openai.APIStatusError) -> float | None:
    return _seconds(exc.response.headers.get("retry-after"))


_OVERLOADED = (429, 502, 503, 529)


@dataclass
class _LastResponse:
    """The endpoint's last answer during one call: what to report if the call's deadline ends it."""

    status: int | None = None
    retry_after: float | None = None


_last_response: ContextVar[_LastResponse | None] = ContextVar("draftmark_last_response", default=None)


class _HttpAnswer(Protocol):
    """What the hook reads from the SDK's HTTP response (httpx2, not httpx)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


async def _remember_response(response: _HttpAnswer) -> None:
    seen = _last_response.get()
    if seen is not None:
        seen.status = response.status_code
        seen.retry_after = _seconds(response.headers.get("retry-after"))


def map_openai_error(exc: openai.OpenAIError) -> ModelError:
    """Translate an SDK error into draftmark's tree, keeping any Retry-After hint."""
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeoutError("the model endpoint timed out; retry later", retry_after=5)
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailableError(f"cannot reach the model endpoint: {exc}", retry_after=10)
    if isinstance(exc, openai.RateLimitError):
        return ModelRateLimitedError(
            "the model endpoint is rate limiting requests", retry_after=_retry_after(exc) or 30
        )
    if isinstance(exc, openai.LengthFinishReasonError):
        return OutputTruncatedError(_TRUNCATED)
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return ContentFilteredError("the endpoint's content filter withheld the answer")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status in _OVERLOADED[1:]:
            return ModelUnavailableError(
                f"the model endpoint is unavailable (HTTP {status})", retry_after=_retry_after(exc) or 30
            )
        if status == 504:
            return ModelTimeoutError("the model endpoint timed out (HTTP 504)", retry_after=_retry_after(exc) or 10)
        if status >= 500:
            return ModelResponseError(
                f"the model endpoint failed (HTTP {status}); retry later", retry_after=_retry_after(exc)
            )
        return ModelResponseError(f"the model endpoint returned HTTP {status}: {exc.message}")
    return ModelResponseError(f"the model endpoint failed: {exc}")


def _finish_reason(message: AIMessage) -> FinishReason:
    reason = message.response_metadata.get("finish_reason")
    if reason in ("stop", "length", "content_filter"):
        return reason  # type: ignore[no-any-return]
    return "other"


def _usage(message: AIMessage) -> TokenUsage:
    meta = message.usage_metadata
    if meta is None:
        return TokenUsage()
    return TokenUsage(prompt_tokens=meta["input_tokens"], completion_tokens=meta["output_tokens"])


class OpenAICompatibleLLM:
    """Any endpoint that speaks the OpenAI chat-completions wire format."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: SecretStr | None,
        structured_output: StructuredMode,
        timeout_s: float,
        transport_retries: int,
        indicative_only: bool = False,
    ) -> None:
        self._model = model
        self._mode = structured_output
        self._indicative = indicative_only
        # The SDK's timeout bounds each read, so a server that trickles bytes (slow-loris) could
        # hold a call forever; this deadline bounds the whole call, transport retries included.
        self._deadline_s = timeout_s * (transport_retries + 1) + 2.0 * transport_retries
        self._chat = ChatOpenAI(
            model=model,
            base_url=base_url,
            api_key=api_key or SecretStr("not-needed"),
            timeout=timeout_s,
            max_retries=transport_retries,
            # The hook sees every HTTP answer, retried ones included: when the SDK is still sleeping
            # on an upstream Retry-After at the deadline, the caller hears "unavailable, retry in N s".
            http_async_client=openai.DefaultAsyncHttpxClient(event_hooks={"response": [_remember_response]}),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatibleLLM:
        """Build from ``DRAFTMARK_LLM_*`` settings."""
        return cls(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            structured_output=settings.structured_output,
            timeout_s=settings.request_timeout_s,
            transport_retries=settings.transport_retries,
        )

    @property
    def model_id(self) -> str:
        """The configured model name."""
        return self._model

    @property
    def endpoint_kind(self) -> EndpointKind:
        """``openai_compatible``."""
        return "openai_compatible"

    @property
    def indicative_only(self) -> bool:
        """As configured (false by default: the operator chose this endpoint)."""
        return self._indicative

    def _runnable(self, request: CompletionRequest) -> Runnable[Any, Any]:
        sampling: dict[str, Any] = {
            "temperature": request.temperature,
            "max_tokens": request.max_output_tokens,
        }
        if request.seed is not None:
            sampling["seed"] = request.seed
        if self._mode == "json_schema":
            # include_raw: draftmark validates (and re-asks) itself, so it needs the raw text.
            return self._chat.with_structured_output(
                {"name": request.schema_name, "schema": request.json_schema},
                method="json_schema",
                include_raw=True,
                strict=False,
                **sampling,
            )
        # JSON-mode servers: llama.cpp's server also reads a "schema" beside the type.
        return self._chat.bind(response_format={"type": "json_object", "schema": request.json_schema}, **sampling)

    async def complete(self, request: CompletionRequest) -> Completion:
        """Ask the endpoint; SDK errors become ``ModelError``s."""
        seen = _LastResponse()
        token = _last_response.set(seen)
        runnable, messages = self._runnable(request), _to_langchain(request.messages)
        try:
            async with asyncio.timeout(self._deadline_s):
                output = await runnable.ainvoke(messages)
        except openai.OpenAIError as exc:
            raise map_openai_error(exc) from exc
        except _MALFORMED_REPLY as exc:
            raise ModelResponseError(
                f"the model endpoint answered with something that is not a chat completion ({type(exc).__name__})"
            ) from exc
        except TimeoutError as exc:
            if seen.status in _OVERLOADED:
                raise ModelUnavailableError(
                    f"the model endpoint is unavailable (HTTP {seen.status}) and was still asking to wait "
                    f"when this call's {self._deadline_s:.0f} s deadline ran out",
                    retry_after=seen.retry_after or 30,
                ) from exc
            raise ModelTimeoutError(
                f"the model endpoint did not finish answering within {self._deadline_s:.0f} s", retry_after=10
            ) from exc
        finally:
            _last_response.reset(token)
        raw = output["raw"] if isinstance(output, dict) else output
        if not isinstance(raw, AIMessage):
            raise ModelResponseError(f"unexpected reply type from the endpoint: {type(raw).__name__}")
        finish = _finish_reason(raw)
        if finish == "length":
            raise OutputTruncatedError(_TRUNCATED)
        if finish == "content_filter":
            raise ContentFilteredError("the endpoint's content filter withheld the answer")
        text = raw.content if isinstance(raw.content, str) else raw.text
        return Completion(text=text, finish_reason=finish, usage=_usage(raw), model=self._model)
