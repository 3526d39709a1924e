"""The LLM port and its adapters."""

from service.llm.factory import build_llm
from service.llm.fake import FakeMarker, ScriptedLLM
from service.llm.local import LocalLlamaLLM
from service.llm.openai_compat import OpenAICompatibleLLM
from service.llm.port import LLM, ChatMessage, Completion, CompletionRequest

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
