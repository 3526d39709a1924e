"""Choose and build the backend from settings."""

from __future__ import annotations

from service.llm.local import LocalLlamaLLM, prefix_cache_for
from service.llm.port import LLM
from service.local_model import choose_local_model
from service.settings import Settings


def build_llm(settings: Settings) -> LLM:
    """The OpenAI-compatible adapter when an endpoint or key is configured, else the embedded model."""
    if settings.resolved_backend == "openai":
        from service.llm.openai_compat import OpenAICompatibleLLM  # openai + langchain: ~1 s of imports

        return OpenAICompatibleLLM.from_settings(settings)
    choice = choose_local_model(settings)
    return LocalLlamaLLM.load(
        choice.path,
        model_id=choice.model_id,
        threads=settings.local_threads,
        context=settings.local_context,
        prefix_cache=prefix_cache_for(settings),
    )
