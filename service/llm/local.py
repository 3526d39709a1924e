"""Embedded backend: a GGUF model run in-process by llama-cpp-python.

One loaded model per process; calls are serialised (llama.cpp contexts are not
thread-safe) and run off the event loop. Consecutive calls that share a prompt prefix
(same scheme, essay last) reuse llama.cpp's KV cache automatically.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from schemas.result import EndpointKind, TokenUsage
from service.errors import ConfigurationError, ModelResponseError, OutputTruncatedError
from service.llm.port import Completion, CompletionRequest, FinishReason


def load_llama(path: Path, *, threads: int, context: int) -> Any:
    """Load a GGUF with llama-cpp-python (``ConfigurationError`` when it is not installed)."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ConfigurationError(
            "the embedded model needs llama-cpp-python: pip install 'draftmark[local]' "
            "(it compiles llama.cpp, about 10 minutes on 2 cores), or set DRAFTMARK_LLM_BASE_URL"
        ) from exc
    try:
        return Llama(
            model_path=str(path),
            n_ctx=context,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise ConfigurationError(f"cannot load the model {path}: {exc}") from exc


class LocalLlamaLLM:
    """In-process llama.cpp model behind the LLM port."""

    def __init__(self, llama: Any, *, model_id: str, indicative_only: bool = True) -> None:
        self._llama = llama
        self._model_id = model_id
        self._indicative = indicative_only
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, *, model_id: str, threads: int, context: int) -> LocalLlamaLLM:
        """Load ``path`` and wrap it."""
        return cls(load_llama(path, threads=threads, context=context), model_id=model_id)

    @property
    def model_id(self) -> str:
        """The GGUF's name."""
        return self._model_id

    @property
    def endpoint_kind(self) -> EndpointKind:
        """``local``."""
        return "local"

    @property
    def indicative_only(self) -> bool:
        """Small local models are never trusted as markers."""
        return self._indicative

    def complete_sync(self, request: CompletionRequest) -> Completion:
        """Blocking completion (holds the model lock)."""
        with self._lock:
            try:
                response = self._llama.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in request.messages],
                    response_format={"type": "json_object", "schema": request.json_schema},
                    temperature=request.temperature,
                    max_tokens=request.max_output_tokens,
                    seed=request.seed,
                )
            except ValueError as exc:  # llama-cpp-python reports context overflow as ValueError
                raise ModelResponseError(f"the local model could not run this request: {exc}") from exc
        choice = response["choices"][0]
        reason = choice.get("finish_reason")
        finish: FinishReason = reason if reason in ("stop", "length") else "other"
        if finish == "length":
            raise OutputTruncatedError(
                f"the local model's answer hit the {request.max_output_tokens}-token limit "
                "(small models can loop; raise DRAFTMARK_MAX_OUTPUT_TOKENS or use a larger model)"
            )
        usage = response.get("usage") or {}
        return Completion(
            text=choice["message"]["content"] or "",
            finish_reason=finish,
            usage=TokenUsage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
            ),
            model=self._model_id,
        )

    async def complete(self, request: CompletionRequest) -> Completion:
        """Run the blocking call in a worker thread."""
        return await asyncio.to_thread(self.complete_sync, request)
