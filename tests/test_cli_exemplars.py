"""``draftmark exemplars``: import, list, calibration, delete; ``draftmark mark`` then uses the calibration."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schemas.result import MarkingResult
from schemas.scheme import MarkScheme
from service.cli import app
from service.testing import OpenAIStub, fake_marker_responder
from tests.calibration_support import synthetic_essay, synthetic_scripts

runner = CliRunner()


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("DRAFTMARK_DATABASE_URL", f"sqlite:///{path}")
    return path


def test_import_list_calibration_mark_delete(
    database: Path, tmp_path: Path, holistic: MarkScheme, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = tmp_path / "marked.csv"
    with scripts.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "essay", "mark"])
        for i, s in enumerate(synthetic_scripts(holistic, 30, 2, "vocabulary")):
            writer.writerow([f"stu-{i}", s.essay, s.marks["overall"]])
    essay = tmp_path / "essay.txt"
    essay.write_text(synthetic_essay(5, random.Random(4), "vocabulary"), encoding="utf-8")
    with OpenAIStub(responder=fake_marker_responder()) as stub:
        monkeypatch.setenv("DRAFTMARK_LLM_BASE_URL", stub.base_url)
        before = runner.invoke(app, ["mark", str(essay), "-s", holistic.id, "--format", "json"])
        assert before.exit_code == 0, before.output
        assert MarkingResult.model_validate_json(before.stdout).provenance.calibration.status == "uncalibrated"

        out = runner.invoke(app, ["exemplars", "import", str(scripts), "--scheme", holistic.id])
        assert out.exit_code == 0, out.output
        assert "added 30, updated 0" in out.stdout and "calibrated on 30 of your marked scripts" in out.stdout
        listed = runner.invoke(app, ["exemplars", "list", "--scheme", holistic.id])
        assert listed.exit_code == 0 and listed.stdout.count("stu-") == 30

        after = runner.invoke(app, ["mark", str(essay), "-s", holistic.id, "--format", "json"])
        assert after.exit_code == 0, after.output
        result = MarkingResult.model_validate_json(after.stdout)
        assert result.provenance.calibration.status == "calibrated" and result.provenance.calibration.n_scripts == 30
        table = runner.invoke(app, ["mark", str(essay), "-s", holistic.id])
        assert "Calibration: calibrated on 30 of your marked scripts" in table.stdout

    exemplar_id = next(word for word in listed.stdout.split() if word.startswith("ex_"))
    deleted = runner.invoke(app, ["exemplars", "delete", exemplar_id, "--scheme", holistic.id])
    assert deleted.exit_code == 0, deleted.output
    shown = runner.invoke(app, ["exemplars", "calibration", "--scheme", holistic.id])
    assert "29 marked script(s)" in shown.stdout


def test_import_errors_name_the_line_and_exit_2(database: Path, tmp_path: Path, holistic: MarkScheme) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("essay,mark\nFine.,3\nToo high.,12\n", encoding="utf-8")
    out = runner.invoke(app, ["exemplars", "import", str(bad), "--scheme", holistic.id])
    assert out.exit_code == 2 and "line 3: overall mark 12 is outside 1-6" in out.output
    missing = runner.invoke(app, ["exemplars", "import", str(tmp_path / "none.csv"), "--scheme", holistic.id])
    assert missing.exit_code == 2 and "does not exist" in missing.output
