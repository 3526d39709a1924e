"""The LLM port and its adapters.

``OpenAICompatibleLLM`` is imported on first use: the openai and langchain packages take
about a second to import, which the embedded model's CLI runs should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.llm.factory import build_llm
from service.llm.fake import FakeMarker, ScriptedLLM
from service.llm.local import LocalLlamaLLM
from service.llm.port import LLM, ChatMessage, Completion, CompletionRequest

if TYPE_CHECKING:
    from service.llm.openai_compat import OpenAICompatibleLLM


def __getattr__(name: str) -> Any:
    if name == "OpenAICompatibleLLM":
        from service.llm.openai_compat import OpenAICompatibleLLM

        return OpenAICompatibleLLM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LLM",
    "ChatMessage",
    "Completion",
    "CompletionRequest",
    "FakeMarker",
    "LocalLlamaLLM",
    "OpenAICompatibleLLM",
    "ScriptedLLM",
    "build_llm",
]
