"""The one LLM port: a small protocol every backend adapter implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from schemas.draft import JsonObject
from schemas.result import EndpointKind, PromptRef, TokenUsage

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "content_filter", "other"]


@dataclass(frozen=True)
class PrefixTag:
    """What a system message was rendered from, so a backend can cache its evaluated state by name."""

    prompt: PromptRef
    scheme_id: str
    scheme_version: str
    scheme_sha256: str
    variant: str


@dataclass(frozen=True)
class ChatMessage:
    """One chat message; a system message may say what it was rendered from (``prefix``)."""

    role: Role
    content: str
    prefix: PrefixTag | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class CompletionRequest:
    """What the pipeline asks of a model: messages plus the JSON schema to fill."""

    messages: tuple[ChatMessage, ...]
    json_schema: JsonObject
    schema_name: str
    temperature: float
    max_output_tokens: int
    seed: int | None = None


@dataclass(frozen=True)
class Completion:
    """A model's raw answer. Adapters raise ``ModelError`` subclasses instead of returning errors."""

    text: str
    finish_reason: FinishReason
    usage: TokenUsage = field(default_factory=TokenUsage)
    model: str = ""


@runtime_checkable
class LLM(Protocol):
    """A chat model that can be asked for JSON matching a schema."""

    @property
    def model_id(self) -> str:
        """The model's name as recorded in provenance."""
        ...

    @property
    def endpoint_kind(self) -> EndpointKind:
        """Which kind of backend this is."""
        ...

    @property
    def indicative_only(self) -> bool:
        """True for models too small to be trusted as markers (results get flagged)."""
        ...

    async def complete(self, request: CompletionRequest) -> Completion:
        """Send ``request`` and return the completion, or raise a ``ModelError``."""
        ...


@runtime_checkable
class NextTokenProbe(Protocol):
    """A backend that can say how likely each of a few single-token answers is (llama.cpp; fakes)."""

    @property
    def model_id(self) -> str:
        """The model's name as recorded in provenance."""
        ...

    async def next_token_probabilities(
        self, messages: tuple[ChatMessage, ...], choices: tuple[str, ...]
    ) -> dict[str, float]:
        """P(choice) renormalised over ``choices``; key ``""`` holds their raw total probability."""
        ...
