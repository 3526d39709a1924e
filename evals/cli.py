"""``draftmark eval ...``: run, report, gate and compare agreement evals."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from evals.dataset import Dataset, EvalItem, load_jsonl, random_sample, stratified_sample
from evals.fakes import fake_marker
from evals.loaders import eval_schemes, load_asap, load_asap_pp, load_ellipse, load_reference
from evals.replay import RecordingLLM, ReplayLLM
from evals.report import GateThresholds, gate, write_report
from evals.robustness import by_name
from evals.runner import plan, read_records, run_dataset
from schemas.calibration import Calibrator
from service.errors import CallerError, DraftmarkError
from service.llm.factory import build_llm
from service.llm.port import LLM
from service.schemes import load_scheme_file
from service.settings import Settings

eval_app = typer.Typer(help="Agreement evals against human-marked essays.", no_args_is_help=True)
err = Console(stderr=True)
DatasetKind = Literal["asap", "asap-pp", "ellipse", "reference", "jsonl"]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


SchemeFile = Annotated[
    Path | None,
    typer.Option(
        "--scheme",
        help="A scheme file (YAML/JSON) for a JSONL dataset whose items name it by id: your own scheme, "
        "beside the built-in ones.",
    ),
]


def load_dataset(
    kind: DatasetKind, path: Path | None, essay_set: int | None, scheme_file: Path | None = None
) -> Dataset:
    """The named dataset (reading corpora from ``path``); ``scheme_file`` adds a scheme for JSONL datasets."""
    if scheme_file is not None and kind != "jsonl":
        raise CallerError(f"--scheme is for --dataset jsonl; {kind} brings its own schemes")
    if kind == "reference":
        return load_reference()
    if path is None:
        raise CallerError(f"--path is required for --dataset {kind}")
    if kind == "asap":
        return load_asap(path, essay_set or 1)
    if kind == "asap-pp":
        return load_asap_pp(path, essay_set or 1)
    if kind == "ellipse":
        return load_ellipse(path)
    schemes = {s.id: s for s in eval_schemes().list()}
    if scheme_file is not None:
        own = load_scheme_file(scheme_file)
        schemes[own.id] = own
    return load_jsonl(path, schemes)


def choose_model(spec: str, dataset: Dataset, settings: Settings, seed: int) -> LLM:
    """The backend for a run: ``auto`` (as ``draftmark mark``), ``fake:oracle|biased|noisy`` or ``replay:FILE``."""
    if spec == "auto":
        return build_llm(settings)
    kind, _, arg = spec.partition(":")
    if kind == "fake" and arg in ("oracle", "biased", "noisy"):
        return fake_marker(dataset, arg, seed)  # type: ignore[arg-type]
    if kind == "replay" and arg:
        return ReplayLLM(Path(arg))
    raise CallerError(f"--model must be auto, fake:oracle, fake:biased, fake:noisy or replay:FILE; got {spec!r}")


@eval_app.command("run")
def run(
    dataset: Annotated[DatasetKind, typer.Option(help="Which corpus.")],
    out: Annotated[Path, typer.Option(help="Run folder (re-running it resumes).")],
    path: Annotated[Path | None, typer.Option(help="Folder (or JSONL file) holding the corpus.")] = None,
    essay_set: Annotated[int | None, typer.Option("--set", help="ASAP / ASAP++ essay set.")] = None,
    limit: Annotated[int | None, typer.Option(help="Sample this many items.")] = None,
    sample: Annotated[
        Literal["random", "stratified"],
        typer.Option(help="random (population-like kappas) or stratified over the score range (kappas run higher)."),
    ] = "stratified",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    repeats: Annotated[int, typer.Option(min=1, max=10, help="Mark each essay this many times (test-retest).")] = 1,
    robustness: Annotated[bool, typer.Option(help="Also run every perturbation once per item.")] = False,
    perturbation: Annotated[
        list[str] | None, typer.Option(help="Perturbations: basic, hostile (the injection corpus) or single names.")
    ] = None,
    model: Annotated[str, typer.Option(help="auto | fake:oracle | fake:biased | fake:noisy | replay:FILE")] = "auto",
    record: Annotated[Path | None, typer.Option(help="Record every completion to this JSONL for replay.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 4,
    calibrate_train: Annotated[
        int | None,
        typer.Option(
            help="Fit calibration (text signals) on this many other items and mark through it: the report and the "
            "robustness suite then measure the calibrated system."
        ),
    ] = None,
    scheme_file: SchemeFile = None,
) -> None:
    """Mark a (sampled) dataset with the production pipeline and write report.md, metrics.json, items.jsonl, plots."""
    try:
        settings = Settings()
        data = load_dataset(dataset, path, essay_set, scheme_file)
        items = [
            i.model_copy(update={"metadata": i.metadata | {"sample": sample}})
            for i in (stratified_sample if sample == "stratified" else random_sample)(data.items, limit, seed)
        ]
        perturbations = by_name(perturbation) if (robustness or perturbation) else []
        llm = choose_model(model, data, settings, seed)
        if record is not None:
            llm = RecordingLLM(llm, record)
        tasks = plan(items, repeats=repeats, perturbations=perturbations)
        calibrator = _eval_calibrator(data, items, calibrate_train, seed) if calibrate_train else None
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(
            json.dumps(
                {
                    "dataset": data.name,
                    "limit": limit,
                    "sample": sample,
                    "seed": seed,
                    "repeats": repeats,
                    "calibrate_train": calibrate_train,
                    "perturbations": [p.name for p in perturbations],
                    "model": model,
                }
            )
        )
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        ) as bar:
            task_id = bar.add_task(f"marking {data.name} with {llm.model_id}", total=None)
            ran = asyncio.run(
                run_dataset(
                    data,
                    tasks,
                    llm=llm,
                    settings=settings,
                    out=out,
                    concurrency=concurrency,
                    seed=seed,
                    progress=lambda done, total: bar.update(task_id, completed=done, total=total),
                    calibrator=calibrator,
                )
            )
        err.print(f"{ran} markings run, {len(tasks) - ran} already done")
        metrics = write_report(out, read_records(out), data.schemes, title=f"{data.name} ({llm.model_id})")
    except (DraftmarkError, ValueError) as exc:
        raise _fail(getattr(exc, "message", str(exc))) from exc
    _summary(metrics, out)


def _eval_calibrator(data: Dataset, items: list[EvalItem], train: int, seed: int) -> Calibrator:
    """A text-signal calibrator fitted on ``train`` random items that are not being marked."""
    from service.calibration.fit import Script, fit_calibrator

    marked = {i.id for i in items}
    pool = [i for i in data.items if i.id not in marked]
    if len(pool) < train:
        raise CallerError(f"--calibrate-train {train}: only {len(pool)} items are left outside the sample")
    chosen = random.Random(seed).sample(pool, train)
    scheme = data.scheme_for(chosen[0])
    calibrator = fit_calibrator([Script(essay=i.essay, marks=i.human) for i in chosen], scheme)
    err.print(
        "calibration on "
        + f"{train} other items: "
        + "; ".join(f"{f.ao_id}: {'used' if f.used else 'not used'} ({f.reason})" for f in calibrator.objectives),
        highlight=False,
        soft_wrap=True,
    )
    return calibrator


def _summary(metrics: dict[str, Any], out: Path) -> None:
    console = Console()
    for sid, s in metrics["schemes"].items():
        primary = s["objectives"][s["primary"]]
        hm, hh = primary["human_machine"], primary["human_human"]
        console.print(
            f"{sid} {s['primary']}: n={hm['n']} QWK={hm['qwk']} human-human={hh['qwk'] if hh else None} "
            f"SMD={hm['smd']} unmarked={s['unmarked']}",
            highlight=False,
        )
    if metrics["indicative_model"]:
        console.print("[bold yellow]indicative model: not evidence of marking quality[/bold yellow]")
    console.print(f"gate: {'PASS' if not metrics['gate_failures'] else 'FAIL'}; report: {out / 'report.md'}")


@eval_app.command("gate")
def gate_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder with metrics.json.")],
    min_qwk: float = 0.70,
    max_gap: float = 0.10,
    max_smd: float = 0.15,
    max_unmarked: float = 0.05,
) -> None:
    """Exit non-zero unless QWK, the human-human gap and |SMD| meet the thresholds."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise _fail(f"{path} not found; run 'draftmark eval run' first")
    failures = gate(json.loads(path.read_text()), GateThresholds(min_qwk, max_gap, max_smd, max_unmarked))
    for failure in failures:
        err.print(f"[red]FAIL[/red] {failure}", highlight=False, soft_wrap=True)
    if failures:
        raise typer.Exit(1)
    Console().print("gate: PASS")


