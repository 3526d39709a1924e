"""``draftmark mark --fake-model``: every path of the pipeline without a model (issue 21)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schemas.result import MarkingResult
from service.cli import app
from tests.conftest import EXAMPLE_ESSAY

runner = CliRunner()


def test_mark_with_the_fake_model_needs_no_model_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAFTMARK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DRAFTMARK_BACKEND", "local")
    monkeypatch.setenv("DRAFTMARK_LOCAL_MODEL_PATH", str(tmp_path / "no-such-model.gguf"))
    out = runner.invoke(
        app, ["mark", str(EXAMPLE_ESSAY), "--scheme", "stalin-power-1929", "--fake-model", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    result = MarkingResult.model_validate(json.loads(out.stdout))
    assert result.provenance.endpoint_kind == "fake" and result.provenance.model == "fake-marker"
    without = runner.invoke(app, ["mark", str(EXAMPLE_ESSAY), "--scheme", "stalin-power-1929", "--format", "json"])
    assert without.exit_code == 4 and "does not exist" in without.output, "the missing model is the error"
