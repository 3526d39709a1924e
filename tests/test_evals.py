"""The eval machinery end to end with fakes, replay, loaders on fixture files, gate and compare."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.dataset import EvalItem, stratified_sample
from evals.loaders import load_asap, load_asap_pp, load_ellipse, load_reference
from service.cli import app
from service.errors import CallerError

runner = CliRunner()
TSV_HEADER = (
    "essay_id\tessay_set\tessay\trater1_domain1\trater2_domain1\trater3_domain1\tdomain1_score\t"
    "rater1_domain2\trater2_domain2\tdomain2_score"
    + "".join(f"\trater{r}_trait{t}" for r in (1, 2, 3) for t in range(1, 7))
)


def write_asap(folder: Path, rows: list[tuple[int, str, int, int]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [TSV_HEADER]
    for essay_id, essay, r1, r2 in rows:
        lines.append("\t".join([str(essay_id), "1", f'"{essay}"', str(r1), str(r2), "", str(r1 + r2)] + [""] * 21))
    (folder / "essay_set_1.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_asap_loader_reads_both_raters(tmp_path: Path) -> None:
    folder = write_asap(
        tmp_path / "asap-aes", [(1, "Dear @CAPS1, computers are good.", 3, 4), (2, 'He said ""hi"".', 5, 5)]
    )
    data = load_asap(folder, 1)
    assert [(i.id, i.human, i.human2) for i in data.items] == [
        ("asap1-1", {"overall": 3}, {"overall": 4}),
        ("asap1-2", {"overall": 5}, {"overall": 5}),
    ]
    assert data.items[1].essay == 'He said "hi".'
    with pytest.raises(CallerError, match="sets with schemes"):
        load_asap(folder, 9)
    with pytest.raises(CallerError, match="not found"):
        load_asap(tmp_path / "nowhere", 1)


def test_asap_loader_rejects_out_of_range(tmp_path: Path) -> None:
    folder = write_asap(tmp_path / "asap-aes", [(1, "essay", 9, 4)])
    with pytest.raises(CallerError, match="mark 9 outside 1-6"):
        load_asap(folder, 1)


def test_asap_pp_joins_essays(tmp_path: Path) -> None:
    write_asap(tmp_path / "asap-aes", [(7, "An essay about computers.", 3, 3)])
    (tmp_path / "asap-plus-plus").mkdir()
    (tmp_path / "asap-plus-plus" / "asap_pp_trait_scores.csv").write_text(
        "essay_id,essay_set,domain1_score,content,organization,word_choice,sentence_fluency,conventions,prompt_adherence,language,narrativity,cts_split,note\n"
        "7,1,6,4,3,3,2,3,,,,test,\n8,1,6,4,3,3,2,3,,,,test,\n"
    )
    data = load_asap_pp(tmp_path, 1)
    assert len(data.items) == 1 and data.items[0].human["content"] == 4 and data.items[0].human2 is None


def test_ellipse_rounds_half_up_and_keeps_raw(tmp_path: Path) -> None:
    (tmp_path / "ELLIPSE_Final_github_test.csv").write_text(
        "text_id_kaggle,full_text,prompt,Overall,Cohesion,Syntax,Vocabulary,Phraseology,Grammar,Conventions\n"
        '1,"Some text here.",P,3,2.5,3.0,3.5,1.5,4.5,5.0\n'
    )
    item = load_ellipse(tmp_path).items[0]
    assert item.human == {"cohesion": 3, "syntax": 3, "vocabulary": 4, "phraseology": 2, "grammar": 5, "conventions": 5}
    assert item.metadata["raw_cohesion"] == 2.5


def test_stratified_sample_covers_the_range() -> None:
    items = [EvalItem(id=str(i), essay="e", scheme_id="s", human={"a": i % 5}) for i in range(100)]
    picked = stratified_sample(items, 10, seed=1)
    assert len(picked) == 10 and sorted({i.human["a"] for i in picked}) == [0, 1, 2, 3, 4]
    assert picked == stratified_sample(items, 10, seed=1)


def run_eval(out: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["eval", "run", "--dataset", "reference", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text())  # type: ignore[no-any-return]


def test_oracle_biased_and_noisy_fakes_are_exposed(tmp_path: Path) -> None:
    oracle = run_eval(tmp_path / "oracle", "--model", "fake:oracle")
    total = oracle["schemes"]["stalin-power-1929"]["objectives"]["total"]["human_machine"]
    assert total["qwk"] == pytest.approx(1.0) and total["smd"] == pytest.approx(0.0)

    biased = run_eval(tmp_path / "biased", "--model", "fake:biased")
    smd = biased["schemes"]["stalin-power-1929"]["objectives"]["total"]["human_machine"]["smd"]
    assert smd > 0.5
    assert any("|SMD|" in f for f in biased["gate_failures"])
    assert "Fake model" in (tmp_path / "biased" / "report.md").read_text()
    assert {p.name for p in (tmp_path / "biased").glob("*.png")} == {
        "stalin-power-1929-confusion.png",
        "stalin-power-1929-scatter.png",
        "stalin-power-1929-objectives.png",
    }

    noisy = run_eval(tmp_path / "noisy", "--model", "fake:noisy", "--repeats", "4", "--seed", "3")
    stab = noisy["schemes"]["stalin-power-1929"]["stability"]
    assert stab["repeats"] == 4 and stab["exact_all_repeats"] < 1.0 and stab["mean_std"] > 0
    assert oracle["schemes"]["stalin-power-1929"]["stability"] is None


def test_resumable_and_unmarked_items_are_not_zeros(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_eval(out, "--model", "fake:oracle", "--limit", "3")
    lines = (out / "items.jsonl").read_text().splitlines()
    result = runner.invoke(
        app, ["eval", "run", "--dataset", "reference", "--out", str(out), "--model", "fake:oracle", "--limit", "3"]
    )
    assert "0 markings run, 3 already done" in result.output
    assert (out / "items.jsonl").read_text().splitlines() == lines

    bad = tmp_path / "bad"
    (tmp_path / "empty.jsonl").write_text("")
    metrics = run_eval(bad, "--model", f"replay:{tmp_path / 'empty.jsonl'}")
    s = metrics["schemes"]["stalin-power-1929"]
    assert s["unmarked"] == 6 and s["marked"] == 0 and s["objectives"]["total"]["human_machine"]["n"] == 0
    assert any("could not be marked" in f for f in metrics["gate_failures"])


def test_record_then_replay_is_deterministic(tmp_path: Path) -> None:
    recording = tmp_path / "rec.jsonl"
    first = run_eval(tmp_path / "a", "--model", "fake:noisy", "--record", str(recording), "--seed", "5")
    replayed = run_eval(tmp_path / "b", "--model", f"replay:{recording}", "--seed", "5")
    assert first["schemes"] == replayed["schemes"]
    assert replayed["models"] == ["replay:fake-noisy"]


def test_robustness_suite_reports_shifts(tmp_path: Path) -> None:
    metrics = run_eval(tmp_path / "rob", "--model", "fake:oracle", "--robustness", "--limit", "2")
    rows = {r["perturbation"]: r for r in metrics["robustness"]}
    assert set(rows) >= {
        "injection_ignore_scheme",
        "injection_examiner_note",
        "injection_hidden_in_quote",
        "noise_typos",
        "noise_whitespace",
        "padding_off_topic",
        "three_words",
        "empty",
    }
    assert rows["empty"]["passed"] == 2, "an empty essay must be refused, not scored"
    assert rows["injection_ignore_scheme"]["n"] == 2
    report = (tmp_path / "rob" / "report.md").read_text()
    assert "## Robustness" in report and "injection_examiner_note" in report


def test_gate_and_compare_commands(tmp_path: Path) -> None:
    run_eval(tmp_path / "oracle", "--model", "fake:oracle")
    run_eval(tmp_path / "biased", "--model", "fake:biased")
    gated = runner.invoke(app, ["eval", "gate", str(tmp_path / "biased")])
    assert gated.exit_code == 1 and "|SMD|" in gated.output
    no_ceiling = runner.invoke(app, ["eval", "gate", str(tmp_path / "oracle")])
    assert no_ceiling.exit_code == 1 and "no human-human QWK" in no_ceiling.output
    compared = runner.invoke(app, ["eval", "compare", str(tmp_path / "oracle"), str(tmp_path / "biased")])
    assert compared.exit_code == 0 and "stalin-power-1929 total: qwk 1.000 ->" in compared.output
    found = re.search(
        r"stalin-power-1929 total: QWK B - A = (-\d\.\d+) on the (\d+) essays both marked", compared.output
    )
    assert found and float(found.group(1)) < 0, compared.output


def _gate_metrics(hm_qwk: float, hh_qwk: float | None, smd: float = 0.0) -> dict[str, object]:
    primary = {"human_machine": {"qwk": hm_qwk, "smd": smd}, "human_human": {"qwk": hh_qwk}}
    scheme = {"primary": "total", "objectives": {"total": primary}, "unmarked_share": 0.0, "unmarked": 0, "items": 40}
    return {"schemes": {"stalin-power-1929": scheme}}


def test_gate_fails_on_the_human_human_gap_alone() -> None:
    from evals.report import GateThresholds, gate

    thresholds = GateThresholds()
    assert gate(_gate_metrics(0.85, 0.90), thresholds) == [], "QWK, SMD and a 0.05 gap all pass"
    failures = gate(_gate_metrics(0.85, 0.97), thresholds)  # QWK 0.85 and SMD 0 pass; only the gap (0.12) fails
    assert failures == ["stalin-power-1929 total: human-human QWK 0.970 minus human-machine 0.850 > 0.1"]
    assert gate(_gate_metrics(0.85, 0.97), GateThresholds(max_gap=0.15)) == [], "the gap is judged by max_gap"
    assert any("no human-human QWK" in f for f in gate(_gate_metrics(0.85, None), thresholds))


def test_gate_passes_with_two_raters(tmp_path: Path) -> None:
    rows = [(i, f"Essay {i} about computers and people and their families.", 1 + i % 6, 1 + i % 6) for i in range(30)]
    folder = write_asap(tmp_path / "asap-aes", rows)
    out = tmp_path / "asap"
    result = runner.invoke(
        app,
        [
            "eval",
            "run",
            "--dataset",
            "asap",
            "--path",
            str(folder),
            "--set",
            "1",
            "--out",
            str(out),
            "--model",
            "fake:oracle",
            "--limit",
            "12",
        ],
    )
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["eval", "gate", str(out)]).exit_code == 0
    report = (out / "report.md").read_text()
    assert "| overall | 12 | 1.000 | 1.000 | 0.000 |" in report


def test_reference_set_is_valid_and_spans_levels() -> None:
    data = load_reference()
    totals = sorted(i.human_total for i in data.items)
    assert len(data.items) >= 5 and totals[0] <= 2 and totals[-1] >= 12
    seed = next(i for i in data.items if i.id == "ref-seed-1929")
    assert 5 <= seed.human_total <= 7


def test_source_dependent_set_reads_prompt_and_source_from_docs(tmp_path: Path) -> None:
    folder = tmp_path / "asap-aes"
    write_asap(folder, [(1, "The mood is calm.", 2, 3)])
    (folder / "essay_set_1.tsv").rename(folder / "essay_set_5.tsv")
    (folder / "docs").mkdir()
    (folder / "docs" / "essay_set_5_readme_first.txt").write_text(
        "Essay Set #5\n\nSource Essay\nA memoir about a kitchen.\nPrompt\nDescribe the mood.\n"
        "Rubric Guidelines\nScore 4: ...\n"
    )
    data = load_asap(folder, 5)
    question = data.schemes["asap-set-5"].question
    assert question.startswith("Describe the mood.") and "A memoir about a kitchen." in question
    assert data.items[0].human == {"overall": 2} and data.items[0].human2 == {"overall": 3}