@eval_app.command("compare")
def compare(a: Path, b: Path) -> None:
    """What changed between two runs (per scheme and objective)."""
    left, right = (json.loads((p / "metrics.json").read_text()) for p in (a, b))
    console = Console()
    console.print(f"A: {left['models']} {left['prompts']}\nB: {right['models']} {right['prompts']}", highlight=False)
    for sid in sorted(set(left["schemes"]) | set(right["schemes"])):
        la, rb = left["schemes"].get(sid), right["schemes"].get(sid)
        if la is None or rb is None:
            console.print(f"{sid}: only in {'B' if la is None else 'A'}")
            continue
        for name in la["objectives"]:
            x, y = la["objectives"][name]["human_machine"], rb["objectives"].get(name, {}).get("human_machine")
            if y is None:
                continue
            parts = []
            for metric in ("qwk", "exact", "mae", "smd"):
                if x[metric] is None or y[metric] is None:
                    parts.append(f"{metric} {x[metric]} -> {y[metric]}")
                else:
                    parts.append(f"{metric} {x[metric]:.3f} -> {y[metric]:.3f} ({y[metric] - x[metric]:+.3f})")
            console.print(f"{sid} {name}: " + "; ".join(parts), highlight=False)
        console.print(f"{sid} unmarked: {la['unmarked']} -> {rb['unmarked']}")
    for line in paired_differences(a, b):
        console.print(line, highlight=False)
    console.print(
        f"gate: {'PASS' if not left['gate_failures'] else 'FAIL'} -> {'PASS' if not right['gate_failures'] else 'FAIL'}"
    )


