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
    assert set(figures) == {"calibrated", "delivered", "word_count", "human2"}
    assert figures["human2"]["qwk"] == 1.0 and figures["word_count"]["qwk"] > 0.8
    assert set(metrics["learning_curve"]) == {"10", "20"}
    for run in metrics["per_seed"]:
        assert set(run["ablation"]) >= {"length", "vocabulary"} and "model" not in run["ablation"]
    checks = metrics["verdict"]["checks"]
    assert checks["delivered >= human-human"] is False, "nothing beats two raters who always agree"
    assert checks["delivered >= word count - 0.01"] is True, "length carries the marks: the length model is delivered"
    assert "length" in {run["selection"]["overall"]["delivered"] for run in metrics["per_seed"]}
    report = (out / "report.md").read_text()
    assert "the sceptic's word count" in report and "## Learning curve" in report
    assert "**what draftmark delivers**" in report
    too_many = runner.invoke(app, [*args, "--train", "50", "--test", "30", "--seeds", "0"])
    assert too_many.exit_code == 2 and "the dataset has 60" in too_many.output


def _jsonl(path: Path, rows: list[tuple[int, str, int, int]], prefix: str) -> Path:
    lines = [
        json.dumps({"id": f"{prefix}-{i}", "essay": essay, "scheme_id": "asap-set-1", "human": {"overall": mark}})
        for i, essay, mark, _ in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_calibration_eval_fits_on_a_teachers_marked_scripts_and_tests_on_the_dataset(tmp_path: Path) -> None:
    rows = _length_driven_rows(60)
    folder = write_asap(tmp_path / "asap-aes", rows[:30])
    exemplars = _jsonl(tmp_path / "marked.jsonl", rows[30:], "teacher")
    out = tmp_path / "cal"
    args = ["eval", "calibrate", "--dataset", "asap", "--path", str(folder), "--set", "1", "--out", str(out)]
    result = runner.invoke(app, [*args, "--exemplars", str(exemplars), "--test", "12", "--seeds", "0,1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"] == 30 and metrics["test"] == 12 and metrics["learning_curve"] == {}
    assert metrics["exemplars_from"] == str(exemplars)
    tested = {i for run in metrics["per_seed"] for i in [run["train"], run["test"]]}
    assert tested == {30, 12}
    spearman = metrics["figures"]["overall"]["delivered"]["spearman"]
    assert spearman > 0.9, "the marks are carried by length: calibration on the file ranks the test essays"
    assert metrics["verdict"]["checks"]["reference-set target: Spearman >= 0.9"] is True
    assert metrics["verdict"]["figures"]["reference-set target: Spearman >= 0.9"] == f"{spearman:.4f}"
    report = (out / "report.md").read_text()
    assert "**30** marked scripts from" in report and "## Learning curve" not in report
    assert f"| reference-set target: Spearman >= 0.9 | {spearman:.4f} | met |" in report
    # A test essay that is also a marked script is refused (the same text under another id).
    leaked = _jsonl(tmp_path / "leaked.jsonl", [*rows[30:], (99, rows[3][1], rows[3][2], 0)], "teacher")
    refused = runner.invoke(app, [*args, "--exemplars", str(leaked), "--test", "12"])
    assert refused.exit_code == 2 and "also marked scripts" in refused.output, refused.output
    broken = tmp_path / "broken.jsonl"
    broken.write_text(exemplars.read_text().replace('"overall": 1', '"overall": 9', 1), encoding="utf-8")
    bad = runner.invoke(app, [*args, "--exemplars", str(broken)])
    assert bad.exit_code == 2 and "broken.jsonl: item teacher-30" in bad.output and "outside 1-6" in bad.output


def test_the_shipped_marked_scripts_for_the_reference_scheme_are_disjoint_from_the_reference_set() -> None:
    from evals.calibration import exemplar_split
    from evals.cli import load_dataset
    from evals.loaders import load_reference

    reference = load_reference()
    path = Path(__file__).parents[1] / "evals" / "data" / "stalin-exemplars.jsonl"
    scripts = load_dataset("jsonl", path, None).items
    assert len(scripts) >= 20 and {s.scheme_id for s in scripts} == {"stalin-power-1929"}
    totals = {s.human_total for s in scripts}
    assert min(totals) == 0 and max(totals) == 15, "the scripts span the whole mark range"
    parts = exemplar_split(scripts, reference.items, test=len(reference.items), seed=0)
    assert len(parts.test) == len(reference.items) == 6


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
    assert {"model", "delivered", "calibrated", "word_count"} <= set(figures)
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
        "--perturbation",
        "padding_off_topic_in_paragraph",
        "--perturbation",
        "repeat_essay",
    ]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    assert "calibration on 50 other items: overall: used" in result.output
    records = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert {r["provenance"]["calibration"]["status"] for r in records if r["status"] == "marked"} == {"calibrated"}
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("padding_off_topic", "padding_off_topic_in_paragraph", "repeat_essay"):
        (padding,) = [row for row in metrics["robustness"] if row["perturbation"] == name]
        assert padding["n"] == 12 and padding["passed"] == 12, padding
    assert json.loads((out / "run.json").read_text())["calibrate_train"] == 50
    too_many = runner.invoke(app, [*args, "--model", "fake:oracle", "--limit", "30", "--calibrate-train", "50"])
    assert too_many.exit_code == 2 and "only 40 items are left" in too_many.output
