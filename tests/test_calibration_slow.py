"""Calibration through a real model (SmolLM2-135M via llama-cpp-python): decided marks under the grammar."""

from __future__ import annotations

import random

import pytest

from schemas.result import FlagCode
from schemas.scheme import MarkScheme
from service.calibration.apply import calibrate
from service.calibration.fit import fit_calibrator
from service.local_model import smollm2_path
from service.pipeline import mark_essay
from service.settings import Settings
from tests.calibration_support import synthetic_essay, synthetic_scripts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():  # type: ignore[no-untyped-def]
    from service.llm.local import LocalLlamaLLM

    return LocalLlamaLLM.load(smollm2_path(), model_id="smollm2-135m-instruct-q4_1", threads=2, context=4096)


async def test_real_model_explains_calibrated_marks(smollm2, holistic: MarkScheme) -> None:  # type: ignore[no-untyped-def]
    calibrator = fit_calibrator(synthetic_scripts(holistic, 40, seed=2, driver="vocabulary"), holistic)
    assert calibrator.used and not calibrator.needs_model_marks
    rng = random.Random(21)
    settings = Settings(max_reasks=1, max_output_tokens=700, local_context=4096)
    for mark in (5,):
        essay = synthetic_essay(mark, rng, "vocabulary")
        expected = calibrate(calibrator, holistic, essay).marks["overall"]
        result = await mark_essay(essay, holistic, llm=smollm2, settings=settings, calibrator=calibrator)
        (ao,) = result.ao_marks
        assert ao.mark == expected, "the grammar offers only the decided mark"
        assert ao.level == holistic.objective("overall").level_for_mark(expected).level
        for ev in ao.evidence:
            assert essay[ev.start : ev.end] == ev.quote
        assert result.provenance.calibration.status == "calibrated"
        assert not result.has_flag(FlagCode.INDICATIVE_MODEL)


async def test_real_model_level_probabilities_then_marking(smollm2, holistic: MarkScheme) -> None:  # type: ignore[no-untyped-def]
    from service.calibration.probe import probe_essay

    essay = synthetic_essay(4, random.Random(22), "vocabulary")
    first = await probe_essay(smollm2, holistic, essay)
    again = await probe_essay(smollm2, holistic, essay)
    (probe,) = first.objectives.values()
    assert sum(probe.probabilities.values()) == pytest.approx(1.0)
    assert 0.0 < probe.answer_mass <= 1.0 and 1.0 <= probe.expected_mark <= 6.0
    # The second call re-evaluates only the last token (the rest is shared); llama.cpp's batched and
    # single-token kernels round differently, so the answer matches closely, not bit for bit.
    assert again.objectives["overall"].expected_mark == pytest.approx(probe.expected_mark, abs=0.05)
    settings = Settings(max_reasks=1, max_output_tokens=700, local_context=4096)
    result = await mark_essay(essay, holistic, llm=smollm2, settings=settings)
    for ao in result.ao_marks:
        for ev in ao.evidence:
            assert essay[ev.start : ev.end] == ev.quote


async def test_real_model_descriptor_questions_share_the_essay(smollm2, holistic: MarkScheme) -> None:  # type: ignore[no-untyped-def]
    """Each level descriptor is one Yes/No question; after the first, only the descriptor is evaluated."""
    import llama_cpp

    from service.calibration.descriptors import descriptor_probe

    essay = synthetic_essay(4, random.Random(23), "vocabulary")
    llama = smollm2._llama
    llama_cpp.llama_perf_context_reset(llama.ctx)
    result = await descriptor_probe(smollm2, holistic, essay)
    evaluated = llama_cpp.llama_perf_context(llama.ctx).n_p_eval
    (answers,) = result.objectives.values()
    levels = holistic.objectives[0].levels
    assert set(answers.probabilities) == {lv.level for lv in levels}
    assert all(0.0 <= p <= 1.0 for p in answers.probabilities.values()) and 0.0 < answers.answer_mass <= 1.0
    assert 1.0 <= answers.expected_mark <= 6.0 and result.kind == "descriptors"
    essay_tokens = len(llama.tokenize(essay.encode(), add_bos=False))
    descriptors = sum(len(llama.tokenize(lv.descriptor.encode(), add_bos=False)) for lv in levels)
    # one evaluation of the essay, then each question's own tail (descriptor + the fixed question)
    assert evaluated < essay_tokens * 2 + descriptors + 60 * len(levels), (evaluated, essay_tokens, descriptors)
