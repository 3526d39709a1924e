"""Embedded-model benchmark: raw llama-cpp-python vs the draftmark service on the same prompts.

Prints load time, prompt and generation tokens/s, seconds per essay cold and warm (second
essay on the same scheme, sharing the prompt prefix), peak RSS, and the service's overhead
over raw llama-cpp-python as a ratio. Both paths send the identical request (same messages,
schema, seed, temperature 0), so they generate the same tokens; the difference is draftmark.

    .venv/bin/python benchmarks/local_model.py                 # default 1.5B model
    .venv/bin/python benchmarks/local_model.py --model smollm2 # the 135M test model
    .venv/bin/python benchmarks/local_model.py --fresh         # fresh processes: empty vs warm disk prefix cache

``--fresh`` runs the service twice in new Python processes against one new prefix-cache folder
(first empty, then holding the scheme's prefix) and reports each process's wall time from
exec to result, the time inside llama.cpp's counters and outside them, tokens/s, the marks,
and the generated tokens per answer field.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import llama_cpp

from schemas.draft import output_json_schema
from schemas.scheme import MarkScheme
from schemas.sentences import SentenceTable
from service.errors import ModelError
from service.llm.local import LocalLlamaLLM, load_llama
from service.llm.port import Completion, CompletionRequest
from service.llm.prefix_cache import PrefixCache
from service.local_model import choose_local_model, smollm2_path
from service.pipeline import mark_essay
from service.prompting import load_prompt
from service.schemes import SchemeLibrary
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    path: str
    essay: str
    wall_s: float
    prompt_tokens_evaluated: int
    prompt_ms: float
    generated_tokens: int
    generation_ms: float

    @property
    def prompt_tps(self) -> float:
        return self.prompt_tokens_evaluated / (self.prompt_ms / 1000) if self.prompt_ms else 0.0

    @property
    def generation_tps(self) -> float:
        return self.generated_tokens / (self.generation_ms / 1000) if self.generation_ms else 0.0


def perf(llama: Any) -> Any:
    return llama_cpp.llama_perf_context(llama.ctx)


def second_essay(first: str) -> str:
    """A different essay of similar length on the same question (paragraphs reordered)."""
    paragraphs = [p for p in first.split("\n\n") if p.strip()]
    return "\n\n".join([paragraphs[0], *reversed(paragraphs[1:])])


def request_for(scheme: Any, essay: str, max_tokens: int) -> CompletionRequest:
    prompt = load_prompt()
    table = SentenceTable(essay)
    return CompletionRequest(
        messages=prompt.messages(scheme, essay, table),
        # the same schema the pipeline sends to a local model (evidence = sentence numbers)
        json_schema=output_json_schema(scheme, sentence_refs=table.citable_refs()),
        schema_name="marking_draft",
        temperature=0.0,
        max_output_tokens=max_tokens,
        seed=0,
    )


def raw_call(llama: Any, request: CompletionRequest) -> None:
    with contextlib.suppress(ValueError):
        llama.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in request.messages],
            response_format={"type": "json_object", "schema": request.json_schema},
            temperature=request.temperature,
            max_tokens=request.max_output_tokens,
            seed=request.seed,
        )


def measure(label: str, essay_name: str, llama: Any, fn: Any) -> Run:
    llama_cpp.llama_perf_context_reset(llama.ctx)
    started = time.perf_counter()
    fn()
    wall = time.perf_counter() - started
    p = perf(llama)
    return Run(label, essay_name, wall, p.n_p_eval, p.t_p_eval_ms, p.n_eval, p.t_eval_ms)


def _grammar_steps(llm: LocalLlamaLLM) -> dict[str, int] | None:
    """The latest generation's favourite-first counts: short path taken vs whole vocabulary checked."""
    counters = getattr(llm._llama, "last_sampling", None)
    return None if counters is None else {"favourite": counters.fast, "whole_vocabulary": counters.full}