def paired_differences(a: Path, b: Path) -> list[str]:
    """QWK(B) - QWK(A) on the items both runs marked, with a paired bootstrap 95% interval."""
    from evals.metrics import mark_scales, paired_qwk_difference, with_total

    schemes = {s.id: s for s in eval_schemes().list()}

    def marked(run: Path) -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (r["scheme_id"], r["item_id"]): r
            for r in read_records(run)
            if r["status"] == "marked" and r["repeat"] == 0 and r["perturbation"] is None
        }

    left, right = marked(a), marked(b)
    lines = []
    for sid in sorted({k[0] for k in left} & {k[0] for k in right}):
        scheme = schemes.get(sid)
        keys = sorted(k for k in left.keys() & right.keys() if k[0] == sid)
        if scheme is None or len(keys) < 2:
            continue
        human, before, after = (
            [with_total(records[k][field], scheme) for k in keys]
            for records, field in ((left, "human"), (left, "machine"), (right, "machine"))
        )
        for name, labels in mark_scales(scheme).items():
            found = paired_qwk_difference(
                [m[name] for m in human], [m[name] for m in before], [m[name] for m in after], labels
            )
            if found is not None:
                lines.append(
                    f"{sid} {name}: QWK B - A = {found.difference:+.3f} on the {found.n} essays both marked "
                    f"(paired bootstrap 95% interval {found.low:+.3f} to {found.high:+.3f})"
                )
    return lines


