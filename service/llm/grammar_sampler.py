"""Greedy grammar-constrained sampling that checks the model's favourite token first.

llama-cpp-python's sampler chain applies the JSON grammar to every token of the vocabulary
(151,936 for Qwen2.5) before picking the best one, at every generated token: on 2 cores that
was ~30 ms a token, a third of a marking's generation time (docs/BENCHMARKS.md). Under greedy
decoding the answer is the highest-scoring token the grammar allows, so it is enough to ask the
grammar about the single highest-scoring token and only fall back to the whole vocabulary when
the grammar rejects it (llama.cpp's own ``common_sampler`` does the same). The tokens chosen are
identical to the full check; ``tests/test_grammar_sampler.py`` compares them on a real model.

Only greedy decoding without penalties or logits processors takes this path; anything else
keeps llama-cpp-python's own chain.
"""

from __future__ import annotations

import ctypes
import functools
import math
from typing import Any, cast


class FavouriteFirst:
    """Apply-function of a custom sampler placed before the grammar in a greedy chain.

    It narrows the candidates to the best-scoring token when the grammar accepts that token;
    the grammar sampler that follows then checks one candidate instead of the vocabulary. The
    grammar's state is advanced by the chain (``accept``), never here.
    """

    def __init__(self, grammar_sampler: Any) -> None:
        import llama_cpp
        import numpy as np

        self._np = np
        self._llama_cpp = llama_cpp
        self._grammar = grammar_sampler
        self._records = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
        self._one = (llama_cpp.llama_token_data * 1)()
        self._probe = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self.fast = 0
        self.full = 0

    def __call__(self, candidates: Any) -> None:
        """Narrow ``candidates`` (a ``llama_token_data_array*``) to its best token if allowed."""
        array = candidates.contents
        size = int(array.size)
        if size <= 1:
            return
        buffer = (ctypes.c_char * (size * self._records.itemsize)).from_address(ctypes.addressof(array.data.contents))
        records = self._np.frombuffer(cast(Any, buffer), dtype=self._records, count=size)
        best = int(self._np.argmax(records["logit"]))
        self._one[0] = self._llama_cpp.llama_token_data(
            int(records["id"][best]), float(records["logit"][best]), float(records["p"][best])
        )
        self._probe.size = 1
        self._probe.selected = -1
        self._llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(self._probe))
        if math.isinf(self._one[0].logit):
            self.full += 1
            return
        self.fast += 1
        if best != 0:
            records[[0, best]] = records[[best, 0]]
        array.size = 1
        array.sorted = False


def greedy_grammar_chain(llama: Any, grammar: Any) -> tuple[Any, FavouriteFirst]:
    """A llama-cpp-python ``LlamaSampler``: favourite-first check, then ``grammar``, then greedy."""
    import llama_cpp
    from llama_cpp import _internals

    chain = _internals.LlamaSampler()  # type: ignore[no-untyped-call]
    grammar_sampler = llama_cpp.llama_sampler_init_grammar(
        llama._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
    )
    if not grammar_sampler:
        raise ValueError("llama.cpp could not parse the grammar")
    favourite = FavouriteFirst(grammar_sampler)
    chain.add_custom(favourite)
    llama_cpp.llama_sampler_chain_add(chain.sampler, grammar_sampler)  # the chain owns and frees it
    chain.add_greedy()  # type: ignore[no-untyped-call]
    return chain, favourite


def takes_fast_path(settings: dict[str, Any]) -> bool:
    """Whether ``Llama._init_sampler``'s arguments describe plain greedy grammar decoding."""
    return (
        settings.get("grammar") is not None
        and settings.get("temp") == 0.0
        and settings.get("logits_processor") is None
        and settings.get("repeat_penalty", 1.0) == 1.0
        and settings.get("frequency_penalty", 0.0) == 0.0
        and settings.get("presence_penalty", 0.0) == 0.0
        and settings.get("mirostat_mode", 0) == 0
    )


@functools.cache
def fast_grammar_llama_class() -> type[Any]:
    """A ``Llama`` subclass whose greedy grammar decoding takes the favourite-first path.

    Pinned to llama-cpp-python 0.3.36's private ``_init_sampler`` (pyproject pins the version);
    ``last_sampling`` counts how often the favourite was allowed (``fast``) or the whole
    vocabulary had to be checked (``full``) in the latest generation.
    """
    from llama_cpp import Llama

    class GrammarFirstLlama(Llama):
        last_sampling: FavouriteFirst | None = None

        def _init_sampler(self, **settings: Any) -> Any:  # type: ignore[override]  # always called by keyword
            if not takes_fast_path(settings):
                self.last_sampling = None
                return super()._init_sampler(**settings)
            chain, favourite = greedy_grammar_chain(self, settings["grammar"])
            self.last_sampling = favourite
            return chain

    return GrammarFirstLlama
