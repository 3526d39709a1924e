"""Run the calibration eval over seeds and training sizes; write metrics.json and report.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from evals.calibration import Sampling, evaluate
from evals.dataset import Dataset, EvalItem
from evals.runner import read_records

ROWS = (
    ("human2", "second human (ceiling)"),
    ("word_count", "the sceptic's word count (least squares on log words, rounded, clipped)"),
    ("model", "the model alone (uncalibrated)"),
    ("probe", "the model's expected mark alone (next-token probabilities, rounded)"),
    ("calibrated", "the full calibrator (fitted on the training split, chosen or not)"),
    ("delivered", "**what draftmark delivers** (after its decision)"),
)
REFERENCE_SPEARMAN = 0.9
"""The reference set's target: the calibrated marks rank its essays as we marked them."""
METRICS = ("qwk", "exact", "adjacent", "smd", "spearman", "spearman_beyond_length")


def model_marks(run: Path) -> dict[str, dict[str, int]]:
    """The model's marks per item from an ``eval run`` folder (first repeat, unperturbed, marked)."""
    marks: dict[str, dict[str, int]] = {}
    for record in read_records(run):
        if record["status"] == "marked" and record["repeat"] == 0 and record["perturbation"] is None:
            marks[record["item_id"]] = record["machine"]
    return marks


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return mean(kept) if kept else None


