"""End to end with a real model: SmolLM2-135M through llama-cpp-python and the real pipeline.

SmolLM2 marks nonsensically; the point is that validation, re-asks and typed failures hold on
real model output: an input it marks gives a valid, grounded, flagged result, and one it cannot
finish gives a typed ModelError. Decoding is greedy with a fixed seed, so each outcome is fixed.
"""

from __future__ import annotations

import pytest

from schemas.result import FlagCode, MarkingResult
from schemas.scheme import MarkScheme
from service.errors import ModelError, ModelResponseError
from service.local_model import SMOLLM2_SHA256, sha256_file, smollm2_path
from service.pipeline import mark_essay
from service.settings import Settings

pytestmark = pytest.mark.slow

SHORT_ESSAY = (
    "Stalin came to power because he was General Secretary from 1922. This job let him appoint his "
    "supporters to important posts, so they voted for him at party congresses. He also hid Lenin's "
    "Testament, which had criticised him. Trotsky was arrogant and did not attend Lenin's funeral, "
    "which made him look disloyal. Stalin allied with Zinoviev and Kamenev against Trotsky, then with "
    "Bukharin against them. His idea of Socialism in One Country was popular. By 1927 Trotsky was "
    "expelled and by 1929 the Right were defeated. In conclusion, his control of the party was the most "
    "important reason, because it gave him the votes to beat each opposition in turn."
)


@pytest.fixture(scope="module")
def smollm2():  # type: ignore[no-untyped-def]
    from service.llm.local import LocalLlamaLLM

    path = smollm2_path()
    assert sha256_file(path) == SMOLLM2_SHA256
    return LocalLlamaLLM.load(path, model_id="smollm2-135m-instruct-q4_1", threads=2, context=4096)


PERSUASIVE_ESSAY = (
    "Phones should be banned in school because they distract pupils in class. When a phone buzzes, "
    "everyone looks at it and the lesson stops. Some pupils play games instead of listening to the teacher. "
    "Banning phones would also stop cyberbullying during the school day. However, phones can be useful in an "
    "emergency, so pupils could hand them in at the office. In conclusion, a ban would help pupils learn."
)


async def test_real_local_model_end_to_end(smollm2, holistic: MarkScheme) -> None:  # type: ignore[no-untyped-def]
    """An input SmolLM2 marks (greedy decoding, seed 0): the result must be valid, grounded and flagged."""
    settings = Settings(max_reasks=1, max_output_tokens=1200, local_context=4096)
    result = await mark_essay(PERSUASIVE_ESSAY, holistic, llm=smollm2, settings=settings)
    assert isinstance(result, MarkingResult)
    assert result.has_flag(FlagCode.INDICATIVE_MODEL) and result.has_flag(FlagCode.NEEDS_REVIEW)
    assert result.total == sum(m.mark for m in result.ao_marks) and result.max_total == holistic.total_marks
    quotes = [ev for ao in result.ao_marks for ev in ao.evidence]
    assert quotes, "a grounded result cites the essay"
    for ao in result.ao_marks:
        assert ao.band[0] <= ao.mark <= ao.band[1]
        for ev in ao.evidence:
            assert PERSUASIVE_ESSAY[ev.start : ev.end] == ev.quote
    assert result.provenance.endpoint_kind == "local" and result.provenance.usage.prompt_tokens > 0


async def test_real_local_model_typed_failure(smollm2, stalin: MarkScheme) -> None:  # type: ignore[no-untyped-def]
    """Where the real model cannot mark (the prompt overflows its 4,096-token context), the outcome is a
    typed error the API maps to a 502, never a result."""
    long_essay = " ".join([SHORT_ESSAY] * 20)
    settings = Settings(max_reasks=1, max_output_tokens=700, local_context=4096)
    with pytest.raises(ModelResponseError, match="could not run this request") as info:
        await mark_essay(long_essay, stalin, llm=smollm2, settings=settings)
    assert info.value.status_code == 502


async def test_schema_constrains_real_output(smollm2, holistic: MarkScheme) -> None:  # type: ignore[no-untyped-def]
    """The grammar keeps even a 135M model inside the enums: the raw JSON parses and marks are legal."""
    import json

    from schemas.draft import output_json_schema
    from service.llm.port import CompletionRequest
    from service.prompting import load_prompt

    prompt = load_prompt()
    request = CompletionRequest(
        messages=prompt.messages(holistic, "Phones should be banned because they distract pupils in class."),
        json_schema=output_json_schema(holistic),
        schema_name="marking_draft",
        temperature=0.0,
        max_output_tokens=2500,
        seed=0,
    )
    try:
        completion = await smollm2.complete(request)
    except ModelError:
        pytest.skip("the 135M model ran into the token limit; the pipeline test covers that path")
    data = json.loads(completion.text)
    overall = data["objectives"]["overall"]
    assert overall["mark"] in range(1, 7) and overall["level"] == overall["mark"], "the grammar binds mark to level"


