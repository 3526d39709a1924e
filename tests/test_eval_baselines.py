"""Every eval report shows the word-count baseline; the calibration eval fits on a disjoint split."""

from __future__ import annotations

import json
import random
from pathlib import Path

from typer.testing import CliRunner

from service.cli import app
from tests.test_evals import write_asap

runner = CliRunner()


def _length_driven_rows(n: int) -> list[tuple[int, str, int, int]]:
    """Essays whose human mark is carried entirely by their length (so word count agrees well)."""
    rng = random.Random(0)
    vocabulary = [
        "computers",
        "people",
        "families",
        "friends",
        "exercise",
        "nature",
        "learning",
        "online",
        "time",
        "world",
    ]
    rows = []
    for i in range(n):
        mark = 1 + i % 6
        words = " ".join(rng.choice(vocabulary) for _ in range(30 * mark + rng.randint(0, 10)))
        rows.append((i, words.capitalize() + ".", mark, mark))
    return rows


def test_eval_run_reports_word_count_beside_the_machine(tmp_path: Path) -> None:
    folder = write_asap(tmp_path / "asap-aes", _length_driven_rows(40))
    out = tmp_path / "run"
    args = ["eval", "run", "--dataset", "asap", "--path", str(folder), "--set", "1", "--out", str(out)]
    result = runner.invoke(app, [*args, "--model", "fake:biased", "--limit", "30", "--sample", "random"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    overall = metrics["schemes"]["asap-set-1"]["objectives"]["overall"]
    assert overall["word_count"]["n"] == 30 and overall["word_count"]["qwk"] > 0.8, overall["word_count"]
    assert overall["spearman_beyond_length"] is not None
    report = (out / "report.md").read_text()
    assert "QWK word count alone" in report and "Spearman beyond length" in report
    assert "random (population-like kappas)" in report
    assert json.loads((out / "run.json").read_text())["sample"] == "random"


def test_calibration_eval_reports_baselines_curve_and_verdict(tmp_path: Path) -> None:
    folder = write_asap(tmp_path / "asap-aes", _length_driven_rows(60))
    out = tmp_path / "cal"
    args = ["eval", "calibrate", "--dataset", "asap", "--path", str(folder), "--set", "1", "--out", str(out)]
    result = runner.invoke(app, [*args, "--train", "20", "--test", "30", "--seeds", "0,1", "--curve", "10,20"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"] == 20 and metrics["test"] == 30 and metrics["seeds"] == [0, 1]
    figures = metrics["figures"]["overall"]
    assert set(figures) == {"calibrated", "word_count", "human2"}
    assert figures["human2"]["qwk"] == 1.0 and figures["word_count"]["qwk"] > 0.8
    assert set(metrics["learning_curve"]) == {"10", "20"}
    for run in metrics["per_seed"]:
        assert set(run["ablation"]) >= {"length", "vocabulary"} and "model" not in run["ablation"]
    checks = metrics["verdict"]["checks"]
    assert checks["calibrated >= human-human"] is False, "nothing beats two raters who always agree"
    report = (out / "report.md").read_text()
    assert "word count alone (regression on log words)" in report and "## Learning curve" in report
    too_many = runner.invoke(app, [*args, "--train", "50", "--test", "30", "--seeds", "0"])
    assert too_many.exit_code == 2 and "the dataset has 60" in too_many.output


def test_calibration_eval_takes_the_models_marks_from_a_run(tmp_path: Path) -> None:
    folder = write_asap(tmp_path / "asap-aes", _length_driven_rows(50))
    run = tmp_path / "run"
    base = ["--dataset", "asap", "--path", str(folder), "--set", "1"]
    marked = runner.invoke(app, ["eval", "run", *base, "--out", str(run), "--model", "fake:noisy", "--limit", "40"])
    assert marked.exit_code == 0, marked.output
    out = tmp_path / "cal"
    args = ["eval", "calibrate", *base, "--out", str(out), "--llm-run", str(run)]
    result = runner.invoke(app, [*args, "--train", "15", "--test", "20", "--seeds", "0", "--curve", "15"])
    assert result.exit_code == 0, result.output
    assert "40 essays carry the model's marks" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    figures = metrics["figures"]["overall"]
    assert {"model", "system", "calibrated", "word_count"} <= set(figures)
    assert figures["model"]["qwk"] > 0.7, "fake:noisy is the human's mark +-1"
    assert metrics["signals"] == "text + model marks" and "model" in metrics["per_seed"][0]["ablation"]


def test_eval_run_through_calibration_runs_the_robustness_suite_on_the_calibrated_system(tmp_path: Path) -> None:
    from tests.calibration_support import synthetic_essay

    rng = random.Random(5)
    rows = []
    for i in range(70):
        mark = 1 + i % 6
        rows.append((i, synthetic_essay(mark, rng, "vocabulary").replace("\n\n", " "), mark, mark))
    folder = write_asap(tmp_path / "asap-aes", rows)
    out = tmp_path / "run"
    args = ["eval", "run", "--dataset", "asap", "--path", str(folder), "--set", "1", "--out", str(out)]
    extra = [
        "--model",
        "fake:oracle",
        "--limit",
        "12",
        "--calibrate-train",
        "50",
        "--perturbation",
        "padding_off_topic",
    ]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    assert "calibration on 50 other items: overall: used" in result.output
    records = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert {r["provenance"]["calibration"]["status"] for r in records if r["status"] == "marked"} == {"calibrated"}
    metrics = json.loads((out / "metrics.json").read_text())
    (padding,) = [row for row in metrics["robustness"] if row["perturbation"] == "padding_off_topic"]
    assert padding["n"] == 12 and padding["passed"] == 12, padding
    assert json.loads((out / "run.json").read_text())["calibrate_train"] == 50
    too_many = runner.invoke(app, [*args, "--model", "fake:oracle", "--limit", "30", "--calibrate-train", "50"])
    assert too_many.exit_code == 2 and "only 40 items are left" in too_many.output
