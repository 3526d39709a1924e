"""``eval calibrate --scheme FILE`` and ``eval run --scheme FILE``: a teacher's own scheme for a JSONL dataset."""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml
from typer.testing import CliRunner

from schemas.scheme import MarkScheme
from service.cli import app
from tests.calibration_support import synthetic_essay

runner = CliRunner()


def _own_scheme(holistic: MarkScheme, path: Path) -> Path:
    own = holistic.model_copy(update={"id": "my-letter-scheme", "version": "2.0", "title": "My own letter scheme"})
    path.write_text(yaml.safe_dump(own.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return path


def test_a_teachers_scheme_file_works_with_a_jsonl_dataset(tmp_path: Path, holistic: MarkScheme) -> None:
    rng = random.Random(4)
    lines = []
    for i in range(40):
        mark = 1 + i % 6
        essay = synthetic_essay(mark, rng, "length")
        lines.append(
            json.dumps({"id": f"s{i}", "essay": essay, "scheme_id": "my-letter-scheme", "human": {"overall": mark}})
        )
    data = tmp_path / "mine.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    scheme = _own_scheme(holistic, tmp_path / "mine.yaml")
    base = ["eval", "calibrate", "--dataset", "jsonl", "--path", str(data), "--train", "15", "--test", "20"]
    refused = runner.invoke(app, [*base, "--seeds", "0", "--curve", "15", "--out", str(tmp_path / "a")])
    assert refused.exit_code == 2 and "my-letter-scheme" in refused.output, refused.output
    done = runner.invoke(
        app, [*base, "--seeds", "0", "--curve", "15", "--out", str(tmp_path / "b"), "--scheme", str(scheme)]
    )
    assert done.exit_code == 0, done.output
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["scheme"] == "my-letter-scheme@2.0" and metrics["test"] == 20
    run = ["eval", "run", "--dataset", "jsonl", "--path", str(data), "--model", "fake:oracle", "--limit", "6"]
    marked = runner.invoke(app, [*run, "--out", str(tmp_path / "run"), "--scheme", str(scheme)])
    assert marked.exit_code == 0, marked.output
    records = [json.loads(x) for x in (tmp_path / "run" / "items.jsonl").read_text().splitlines()]
    assert {r["status"] for r in records} == {"marked"} and len(records) == 6
    reference = ["eval", "calibrate", "--dataset", "reference", "--out", str(tmp_path / "c")]
    wrong = runner.invoke(app, [*reference, "--scheme", str(scheme)])
    assert wrong.exit_code == 2 and "--scheme is for --dataset jsonl" in wrong.output
