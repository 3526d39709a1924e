"""The probability a llama.cpp model gives each of a few answers as its next token (no generation).

Used to read a small model's judgement as a distribution (e.g. over level numbers) instead of
its argmax: the expected level carries rank information even when the argmax is always the
same. Only the last position's logits are read, so the model need not keep logits for every
token (``logits_all``, gigabytes at 8k context); the evaluated prefix shared with the previous
call is reused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from service.errors import ModelResponseError
from service.llm.port import ChatMessage


def chat_tokens(llama: Any, messages: Sequence[ChatMessage]) -> list[int]:
    """The model's own chat template applied to ``messages``, ready for the assistant's answer."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelResponseError("the local model has no chat template; next-token probabilities need one")
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=llama._model.token_get_text(llama.token_eos()),
        bos_token=llama._model.token_get_text(llama.token_bos()),
    )
    chat: Any = [{"role": m.role, "content": m.content} for m in messages]
    result = formatter(messages=chat)
    return list(llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True))


def single_token(llama: Any, text: str) -> int | None:
    """The one token that spells ``text``, or None when it takes more than one."""
    tokens = llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    return int(tokens[0]) if len(tokens) == 1 else None


def next_token_probabilities(llama: Any, messages: Sequence[ChatMessage], choices: Sequence[str]) -> dict[str, float]:
    """P(choice) for the model's next token after ``messages``, renormalised over ``choices``.

    Also returns the raw probability mass the model put on all the choices together under the
    key ``""`` (how far it wanted to answer with one of them at all).
    """
    import numpy as np

    ids = {choice: single_token(llama, choice) for choice in choices}
    missing = [c for c, i in ids.items() if i is None]
    if missing:
        raise ModelResponseError(f"answers {missing} are not single tokens for this model")
    tokens = chat_tokens(llama, messages)
    if len(tokens) >= llama.n_ctx():
        raise ModelResponseError(f"the probe prompt has {len(tokens)} tokens; the context holds {llama.n_ctx()}")
    resident = [int(t) for t in llama.input_ids[: llama.n_tokens]]
    shared = 0
    for a, b in zip(resident, tokens, strict=False):
        if a != b:
            break
        shared += 1
    shared = min(shared, len(tokens) - 1)  # the last token is evaluated again: its logits are what we read
    llama.n_tokens = shared
    llama.eval(tokens[shared:])
    logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),)).astype(np.float64)
    top = float(logits.max())
    log_total = top + math.log(float(np.exp(logits - top).sum()))
    raw = {c: math.exp(float(logits[i]) - log_total) for c, i in ids.items() if i is not None}
    mass = sum(raw.values())
    if mass <= 0.0:
        raise ModelResponseError("the model put no probability on any of the answers")
    return {**{c: p / mass for c, p in raw.items()}, "": mass}
