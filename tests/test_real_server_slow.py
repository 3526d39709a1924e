"""Contract test against a real OpenAI-compatible server: llama-cpp-python's own, serving SmolLM2, in JSON mode.

The stub in ``service.testing`` speaks the wire format as we read it; this server was written by
someone else. The README's documented JSON-mode case (``DRAFTMARK_STRUCTURED_OUTPUT=json_mode``)
must mark the example essay end to end: evidence by sentence reference (no grammar enforces the
enum in JSON mode; code checks it), nothing copied from the prompt's example in the result, and a
valid, grounded result even when the small model's quotes or feedback fail (left out, flagged).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from schemas.result import FlagCode
from schemas.scheme import MarkScheme
from service.copying import text_faults
from service.llm.factory import build_llm
from service.local_model import smollm2_path
from service.pipeline import mark_essay
from service.prompting import load_prompt
from service.settings import Settings

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python's server extra (sse-starlette) is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--model_alias", "smollm2"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192", "--n_threads", "2", "--seed", "0"]
    # Its log goes to a file: llama.cpp writes enough while loading to fill a pipe and stall the server.
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"the server exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start in 120 s"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()  # a request that timed out on our side may still be generating: then kill it
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


async def test_the_example_essay_marks_through_llama_cpp_server_in_json_mode(
    server: str, stalin: MarkScheme, essay: str
) -> None:
    settings = Settings(
        llm_base_url=server,
        llm_model="smollm2",
        llm_api_key="not-needed",
        structured_output="json_mode",
        max_reasks=2,
        request_timeout_s=600,
        max_output_tokens=700,
    )
    llm = build_llm(settings)
    assert llm.endpoint_kind == "openai_compatible"
    result = await mark_essay(essay, stalin, llm=llm, settings=settings)
    assert result.provenance.evidence_mode == "sentences", "sentence references by default on endpoints"
    assert 1 <= result.provenance.attempts <= 3 and result.provenance.usage.completion_tokens > 0
    assert [m.ao_id for m in result.ao_marks] == list(stalin.objective_ids)
    assert result.total == sum(m.mark for m in result.ao_marks)
    for mark in result.ao_marks:
        for ev in mark.evidence:
            assert essay[ev.start : ev.end] == ev.quote, "evidence is verbatim by construction"
    # Nothing from the prompt's 1914 example survives into what a teacher or student reads.
    fields = [(m.ao_id, "rationale", m.rationale) for m in result.ao_marks]
    fields += [("what_went_well", "what_went_well", result.feedback.what_went_well)]
    fields += [("even_better_if", "even_better_if", result.feedback.even_better_if)]
    fields += [("teacher_notes", "teacher_notes", result.teacher_notes)]
    assert text_faults(fields, load_prompt(), stalin, essay) == []
    shown = " ".join(text for *_, text in fields)
    assert "Serbia" not in shown and "ultimatum" not in shown and "1914" not in shown
    codes = {f.code for f in result.flags}
    if codes & {FlagCode.EVIDENCE_MISSING, FlagCode.TEXT_REPLACED}:
        assert FlagCode.NEEDS_REVIEW in codes, "whatever was left out sends the script to a teacher"


def _settings(server: str, **changes: object) -> Settings:
    base = {
        "llm_base_url": server,
        "llm_model": "smollm2",
        "llm_api_key": "not-needed",
        "structured_output": "json_mode",
        "max_reasks": 2,
        "request_timeout_s": 600,
        "max_output_tokens": 700,
    }
    return Settings(**(base | changes))  # type: ignore[arg-type]


async def test_free_quotes_through_the_real_server_degrade_rather_than_fail(
    server: str, stalin: MarkScheme, essay: str
) -> None:
    settings = _settings(server, evidence_mode="free")
    result = await mark_essay(essay, stalin, llm=build_llm(settings), settings=settings)
    assert result.provenance.evidence_mode == "free" and 1 <= result.provenance.attempts <= 3
    for mark in result.ao_marks:
        assert all(essay[ev.start : ev.end] == ev.quote for ev in mark.evidence), "only verbatim quotes survive"
    if any(f.code == FlagCode.EVIDENCE_MISSING for f in result.flags):
        assert result.has_flag(FlagCode.NEEDS_REVIEW)


async def test_a_timeout_through_the_real_server_is_a_typed_504(server: str, stalin: MarkScheme, essay: str) -> None:
    from service.errors import ModelTimeoutError

    settings = _settings(server, request_timeout_s=0.5, transport_retries=0)
    with pytest.raises(ModelTimeoutError) as raised:
        await mark_essay(essay, stalin, llm=build_llm(settings), settings=settings)
    assert raised.value.status_code == 504
