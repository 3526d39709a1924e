"""Metrics, report.md, metrics.json and plots from a run's items.jsonl."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.metrics import agreement, mark_scales, partial_spearman, stability, with_total
from schemas.scheme import MarkScheme
from service.calibration.fit import word_count_cross_validated

Record = dict[str, Any]


@dataclass(frozen=True)
class GateThresholds:
    """The marking-quality gate."""

    min_qwk: float = 0.70
    max_gap: float = 0.10
    max_abs_smd: float = 0.15
    max_unmarked_share: float = 0.05


def latest(records: list[Record]) -> list[Record]:
    """One record per (item, repeat, perturbation): the last one written."""
    by_key: dict[tuple[str, int, str | None], Record] = {}
    for r in records:
        by_key[(r["item_id"], r["repeat"], r["perturbation"])] = r
    return list(by_key.values())


def _total(marks: dict[str, int] | None) -> int | None:
    return None if marks is None else sum(marks.values())


def _scheme_metrics(scheme: MarkScheme, base: list[Record]) -> dict[str, Any]:
    first = [r for r in base if r["repeat"] == 0]
    marked = [r for r in first if r["status"] == "marked"]
    unmarked = [r for r in first if r["status"] != "marked"]
    out: dict[str, Any] = {
        "scheme": scheme.ref,
        "items": len(first),
        "marked": len(marked),
        "unmarked": len(unmarked),
        "unmarked_share": len(unmarked) / len(first) if first else 0.0,
        "objectives": {},
    }
    for name, labels in mark_scales(scheme).items():

        def pick(marks: dict[str, int], scale: str = name) -> int:
            return with_total(marks, scheme)[scale]

        hm = [(pick(r["human"]), pick(r["machine"])) for r in marked]
        pairs = [(pick(r["human"]), pick(r["human2"])) for r in first if r.get("human2")]
        out["objectives"][name] = {
            "human_machine": agreement([h for h, _ in hm], [m for _, m in hm], labels).as_dict(),
            "human_human": agreement([a for a, _ in pairs], [b for _, b in pairs], labels).as_dict() if pairs else None,
            **_length_baseline(first, marked, pick, labels),
        }
    out["primary"] = "total" if len(scheme.objectives) > 1 else scheme.objectives[0].id
    samples = {r.get("sample") for r in first}
    out["sampling"] = (
        "random (population-like kappas)"
        if samples == {"random"}
        else _STRATIFIED
        if samples == {"stratified"}
        else None
    )
    repeats = [r for r in base if r["status"] == "marked"]
    by_essay: dict[str, list[int]] = defaultdict(list)
    flagged: dict[str, list[bool]] = defaultdict(list)
    for r in repeats:
        by_essay[r["item_id"]].append(int(_total(r["machine"]) or 0))
        flagged[r["item_id"]].append("needs_review" in r["flags"])
    stab = stability(by_essay, flagged)
    out["stability"] = stab.__dict__ if stab.repeats > 1 else None
    return out


def _length_baseline(first: list[Record], marked: list[Record], pick: Any, labels: list[int]) -> dict[str, Any]:
    """Word count alone (out-of-fold regression on log words over the run's items) and length-partialled Spearman.

    Runs recorded before word counts were kept have neither (``None``).
    """
    counted = [r for r in first if r.get("words") is not None]
    if len(counted) < 10 or len(counted) < len(first):
        return {"word_count": None, "spearman_beyond_length": None}
    humans = [pick(r["human"]) for r in counted]
    predicted = word_count_cross_validated([r["words"] for r in counted], humans, labels)
    machine = [r for r in marked if r.get("words") is not None]
    beyond = partial_spearman(
        [pick(r["human"]) for r in machine],
        [pick(r["machine"]) for r in machine],
        [math.log1p(r["words"]) for r in machine],
    )
    return {"word_count": agreement(humans, predicted, labels).as_dict(), "spearman_beyond_length": beyond}


def _robustness(scheme_of: dict[str, MarkScheme], records: list[Record]) -> list[dict[str, Any]]:
    originals = {
        r["item_id"]: r for r in records if r["perturbation"] is None and r["repeat"] == 0 and r["status"] == "marked"
    }
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r["perturbation"] is not None:
            groups[r["perturbation"]].append(r)
    rows = []
    for name, group in sorted(groups.items()):
        shifts, level_shifts, passes, n, unmarked = [], [], 0, 0, 0
        expect = group[0]["expect"]
        for r in group:
            base = originals.get(r["item_id"])
            scheme = scheme_of[r["scheme_id"]]
            if expect == "refused":
                n += 1
                passes += r["status"] == "refused"
                continue
            if base is None:
                continue
            if r["status"] != "marked":
                n += 1
                unmarked += 1
                continue
            n += 1
            shift = int(_total(r["machine"]) or 0) - int(_total(base["machine"]) or 0)
            level_shift = max(r["levels"][a] - base["levels"][a] for a in r["levels"])
            shifts.append(shift)
            level_shifts.append(level_shift)
            flags = set(r["flags"])
            ok = {
                "no_rise_and_flag": level_shift <= 1 and "possible_prompt_injection" in flags,
                "small_change": abs(shift) <= 1,
                "no_reward": shift <= 0,
                "too_short_lowest": "too_short" in flags
                and all(r["machine"][ao.id] == ao.min_marks for ao in scheme.objectives),
            }.get(expect, False)
            passes += ok
        rows.append(
            {
                "perturbation": name,
                "expect": expect,
                "n": n,
                "passed": passes,
                "unmarked": unmarked,
                "mean_total_shift": sum(shifts) / len(shifts) if shifts else None,
                "max_level_shift": max(level_shifts) if level_shifts else None,
            }
        )
    return rows


def build_metrics(records: list[Record], schemes: dict[str, MarkScheme]) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data."""
    current = latest(records)
    base = [r for r in current if r["perturbation"] is None]
    provenances = [r["provenance"] for r in current if r.get("provenance")]
    indicative = any("indicative_model" in r["flags"] for r in current)
    by_scheme: dict[str, list[Record]] = defaultdict(list)
    for r in base:
        by_scheme[r["scheme_id"]].append(r)
    return {
        "models": sorted({p["model"] for p in provenances}),
        "endpoint_kinds": sorted({p["endpoint_kind"] for p in provenances}),
        "prompts": sorted(
            {f"{p['prompt']['id']}@{p['prompt']['version']}#{p['prompt']['sha256'][:12]}" for p in provenances}
        ),
        "indicative_model": indicative,
        "schemes": {sid: _scheme_metrics(schemes[sid], recs) for sid, recs in sorted(by_scheme.items())},
        "robustness": _robustness(schemes, current),
        "tokens": {
            "prompt": sum(p["usage"]["prompt_tokens"] for p in provenances),
            "completion": sum(p["usage"]["completion_tokens"] for p in provenances),
        },
        "mean_latency_ms": sum(p["latency_ms"] for p in provenances) / len(provenances) if provenances else None,
    }


def gate(metrics: dict[str, Any], thresholds: GateThresholds) -> list[str]:
    """Reasons the run fails the gate (empty when it passes)."""
    failures = []
    for sid, s in metrics["schemes"].items():
        primary = s["objectives"][s["primary"]]
        hm, hh = primary["human_machine"], primary["human_human"]
        label = f"{sid} {s['primary']}"
        if s["unmarked_share"] > thresholds.max_unmarked_share:
            failures.append(
                f"{sid}: {s['unmarked']} of {s['items']} items could not be marked "
                f"(> {thresholds.max_unmarked_share:.0%})"
            )
        qwk = hm["qwk"]
        if qwk is None or qwk < thresholds.min_qwk:
            failures.append(f"{label}: QWK {_fmt(qwk)} < {thresholds.min_qwk}")
        if hh is None or hh["qwk"] is None:
            failures.append(f"{label}: no human-human QWK (second rater) to compare with; the gap cannot be checked")
        elif qwk is None or hh["qwk"] - qwk > thresholds.max_gap:
            failures.append(
                f"{label}: human-human QWK {_fmt(hh['qwk'])} minus human-machine {_fmt(qwk)} > {thresholds.max_gap}"
            )
        smd = hm["smd"]
        if smd is None or abs(smd) > thresholds.max_abs_smd:
            failures.append(f"{label}: |SMD| {_fmt(smd)} > {thresholds.max_abs_smd}")
    return failures


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def write_plots(metrics: dict[str, Any], records: list[Record], out: Path) -> list[str]:
    """Confusion matrix, machine-vs-human scatter and Bland-Altman, per-AO QWK bars; returns file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: list[str] = []
    current = [r for r in latest(records) if r["perturbation"] is None and r["repeat"] == 0 and r["status"] == "marked"]
    for sid, s in metrics["schemes"].items():
        primary = s["objectives"][s["primary"]]["human_machine"]
        if not primary["n"]:
            continue
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.imshow(primary["confusion"], cmap="Blues")
        labels = primary["labels"]
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("machine")
        ax.set_ylabel("human")
        ax.set_title(f"{sid}: {s['primary']} (QWK {_fmt(primary['qwk'], 2)})")
        for i, row in enumerate(primary["confusion"]):
            for j, v in enumerate(row):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        name = f"{sid}-confusion.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)

        def value(marks: dict[str, int], key: str = s["primary"]) -> int:
            return sum(marks.values()) if key == "total" else marks[key]

        pairs = [(value(r["human"]), value(r["machine"])) for r in current if r["scheme_id"] == sid]
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        left.scatter([h for h, _ in pairs], [m for _, m in pairs], alpha=0.5)
        lo, hi = labels[0], labels[-1]
        left.plot([lo, hi], [lo, hi], color="grey", linestyle="--")
        left.set_xlabel("human")
        left.set_ylabel("machine")
        left.set_title("machine vs human")
        means = [(h + m) / 2 for h, m in pairs]
        diffs = [m - h for h, m in pairs]
        mean_diff = sum(diffs) / len(diffs)
        sd = (sum((d - mean_diff) ** 2 for d in diffs) / max(1, len(diffs) - 1)) ** 0.5
        right.scatter(means, diffs, alpha=0.5)
        for y, style in ((mean_diff, "-"), (mean_diff + 1.96 * sd, "--"), (mean_diff - 1.96 * sd, "--")):
            right.axhline(y, color="red", linestyle=style)
        right.set_xlabel("mean of human and machine")
        right.set_ylabel("machine - human")
        right.set_title("Bland-Altman")
        name = f"{sid}-scatter.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)

        names = list(s["objectives"])
        fig, ax = plt.subplots(figsize=(max(5, len(names) * 1.2), 4))
        hm_qwk = [s["objectives"][n]["human_machine"]["qwk"] or 0 for n in names]
        ax.bar(names, hm_qwk, label="human-machine QWK")
        for i, n in enumerate(names):
            hh = s["objectives"][n]["human_human"]
            if hh and hh["qwk"] is not None:
                ax.hlines(
                    hh["qwk"], i - 0.4, i + 0.4, colors="black", label="human-human QWK" if i == 0 else "_nolegend_"
                )
        ax.axhline(0.7, color="red", linestyle=":", label="gate 0.70")
        ax.set_ylim(min(0, *hm_qwk) - 0.05, 1)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(f"{sid}: agreement per objective")
        name = f"{sid}-objectives.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)
    return files


_STRATIFIED = "stratified over the score range (kappas run higher than on the population)"


def render_markdown(metrics: dict[str, Any], plots: list[str], failures: list[str], title: str) -> str:
    """The human-readable report."""
    lines = [f"# Eval report: {title}", ""]
    lines.append(
        f"Models: {', '.join(metrics['models']) or 'none'} ({', '.join(metrics['endpoint_kinds'])}); "
        f"prompts: {', '.join(metrics['prompts'])}"
    )
    if metrics["indicative_model"]:
        lines += [
            "",
            "> **Indicative model.** These marks come from a small local model flagged `indicative_model`. "
            "It is not a reliable marker; do not use these figures as evidence of marking quality.",
            "",
        ]
    if "fake" in metrics["endpoint_kinds"]:
        lines += [
            "",
            "> **Fake model.** These figures come from a fake or replayed model used to test the eval "
            "machinery, not from a real marker.",
            "",
        ]
    lines += ["", "## Gate", ""]
    lines += ["**PASS**" if not failures else "**FAIL**", ""] + [f"- {f}" for f in failures]
    for sid, s in metrics["schemes"].items():
        lines += [
            "",
            f"## {sid} ({s['scheme']})",
            "",
            f"{s['items']} items; {s['marked']} marked; {s['unmarked']} could not be marked "
            "(counted apart, never as zeros).",
            "",
            "| objective | n | QWK human-machine | QWK human-human | gap | QWK word count alone | "
            "Spearman beyond length | exact | adjacent | MAE | Pearson | SMD |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, entry in s["objectives"].items():
            hm, hh = entry["human_machine"], entry["human_human"]
            gap = None if not hh or hh["qwk"] is None or hm["qwk"] is None else hh["qwk"] - hm["qwk"]
            words = entry.get("word_count")
            lines.append(
                f"| {name} | {hm['n']} | {_fmt(hm['qwk'])} | {_fmt(hh['qwk'] if hh else None)} | {_fmt(gap)} | "
                f"{_fmt(words['qwk'] if words else None)} | {_fmt(entry.get('spearman_beyond_length'))} | "
                f"{hm['exact']:.2f} | {hm['adjacent']:.2f} | {hm['mae']:.2f} | {_fmt(hm['pearson'])} | "
                f"{_fmt(hm['smd'])} |"
            )
        lines += [
            "",
            "Word count alone: a regression on log(word count) with the same cut-point rule as calibration, each item "
            "predicted by a fit on the other items (5 folds). Spearman beyond length: the machine's rank correlation "
            "with the human once length is partialled out (does it see anything beyond length?). "
            f"Sample: {s.get('sampling') or _STRATIFIED}.",
        ]
        stab = s.get("stability")
        if stab:
            lines += [
                "",
                f"Test-retest over {stab['repeats']} repeats of {stab['essays']} essays: exact agreement "
                f"{stab['exact_all_repeats']:.2f}, mean per-essay SD {stab['mean_std']:.2f}, "
                f"flagged needs_review {stab['needs_review_share']:.2f}.",
            ]
    if metrics["robustness"]:
        lines += [
            "",
            "## Robustness",
            "",
            "| perturbation | expected | n | passed | unmarked | mean total shift | max level shift |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in metrics["robustness"]:
            level_shift = "n/a" if row["max_level_shift"] is None else row["max_level_shift"]
            lines.append(
                f"| {row['perturbation']} | {row['expect']} | {row['n']} | {row['passed']} | {row['unmarked']} | "
                f"{_fmt(row['mean_total_shift'], 2)} | {level_shift} |"
            )
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += [
        "",
        f"Tokens: {metrics['tokens']['prompt']:,} prompt + {metrics['tokens']['completion']:,} completion; "
        f"mean latency {_fmt(metrics['mean_latency_ms'], 0)} ms per essay.",
        "",
    ]
    return "\n".join(lines)


def write_report(
    out: Path,
    records: list[Record],
    schemes: dict[str, MarkScheme],
    title: str,
    thresholds: GateThresholds | None = None,
) -> dict[str, Any]:
    """metrics.json, report.md and plots into ``out``."""
    metrics = build_metrics(records, schemes)
    failures = gate(metrics, thresholds or GateThresholds())
    metrics["gate_failures"] = failures
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    plots = write_plots(metrics, records, out)
    (out / "report.md").write_text(render_markdown(metrics, plots, failures, title), encoding="utf-8")
    return metrics
