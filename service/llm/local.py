"""Embedded backend: a GGUF model run in-process by llama-cpp-python.

One loaded model per process; calls are serialised (llama.cpp contexts are not
thread-safe) and run off the event loop. Consecutive calls that share a prompt prefix
(same scheme, essay last) reuse llama.cpp's KV cache automatically; with a ``PrefixCache``
the evaluated system message is also kept on disk, so a fresh process restores it in a
fraction of a second instead of evaluating it again.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import importlib.metadata
import logging
import threading
from pathlib import Path
from typing import Any, Literal

from schemas.result import EndpointKind, TokenUsage
from service.errors import ConfigurationError, ModelResponseError, OutputTruncatedError
from service.llm.next_token import next_token_probabilities
from service.llm.port import ChatMessage, Completion, CompletionRequest, FinishReason
from service.llm.prefix_cache import PrefixCache, PrefixKey, PrefixState, model_fingerprint
from service.settings import Settings

log = logging.getLogger(__name__)

PrefixSource = Literal["memory", "disk", "built", "none"]


def load_llama(path: Path, *, threads: int, context: int, grammar_first: bool = True) -> Any:
    """Load a GGUF with llama-cpp-python (``ConfigurationError`` when it is not installed).

    ``grammar_first`` (the default) loads it with greedy grammar decoding that asks the grammar
    about the model's favourite token before the whole vocabulary (``grammar_sampler``): the
    same tokens, without ~30 ms of grammar checks per generated token. ``False`` gives plain
    llama-cpp-python, which the benchmark uses as its "raw" baseline.
    """
    try:
        from llama_cpp import Llama

        from service.llm.grammar_sampler import fast_grammar_llama_class
    except ImportError as exc:
        raise ConfigurationError(
            "the embedded model needs llama-cpp-python: pip install 'draftmark[local]' "
            "(it compiles llama.cpp, about 10 minutes on 2 cores), or set DRAFTMARK_LLM_BASE_URL"
        ) from exc
    llama_class = fast_grammar_llama_class() if grammar_first else Llama
    try:
        return llama_class(
            model_path=str(path),
            n_ctx=context,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise ConfigurationError(f"cannot load the model {path}: {exc}") from exc


def llama_cpp_version() -> str:
    """The installed llama-cpp-python version (part of every prefix-cache key)."""
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def prefix_cache_for(settings: Settings) -> PrefixCache | None:
    """The configured disk prefix cache, or None when ``DRAFTMARK_PREFIX_CACHE_MB=0``."""
    if settings.prefix_cache_mb <= 0:
        return None
    return PrefixCache(settings.model_cache_dir / "prefix-states", settings.prefix_cache_mb * 1024 * 1024)


def snapshot(llama: Any) -> PrefixState:
    """llama.cpp's context state and the tokens it covers.

    Read through the C API instead of ``Llama.save_state``, which also copies the
    ``n_batch x n_vocab`` logits buffer that sampling no longer uses.
    """
    import llama_cpp

    size = int(llama_cpp.llama_state_get_size(llama.ctx))
    buffer = (ctypes.c_uint8 * size)()
    written = int(llama_cpp.llama_state_get_data(llama.ctx, buffer, size))
    if written > size:
        raise RuntimeError("llama.cpp wrote more state than it announced")
    return PrefixState(tokens=[int(t) for t in llama.input_ids[: llama.n_tokens]], state=bytes(buffer)[:written])


def restore(llama: Any, entry: PrefixState) -> None:
    """Put ``entry`` back into ``llama`` (``RuntimeError`` when llama.cpp refuses it)."""
    import numpy as np
    from llama_cpp import LlamaState

    ids = np.zeros(llama.n_ctx(), dtype=np.intc)
    ids[: len(entry.tokens)] = entry.tokens
    llama.load_state(
        LlamaState(
            input_ids=ids,
            scores=np.zeros((1, llama.n_vocab()), dtype=np.single),  # broadcast into the unused logits rows
            n_tokens=len(entry.tokens),
            llama_state=entry.state,
            llama_state_size=len(entry.state),
            seed=getattr(llama, "_seed", 0),
        )
    )


class LocalLlamaLLM:
    """In-process llama.cpp model behind the LLM port."""

    def __init__(
        self,
        llama: Any,
        *,
        model_id: str,
        indicative_only: bool = True,
        prefix_cache: PrefixCache | None = None,
        model_sha256: str = "",
    ) -> None:
        self._llama = llama
        self._model_id = model_id
        self._indicative = indicative_only
        self._lock = threading.Lock()
        self._cache = prefix_cache
        self._model_sha256 = model_sha256
        self._resident: PrefixKey | None = None
        self.last_prefix: PrefixSource = "none"

    @classmethod
    def load(
        cls, path: Path, *, model_id: str, threads: int, context: int, prefix_cache: PrefixCache | None = None
    ) -> LocalLlamaLLM:
        """Load ``path`` and wrap it."""
        llama = load_llama(path, threads=threads, context=context)
        sha = model_fingerprint(path, prefix_cache.folder) if prefix_cache is not None else ""
        return cls(llama, model_id=model_id, prefix_cache=prefix_cache, model_sha256=sha)

    @property
    def model_id(self) -> str:
        """The GGUF's name."""
        return self._model_id

    @property
    def endpoint_kind(self) -> EndpointKind:
        """``local``: the pipeline's sentence-reference evidence mode is chosen for it."""
        return "local"

    @property
    def indicative_only(self) -> bool:
        """Small local models are never trusted as markers."""
        return self._indicative

    @property
    def prefix_cache(self) -> PrefixCache | None:
        """The disk cache of evaluated prefixes, if any."""
        return self._cache

    def prefix_key(self, system: ChatMessage) -> PrefixKey | None:
        """The cache key of a system message that says what it was rendered from."""
        tag = system.prefix
        if tag is None or system.role != "system":
            return None
        return PrefixKey(
            model_sha256=self._model_sha256,
            llama_cpp_version=llama_cpp_version(),
            n_ctx=int(self._llama.n_ctx()),
            prompt_id=tag.prompt.id,
            prompt_version=tag.prompt.version,
            prompt_sha256=tag.prompt.sha256,
            scheme_id=tag.scheme_id,
            scheme_version=tag.scheme_version,
            scheme_sha256=tag.scheme_sha256,
            variant=tag.variant,
            prefix_sha256=hashlib.sha256(system.content.encode()).hexdigest(),
        )

    def warm(self, system: ChatMessage) -> PrefixSource:
        """Make ``system``'s evaluated state resident (and stored on disk); where it came from."""
        with self._lock:
            return self._prepare_prefix(system)

    def _prepare_prefix(self, system: ChatMessage) -> PrefixSource:
        key = self.prefix_key(system) if self._cache is not None else None
        if self._cache is None or key is None:
            self._resident = None
            self.last_prefix = "none"
            return self.last_prefix
        if key == self._resident:
            self.last_prefix = "memory"
            return self.last_prefix
        stored = self._cache.load(key)
        if stored is not None:
            try:
                restore(self._llama, stored)
            except RuntimeError as exc:
                self._cache.discard(key, f"llama.cpp refused to restore it ({exc})")
                self._llama.reset()
            else:
                self._resident = key
                self.last_prefix = "disk"
                return self.last_prefix
        # Evaluate the system message (and the empty start of a user turn) once, store the state;
        # the real request then shares this prefix in memory and evaluates only the essay.
        try:
            self._llama.create_chat_completion(
                messages=[{"role": "system", "content": system.content}, {"role": "user", "content": ""}],
                max_tokens=1,
                temperature=0.0,
            )
            self._cache.save(key, snapshot(self._llama))
        except (ValueError, RuntimeError, OSError) as exc:
            log.warning("prefix cache: could not build or store the state (%s); continuing without it", exc)
            self._resident = None
            self.last_prefix = "none"
            return self.last_prefix
        self._resident = key
        self.last_prefix = "built"
        return self.last_prefix

    def complete_sync(self, request: CompletionRequest) -> Completion:
        """Blocking completion (holds the model lock)."""
        with self._lock:
            if request.messages:
                self._prepare_prefix(request.messages[0])
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

    def next_token_probabilities_sync(
        self, messages: tuple[ChatMessage, ...], choices: tuple[str, ...]
    ) -> dict[str, float]:
        """Blocking ``next_token_probabilities`` (holds the model lock)."""
        with self._lock:
            try:
                return next_token_probabilities(self._llama, messages, choices)
            finally:
                self._resident = None  # the probe replaced the evaluated prefix

    async def next_token_probabilities(
        self, messages: tuple[ChatMessage, ...], choices: tuple[str, ...]
    ) -> dict[str, float]:
        """P(each choice) as the model's next token after ``messages`` (``""``: their raw total mass)."""
        return await asyncio.to_thread(self.next_token_probabilities_sync, messages, choices)