@eval_app.command("report")
def report(run_dir: Path, dataset: Annotated[str, typer.Option(help="Title for the report.")] = "run") -> None:
    """Rebuild report.md, metrics.json and plots from items.jsonl."""
    schemes = {s.id: s for s in eval_schemes().list()}
    metrics = write_report(run_dir, read_records(run_dir), schemes, title=dataset)
    _summary(metrics, run_dir)


def _marked_scripts(path: Path) -> list[EvalItem]:
    """A teacher's marked scripts from a JSONL file; errors name the file (and the line or item)."""
    try:
        return load_dataset("jsonl", path, None).items
    except DraftmarkError as exc:
        message = exc.message if exc.message.startswith(str(path)) else f"{path}: {exc.message}"
        raise CallerError(message) from exc


@eval_app.command("calibrate")
def calibrate_command(
    dataset: Annotated[DatasetKind, typer.Option(help="Which corpus.")],
    out: Annotated[Path, typer.Option(help="Report folder (metrics.json, report.md).")],
    path: Annotated[Path | None, typer.Option(help="Folder (or JSONL file) holding the corpus.")] = None,
    essay_set: Annotated[int | None, typer.Option("--set", help="ASAP / ASAP++ essay set.")] = None,
    train: Annotated[int, typer.Option(min=10, help="Training scripts (the teacher's marked scripts).")] = 50,
    test: Annotated[int, typer.Option(min=2, help="Test essays, never in the training split.")] = 200,
    seeds: Annotated[str, typer.Option(help="Comma-separated split seeds; figures are means over them.")] = "0,1,2",
    sample: Annotated[Literal["random", "stratified"], typer.Option(help="How test essays are drawn.")] = "random",
    llm_run: Annotated[
        Path | None, typer.Option(help="An 'eval run' folder whose marks are the model's signal (train and test).")
    ] = None,
    curve: Annotated[str, typer.Option(help="Training sizes for the learning curve.")] = "10,20,50,100",
    probe_run: Annotated[
        Path | None, typer.Option(help="An 'eval probe' folder: the model's level probabilities as a signal.")
    ] = None,
    exemplars: Annotated[
        Path | None,
        typer.Option(
            help="A teacher's marked scripts (JSONL, the eval format) to fit on instead of a training split; "
            "the test essays come from --dataset (--train and --curve are then unused)."
        ),
    ] = None,
    scheme_file: SchemeFile = None,
) -> None:
    """Fit calibration on a training split and test it on other essays, beside word count, the model and a human."""
    from evals.calibration_report import model_marks, run_calibration_eval
    from evals.probe_run import probe_kind, read_probes

    try:
        data = load_dataset(dataset, path, essay_set, scheme_file)
        marks = model_marks(llm_run) if llm_run else None
        if marks is not None:
            # With a model run, only the essays the model marked can be split (its marks are a signal).
            data = Dataset(name=data.name, items=[i for i in data.items if i.id in marks], schemes=data.schemes)
            err.print(f"{len(data.items)} essays carry the model's marks from {llm_run}")
        probes = read_probes(probe_run) if probe_run else None
        if probes is not None:
            data = Dataset(name=data.name, items=[i for i in data.items if i.id in probes], schemes=data.schemes)
            err.print(f"{len(data.items)} essays carry the model's next-token probabilities from {probe_run}")
        sizes = [int(s) for s in curve.split(",") if s.strip()]
        scripts = _marked_scripts(exemplars) if exemplars else None
        metrics = run_calibration_eval(
            data,
            train=train,
            test=test,
            seeds=[int(s) for s in seeds.split(",") if s.strip()],
            sampling=sample,
            llm=marks,
            curve=[s for s in sizes if s + test <= len(data.items)],
            out=out,
            probe=probes,
            probe_kind=probe_kind(probe_run) if probe_run else None,
            exemplars=scripts,
            exemplars_from=str(exemplars) if exemplars else None,
        )
    except (DraftmarkError, ValueError) as exc:
        raise _fail(getattr(exc, "message", str(exc))) from exc
    console = Console()
    primary = metrics["verdict"]["primary"]
    for system, row in metrics["figures"][primary].items():
        console.print(f"{primary} {system}: QWK {row['qwk']}", highlight=False)
    for check, ok in metrics["verdict"]["checks"].items():
        result = "met" if ok else "NOT met" if ok is not None else "n/a"
        console.print(f"{check}: {result} ({metrics['verdict']['figures'][check]})", highlight=False)
    console.print(f"report: {out / 'report.md'}")