def _average(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure averaged over the seeds' runs."""
    out: dict[str, Any] = {}
    for key in runs[0]["figures"]:
        out[key] = {}
        for system in runs[0]["figures"][key]:
            out[key][system] = {m: _mean([r["figures"][key][system][m] for r in runs]) for m in METRICS}
    return out


def run_calibration_eval(
    dataset: Dataset,
    *,
    train: int,
    test: int,
    seeds: list[int],
    sampling: Sampling,
    llm: dict[str, dict[str, int]] | None,
    curve: list[int],
    out: Path,
    probe: dict[str, dict[str, float]] | None = None,
    probe_kind: str | None = None,
    exemplars: Sequence[EvalItem] | None = None,
    exemplars_from: str | None = None,
) -> dict[str, Any]:
    """Every seed at ``train`` (with ablations), the learning curve at other sizes; written to ``out``.

    ``probe_kind`` names where ``probe`` came from (``levels`` or ``descriptors``) for the report.
    With ``exemplars`` (a teacher's marked scripts, read from ``exemplars_from``) every seed fits on
    all of them and tests on the dataset's essays; there is no learning curve.
    """
    out.mkdir(parents=True, exist_ok=True)
    runs = [
        evaluate(dataset, train=train, test=test, seed=s, sampling=sampling, llm=llm, probe=probe, exemplars=exemplars)
        for s in seeds
    ]
    learning: dict[str, Any] = {}
    for size in [] if exemplars is not None else curve:
        at = (
            runs
            if size == train
            else [
                evaluate(
                    dataset, train=size, test=test, seed=s, sampling=sampling, llm=llm, ablations=False, probe=probe
                )
                for s in seeds
            ]
        )
        averaged = _average(at)
        learning[str(size)] = {key: {s: v["qwk"] for s, v in systems.items()} for key, systems in averaged.items()}
    metrics = {
        "dataset": dataset.name,
        "scheme": runs[0]["scheme"],
        "train": runs[0]["train"],
        "test": runs[0]["test"],
        "exemplars_from": exemplars_from if exemplars is not None else None,
        "seeds": seeds,
        "sampling": sampling,
        "signals": runs[0]["signals"] + (f" ({probe_kind} questions)" if probe and probe_kind else ""),
        "figures": _average(runs),
        "per_seed": runs,
        "learning_curve": learning,
    }
    metrics["verdict"] = verdict(metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (out / "report.md").write_text(render(metrics), encoding="utf-8")
    return metrics


def _primary(metrics: dict[str, Any]) -> str:
    keys = list(metrics["figures"])
    return "total" if "total" in keys else keys[0]


def verdict(metrics: dict[str, Any]) -> dict[str, Any]:
    """The targets for what draftmark delivers (≥ human–human, ≥ word count - 0.01 and + 0.05), and the gate.

    The gate: QWK ≥ 0.70, gap to the humans ≤ 0.10, |SMD| ≤ 0.15.

    ``figures`` holds, per check, the measured figures it compares (unrounded), so a check that
    fails by less than the report's rounding can be seen to.
    """
    figures = metrics["figures"][_primary(metrics)]
    delivered = figures["delivered"]["qwk"]
    human = figures.get("human2", {}).get("qwk")
    words = figures["word_count"]["qwk"]
    smd = figures["delivered"]["smd"]
    # (check, result, the figures it compared): None where a figure is missing.
    rows: list[tuple[str, bool | None, str]] = [
        (
            "delivered >= human-human",
            None if human is None else delivered >= human,
            "–" if human is None else f"{delivered:.4f} vs {human:.4f}",
        ),
        ("delivered >= word count - 0.01", delivered >= words - 0.01, f"{delivered:.4f} vs {words - 0.01:.4f}"),
        ("delivered >= word count + 0.05", delivered >= words + 0.05, f"{delivered:.4f} vs {words + 0.05:.4f}"),
        ("gate: QWK >= 0.70", delivered >= 0.70, f"{delivered:.4f}"),
        (
            "gate: human-human - delivered <= 0.10",
            None if human is None else human - delivered <= 0.10,
            "–" if human is None else f"{human - delivered:.4f}",
        ),
        ("gate: |SMD| <= 0.15", None if smd is None else abs(smd) <= 0.15, "–" if smd is None else f"{abs(smd):.4f}"),
    ]
    if metrics.get("exemplars_from"):
        spearman = figures["delivered"]["spearman"]
        rows.append(
            (
                f"reference-set target: Spearman >= {REFERENCE_SPEARMAN}",
                None if spearman is None else spearman >= REFERENCE_SPEARMAN,
                "–" if spearman is None else f"{spearman:.4f}",
            )
        )
    checks = {name: ok for name, ok, _ in rows}
    shown = {name: figure for name, _, figure in rows}
    return {"primary": _primary(metrics), "checks": checks, "figures": shown}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "met" if value else "**not met**"
    return f"{value:.3f}"


def render(metrics: dict[str, Any]) -> str:
    """The readable report."""
    if metrics.get("exemplars_from"):
        design = (
            f"Training: **{metrics['train']}** marked scripts from `{metrics['exemplars_from']}` (every seed fits on "
            f"all of them; seeds {metrics['seeds']} change only the cross-validation folds); test: "
            f"**{metrics['test']}** essays of {metrics['dataset']}, none of them among the training scripts. "
            "No learning curve: the training scripts are a fixed file."
        )
    else:
        design = (
            f"Training split: **{metrics['train']}** scripts; test: **{metrics['test']}** other essays, "
            f"{metrics['sampling']} sample (a random sample gives population-like kappas; a stratified one runs "
            f"higher); seeds {metrics['seeds']} (figures are means over seeds)."
        )
    lines = [
        f"# Calibration eval: {metrics['dataset']} ({metrics['scheme']})",
        "",
        f"{design} Signals: {metrics['signals']}. "
        "Agreement is with the first human's marks. No test essay is ever in the training split.",
        "",
        "## Verdict (primary score: " + metrics["verdict"]["primary"] + ")",
        "",
        "| check | measured | result |",
        "|---|---|---|",
    ]
    shown = metrics["verdict"].get("figures", {})
    lines += [f"| {name} | {shown.get(name, '–')} | {_fmt(ok)} |" for name, ok in metrics["verdict"]["checks"].items()]
    for key, systems in metrics["figures"].items():
        lines += ["", f"## {key}", "", "| marker | QWK | exact | adjacent | SMD | Spearman | Spearman beyond length |"]
        lines.append("|---|---|---|---|---|---|---|")
        for system, label in ROWS:
            if system in systems:
                row = systems[system]
                lines.append(f"| {label} | " + " | ".join(_fmt(row[m]) for m in METRICS) + " |")
    primary = metrics["verdict"]["primary"]
    if metrics["learning_curve"]:
        lines += ["", "## Learning curve (test QWK, mean over seeds)", ""]
        lines += [
            "| training scripts | delivered | full calibrator | word count | model alone | second human |",
            "|---|---|---|---|---|---|",
        ]
    for size, keys in metrics["learning_curve"].items():
        row = keys[primary]
        lines.append(
            f"| {size} | {_fmt(row.get('delivered'))} | {_fmt(row.get('calibrated'))} | "
            f"{_fmt(row.get('word_count'))} | {_fmt(row.get('model'))} | {_fmt(row.get('human2'))} |"
        )
    ablation = [r.get("ablation", {}) for r in metrics["per_seed"]]
    if ablation and ablation[0]:
        lines += ["", "## Ablation (test QWK of the calibrated predictions without each signal group)", ""]
        objectives = list(next(iter(ablation[0].values())))
        lines += ["| without | " + " | ".join(objectives) + " |", "|---|" + "---|" * len(objectives)]
        full = {o: _mean([r["figures"][o]["calibrated"]["qwk"] for r in metrics["per_seed"]]) for o in objectives}
        lines.append("| (nothing) | " + " | ".join(_fmt(full[o]) for o in objectives) + " |")
        for group in ablation[0]:
            values = [_fmt(_mean([a[group][o] for a in ablation])) for o in objectives]
            lines.append(f"| {group} | " + " | ".join(values) + " |")
    lines += ["", "## Selection on the training split (what draftmark would decide with these scripts)", ""]
    for run in metrics["per_seed"]:
        for ao_id, chosen in run["selection"].items():
            decision = chosen.get("delivered") or ("used" if chosen["used"] else "not used")
            lines.append(f"- seed {run['seed']}, {ao_id}: delivers {decision}: {chosen['reason']}")
    lines += [
        "",
        "Reproduce: `draftmark eval calibrate --dataset ... "
        + ("--exemplars FILE --test M" if metrics.get("exemplars_from") else "--train N --test M")
        + " --seeds ... --out DIR` (see evals/README.md).",
        "",
    ]
    return "\n".join(lines)