def per_objective_schemes(scheme: MarkScheme) -> list[MarkScheme]:
    """One single-objective scheme per objective: the one-call-per-objective option (issue 14)."""
    whole = scheme.model_dump()
    return [
        MarkScheme.model_validate(
            whole
            | {
                "id": f"{scheme.id}-{ao.id.lower()}",
                "objectives": [ao.model_dump()],
                "total_marks": ao.max_marks,
                "grade_boundaries": [],
            }
        )
        for ao in scheme.objectives
    ]


def field_tokens(llama: Any, texts: list[str]) -> dict[str, int]:
    """Generated tokens per answer field (each ``"key": value`` fragment tokenised on its own), over ``texts``."""
    counts: dict[str, int] = {}
    for text in texts:
        for key, value in _field_tokens(llama, text).items():
            counts[key] = counts.get(key, 0) + value
    return counts


def _field_tokens(llama: Any, text: str) -> dict[str, int]:
    def count(key: str, value: Any) -> int:
        return len(
            llama.tokenize(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}".encode(), add_bos=False)
        )

    counts: dict[str, int] = {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {"unparsed": len(llama.tokenize(text.encode(), add_bos=False))}
    for ao in data.get("objectives", {}).values():
        for key, value in ao.items():
            counts[f"objective.{key}"] = counts.get(f"objective.{key}", 0) + count(key, value)
    for key, value in data.items():
        if key != "objectives":
            counts[key] = count(key, value)
    counts["all fields"] = sum(counts.values())
    return counts


class Recording:
    """The embedded model, keeping the raw text of every completion (for per-field token counts)."""

    def __init__(self, inner: LocalLlamaLLM) -> None:
        self.inner = inner
        self.texts: list[str] = []
        self.model_id = inner.model_id
        self.endpoint_kind = inner.endpoint_kind
        self.indicative_only = inner.indicative_only

    async def complete(self, request: CompletionRequest) -> Completion:
        completion = await self.inner.complete(request)
        self.texts.append(completion.text)
        return completion


def child(args: argparse.Namespace) -> None:
    """One fresh process: load, mark the example essay once, print figures as JSON."""
    imports_s = time.time() - args.launched  # interpreter start-up and imports
    imported = time.perf_counter()
    settings = Settings(local_threads=args.threads, max_reasks=0, max_output_tokens=args.max_tokens, backend="local")
    path, model_id = resolve_model(args.model, settings)
    scheme = SchemeLibrary().get("stalin-power-1929")
    essay = (ROOT / "examples" / "stalin-1929.txt").read_text(encoding="utf-8")
    cache = PrefixCache(args.cache_dir, 4 << 30) if args.cache_dir else None
    llm = LocalLlamaLLM.load(
        path, model_id=model_id, threads=args.threads, context=settings.local_context, prefix_cache=cache
    )
    loaded = time.perf_counter()
    recording = Recording(llm)
    llama_cpp.llama_perf_context_reset(llm._llama.ctx)
    outcome = ""
    schemes = per_objective_schemes(scheme) if args.per_objective else [scheme]
    try:
        marks = []
        for part in schemes:
            result = asyncio.run(mark_essay(essay, part, llm=recording, settings=settings))  # type: ignore[arg-type]
            marks.extend(result.ao_marks)
        outcome = f"{sum(m.mark for m in marks)}/{scheme.total_marks} " + " ".join(f"{m.ao_id}={m.mark}" for m in marks)
    except ModelError as exc:
        outcome = type(exc).__name__
    done = time.perf_counter()
    p = perf(llm._llama)
    print(
        json.dumps(
            {
                "imports_s": imports_s,
                "load_s": loaded - imported,
                "mark_s": done - loaded,
                "prefix": llm.last_prefix,
                "prompt_tokens_evaluated": p.n_p_eval,
                "prompt_ms": p.t_p_eval_ms,
                "generated_tokens": p.n_eval,
                "generation_ms": p.t_eval_ms,
                "outside_llama_s": (done - loaded) - (p.t_p_eval_ms + p.t_eval_ms) / 1000,
                "outcome": outcome,
                "calls": len(recording.texts),
                "grammar_steps": _grammar_steps(llm),
                "field_tokens": field_tokens(llm._llama, recording.texts) if recording.texts else {},
                "answer": recording.texts[-1] if len(recording.texts) == 1 else recording.texts,
            }
        )
    )


def fresh(args: argparse.Namespace) -> None:
    """Two fresh processes: an empty disk prefix cache, then the one the first process filled."""
    folder = Path(tempfile.mkdtemp(prefix="draftmark-prefix-"))
    rows = []
    runs = [("empty cache", False), ("warm cache", False)]
    if args.per_objective:
        runs += [("per-AO empty", True), ("per-AO warm", True)]
    for label, per_objective in runs:
        command = [sys.executable, __file__, "--child", "--cache-dir", str(folder), "--model", args.model]
        command += ["--threads", str(args.threads), "--max-tokens", str(args.max_tokens)]
        command += ["--launched", repr(time.time())] + (["--per-objective"] if per_objective else [])
        started = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append({"run": label, "process_wall_s": wall, "per_objective": per_objective, **figures})
    print(
        f"{'run':12} {'process s':>9} {'start s':>7} {'load s':>6} {'mark s':>6} {'calls':>5} {'prefix':>6} "
        f"{'prompt tok':>10} {'tok/s':>6} {'gen tok':>7} {'tok/s':>6} {'outside s':>9}  marks"
    )
    for r in rows:
        ptps = r["prompt_tokens_evaluated"] / (r["prompt_ms"] / 1000) if r["prompt_ms"] else 0.0
        gtps = r["generated_tokens"] / (r["generation_ms"] / 1000) if r["generation_ms"] else 0.0
        print(
            f"{r['run']:12} {r['process_wall_s']:9.1f} {r['imports_s']:7.1f} {r['load_s']:6.1f} "
            f"{r['mark_s']:6.1f} {r['calls']:5d} {r['prefix']:>6} "
            f"{r['prompt_tokens_evaluated']:10d} {ptps:6.1f} {r['generated_tokens']:7d} {gtps:6.1f} "
            f"{r['outside_llama_s']:9.1f}  {r['outcome']}"
        )
    for r in rows:
        print(f"{r['run']}: generated tokens per field: {r['field_tokens']}")
    print(f"prefix-cache folder: {sum(f.stat().st_size for f in folder.iterdir()) / 1e6:,.1f} MB in {folder}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "threads": args.threads, "runs": rows}, indent=2))


def resolve_model(name: str, settings: Settings) -> tuple[Path, str]:
    """The GGUF path and model id for ``--model``."""
    if name == "default":
        choice = choose_local_model(settings)
        return choice.path, choice.model_id
    if name == "smollm2":
        return smollm2_path(), "smollm2-135m-instruct-q4_1"
    return Path(name), Path(name).stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' (1.5B), 'smollm2', or a GGUF path")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--max-tokens", type=int, default=1500)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--fresh", action="store_true", help="fresh processes, empty vs warm disk prefix cache")
    parser.add_argument(
        "--per-objective", action="store_true", help="with --fresh: also one call per objective (two more processes)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--launched", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.fresh:
        fresh(args)
        return

    settings = Settings(local_threads=args.threads, max_reasks=0, max_output_tokens=args.max_tokens, backend="local")
    path, model_id = resolve_model(args.model, settings)
    scheme = SchemeLibrary().get("stalin-power-1929")
    essays = {"stalin-1929": (ROOT / "examples" / "stalin-1929.txt").read_text(encoding="utf-8")}
    essays["stalin-1929-reordered"] = second_essay(essays["stalin-1929"])

    runs: list[Run] = []
    started = time.perf_counter()
    # "raw" is plain llama-cpp-python: its own sampler chain checks the grammar over the vocabulary
    raw_model = load_llama(path, threads=args.threads, context=settings.local_context, grammar_first=False)
    load_s = time.perf_counter() - started
    for name, essay in essays.items():
        runs.append(
            measure(
                "raw",
                name,
                raw_model,
                functools.partial(raw_call, raw_model, request_for(scheme, essay, args.max_tokens)),
            )
        )
    raw_model.close()

    service_llm = LocalLlamaLLM.load(path, model_id=model_id, threads=args.threads, context=settings.local_context)
    outcomes: list[str] = []
    for name, essay in essays.items():

        def run_service(essay: str = essay) -> None:
            try:
                result = asyncio.run(mark_essay(essay, scheme, llm=service_llm, settings=settings))
                outcomes.append(f"{result.total}/{result.max_total}")
            except ModelError as exc:
                outcomes.append(f"{type(exc).__name__}")

        runs.append(measure("service", name, service_llm._llama, run_service))

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model: {model_id} ({path.stat().st_size / 1e6:,.0f} MB), threads {args.threads}, load {load_s:.1f} s")
    print(
        f"{'path':8} {'essay':24} {'wall s':>7} {'prompt tok':>10} {'prompt tok/s':>12} {'gen tok':>8} {'gen tok/s':>9}"
    )
    for r in runs:
        print(
            f"{r.path:8} {r.essay:24} {r.wall_s:7.1f} {r.prompt_tokens_evaluated:10d} {r.prompt_tps:12.1f} "
            f"{r.generated_tokens:8d} {r.generation_tps:9.1f}"
        )
    raw_runs = [r for r in runs if r.path == "raw"]
    svc_runs = [r for r in runs if r.path == "service"]
    overheads = [(s.wall_s - r.wall_s) / r.wall_s * 100 for s, r in zip(svc_runs, raw_runs, strict=True)]
    same_tokens = all(s.generated_tokens == r.generated_tokens for s, r in zip(svc_runs, raw_runs, strict=True))
    # llama.cpp's own counters time prompt evaluation and decoding; everything else in a call
    # (sampling with the grammar, Python on either side) is "outside". Comparing outside times is
    # immune to the CPU-speed drift between runs that wall-clock ratios suffer from on shared machines.
    for s, r in zip(svc_runs, raw_runs, strict=True):
        outside_raw = r.wall_s - (r.prompt_ms + r.generation_ms) / 1000
        outside_svc = s.wall_s - (s.prompt_ms + s.generation_ms) / 1000
        print(
            f"{s.essay}: time outside llama.cpp's prompt/decode: raw {outside_raw:.1f} s, service {outside_svc:.1f} s; "
            f"draftmark adds {outside_svc - outside_raw:+.1f} s = {(outside_svc - outside_raw) / r.wall_s * 100:+.1f}% "
            "of the raw call"
        )
    cold, warm = svc_runs
    prefix_speedup = cold.prompt_ms / warm.prompt_ms if warm.prompt_ms else float("inf")
    print(f"service results: {outcomes}")
    print(
        f"service overhead over raw: {', '.join(f'{o:+.1f}%' for o in overheads)} "
        f"(target <= 3%; identical generated tokens: {same_tokens})"
    )
    print(
        f"prompt phase, second essay on the scheme: {warm.prompt_ms / 1000:.1f} s vs {cold.prompt_ms / 1000:.1f} s "
        f"cold = {prefix_speedup:.1f}x faster (target >= 3x); {cold.prompt_tokens_evaluated} vs "
        f"{warm.prompt_tokens_evaluated} prompt tokens evaluated"
    )
    print(f"seconds per essay: cold {cold.wall_s:.1f}, warm {warm.wall_s:.1f}; peak RSS {rss_mb:,.0f} MB")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": model_id,
                    "threads": args.threads,
                    "load_s": load_s,
                    "peak_rss_mb": rss_mb,
                    "runs": [
                        asdict(r) | {"prompt_tps": r.prompt_tps, "generation_tps": r.generation_tps} for r in runs
                    ],
                    "overhead_pct": overheads,
                    "prefix_speedup": prefix_speedup,
                    "outcomes": outcomes,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