@eval_app.command("probe")
def probe_command(
    dataset: Annotated[DatasetKind, typer.Option(help="Which corpus.")],
    out: Annotated[Path, typer.Option(help="Run folder (probes.jsonl); re-running it resumes.")],
    path: Annotated[Path | None, typer.Option(help="Folder (or JSONL file) holding the corpus.")] = None,
    essay_set: Annotated[int | None, typer.Option("--set", help="ASAP / ASAP++ essay set.")] = None,
    limit: Annotated[int | None, typer.Option(help="Sample this many items.")] = None,
    sample: Annotated[Literal["random", "stratified"], typer.Option(help="How items are drawn.")] = "random",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    kind: Annotated[
        Literal["levels", "descriptors"],
        typer.Option(help="levels: 'which level?' per objective; descriptors: 'does it fit?' per level descriptor."),
    ] = "levels",
) -> None:
    """The embedded model's level probabilities per objective (a calibration signal); use with calibrate --probe-run."""
    from evals.dataset import random_sample
    from evals.probe_run import run_probes
    from service.llm.port import NextTokenProbe

    try:
        settings = Settings()
        data = load_dataset(dataset, path, essay_set)
        items = (stratified_sample if sample == "stratified" else random_sample)(data.items, limit, seed)
        llm = build_llm(settings)
        if not isinstance(llm, NextTokenProbe):
            raise CallerError(f"{llm.model_id} cannot give next-token probabilities; use the embedded model")
        ran = asyncio.run(
            run_probes(data, items, llm, out, progress=lambda n, total: err.print(f"probed {n}/{total}"), kind=kind)
        )
    except DraftmarkError as exc:
        raise _fail(exc.message) from exc
    Console().print(f"{ran} essays probed, {len(items) - ran} already done; {out / 'probes.jsonl'}")


@eval_app.command("feedback")
def feedback_command(
    out: Annotated[Path, typer.Option(help="Run folder: results.jsonl (resumable), report.md, metrics.json.")],
    model: Annotated[
        str, typer.Option(help="auto (as draftmark mark: the embedded model without an endpoint) | fake:oracle")
    ] = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N annotated scripts.")] = None,
) -> None:
    """Hold the feedback to 30 hand-annotated Stalin scripts: coverage, facts named, misses targeted (issue 22)."""
    from evals import feedback

    try:
        settings = Settings()
        data = Dataset(name="stalin-annotated", items=feedback.scripts(), schemes=load_reference().schemes)
        llm = choose_model(model, data, settings, 0)
        rows = asyncio.run(feedback.run(llm, settings, out, limit))
    except (DraftmarkError, ValueError) as exc:
        raise _fail(getattr(exc, "message", str(exc))) from exc
    summary = feedback.summarise(rows)
    (out / "metrics.json").write_text(
        json.dumps({"model": llm.model_id, "summary": summary, "targets": feedback.verdicts(summary)}, indent=2) + "\n"
    )
    (out / "report.md").write_text(feedback.report(rows, f"{llm.model_id}"), encoding="utf-8")
    for key, met in feedback.verdicts(summary).items():
        value = summary[key]
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        status = "–" if met is None else ("met" if met else "NOT met")
        err.print(f"{key}: {shown} ({status})")
    err.print(f"report: {out / 'report.md'}")
