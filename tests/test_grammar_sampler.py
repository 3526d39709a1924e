"""Favourite-first greedy grammar sampling: the same tokens as llama-cpp-python's own chain.

The real-model test runs SmolLM2 through plain ``Llama`` and through the favourite-first
subclass on the same grammar-constrained request and compares the answers token for token; it
also checks both branches ran (the favourite allowed, and rejected so the whole vocabulary was
checked), so a fast path that silently stopped being taken, or one that picked a different token
when the favourite was rejected, fails here.
"""

from __future__ import annotations

import pytest

from schemas.draft import output_json_schema
from schemas.scheme import MarkScheme
from schemas.sentences import SentenceTable
from service.local_model import smollm2_path
from service.prompting import load_prompt

ESSAY = (
    "Phones should be banned in school because they distract pupils in class. When a phone buzzes, "
    "everyone looks at it and the lesson stops. Banning phones would also stop cyberbullying during the "
    "school day. However, phones can be useful in an emergency. In conclusion, a ban would help pupils learn."
)


def test_fast_path_only_for_plain_greedy_grammar_decoding() -> None:
    from service.llm.grammar_sampler import takes_fast_path

    grammar = object()
    assert takes_fast_path({"grammar": grammar, "temp": 0.0, "repeat_penalty": 1.0})
    assert not takes_fast_path({"grammar": None, "temp": 0.0})
    assert not takes_fast_path({"grammar": grammar, "temp": 0.2})
    assert not takes_fast_path({"grammar": grammar, "temp": 0.0, "repeat_penalty": 1.1})
    assert not takes_fast_path({"grammar": grammar, "temp": 0.0, "presence_penalty": 0.5})
    assert not takes_fast_path({"grammar": grammar, "temp": 0.0, "logits_processor": [abs]})
    assert not takes_fast_path({"grammar": grammar, "temp": 0.0, "mirostat_mode": 2})


@pytest.mark.slow
def test_favourite_first_generates_the_same_tokens_as_llama_cpp(holistic: MarkScheme) -> None:
    from service.llm.local import load_llama

    table = SentenceTable(ESSAY)
    messages = [{"role": m.role, "content": m.content} for m in load_prompt().messages(holistic, ESSAY, table)]
    schema = output_json_schema(holistic, sentence_refs=table.citable_refs())
    answers = {}
    counters = None
    for grammar_first in (False, True):
        llama = load_llama(smollm2_path(), threads=2, context=4096, grammar_first=grammar_first)
        response = llama.create_chat_completion(
            messages=messages,
            response_format={"type": "json_object", "schema": schema},
            temperature=0.0,
            max_tokens=400,
            seed=0,
        )
        choice = response["choices"][0]
        answers[grammar_first] = (choice["message"]["content"], choice["finish_reason"], response["usage"])
        if grammar_first:
            counters = llama.last_sampling
        llama.close()
    assert answers[True] == answers[False]
    assert counters is not None, "greedy grammar decoding must take the favourite-first path"
    assert counters.fast > 0 and counters.full > 0, (counters.fast, counters.full)
    _text, finish, usage = answers[True]
    assert finish == "stop"
    # every generated token was sampled through it, and so was the end-of-turn token that stopped it
    assert counters.fast + counters.full == usage["completion_tokens"] + 1