def test_eval_run_with_the_real_embedded_model(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A short real eval: 3 reference items with SmolLM2; the report must say the model is indicative."""
    import json

    from typer.testing import CliRunner

    from service.cli import app

    monkeypatch.setenv("DRAFTMARK_LOCAL_MODEL_PATH", str(smollm2_path()))
    monkeypatch.setenv("DRAFTMARK_LOCAL_CONTEXT", "4096")
    monkeypatch.setenv("DRAFTMARK_MAX_OUTPUT_TOKENS", "700")
    monkeypatch.setenv("DRAFTMARK_MAX_REASKS", "0")
    out = tmp_path / "smol"
    result = CliRunner().invoke(
        app, ["eval", "run", "--dataset", "reference", "--limit", "3", "--out", str(out), "--concurrency", "1"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    scheme = metrics["schemes"]["stalin-power-1929"]
    assert scheme["items"] == 3 and scheme["marked"] + scheme["unmarked"] == 3
    assert metrics["gate_failures"], "a 135M model must not pass the quality gate"
    report = (out / "report.md").read_text()
    if scheme["marked"]:
        assert metrics["indicative_model"] and "Indicative model" in report


async def test_grammar_accepts_sentence_refs_for_essays_with_double_quotes(smollm2, stalin: MarkScheme, capfd) -> None:  # type: ignore[no-untyped-def]
    """llama.cpp's grammar parser must accept the evidence enum of an essay that quotes people."""
    from schemas.draft import output_json_schema
    from schemas.sentences import SentenceTable
    from service.llm.port import CompletionRequest
    from service.prompting import load_prompt

    essay = 'Lenin called Stalin "too rude" and said he should be removed. A path C:\\temp here. ' + SHORT_ESSAY
    table = SentenceTable(essay)
    request = CompletionRequest(
        messages=load_prompt().messages(stalin, essay, table),
        json_schema=output_json_schema(stalin, sentence_refs=table.citable_refs()),
        schema_name="marking_draft",
        temperature=0.0,
        max_output_tokens=16,
        seed=0,
    )
    with pytest.raises(ModelError):  # 16 tokens cannot finish the answer: a typed truncation, not a grammar failure
        await smollm2.complete(request)
    assert "error parsing grammar" not in capfd.readouterr().err


def test_disk_prefix_cache_with_a_real_model(tmp_path, stalin: MarkScheme) -> None:  # type: ignore[no-untyped-def]
    """A fresh model restores the stored prefix state and answers exactly as the cold one did."""
    from schemas.draft import output_json_schema
    from schemas.sentences import SentenceTable
    from service.llm.local import LocalLlamaLLM
    from service.llm.port import CompletionRequest
    from service.llm.prefix_cache import PrefixCache
    from service.prompting import load_prompt

    cache = PrefixCache(tmp_path / "states", capacity_bytes=1 << 30)
    table = SentenceTable(SHORT_ESSAY)
    request = CompletionRequest(
        messages=load_prompt().messages(stalin, SHORT_ESSAY, table),
        json_schema=output_json_schema(stalin, sentence_refs=table.citable_refs()),
        schema_name="marking_draft",
        temperature=0.0,
        max_output_tokens=60,
        seed=0,
    )

    def answer(llm: LocalLlamaLLM) -> str:
        try:
            return llm.complete_sync(request).text
        except ModelError as exc:  # 60 tokens may truncate: compare what was generated instead
            return type(exc).__name__ + str(llm._llama.input_ids[: llm._llama.n_tokens].tolist())

    def fresh() -> LocalLlamaLLM:
        return LocalLlamaLLM.load(smollm2_path(), model_id="smol", threads=2, context=4096, prefix_cache=cache)

    cold = fresh()
    cold_answer = answer(cold)
    assert cold.last_prefix == "built"
    (entry,) = cache.entries()
    assert entry.key["scheme_id"] == stalin.id and entry.n_tokens > 500
    assert answer(cold) == cold_answer and cold.last_prefix == "memory"

    warm = fresh()
    assert answer(warm) == cold_answer and warm.last_prefix == "disk"

    entry.path.write_bytes(entry.path.read_bytes()[:-100])  # corrupt: ignored and rebuilt
    rebuilt = fresh()
    assert answer(rebuilt) == cold_answer and rebuilt.last_prefix == "built"
    assert fresh().warm(request.messages[0]) == "disk"
