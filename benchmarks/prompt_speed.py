"""Prompt-evaluation speed of the embedded model under llama.cpp context options.

Evaluates the first tokens of the example essay (what a warm marking evaluates) once per
option set, each in a fresh context, and prints tokens/s. Used to check whether flash attention
or another micro-batch size buys anything on this hardware (docs/BENCHMARKS.md).

    .venv/bin/python benchmarks/prompt_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from service.llm.local import load_llama
from service.local_model import choose_local_model
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "flash_attn": {"flash_attn": True},
    "n_ubatch=256": {"n_batch": 512, "n_ubatch": 256},
    "n_ubatch=1024": {"n_batch": 1024, "n_ubatch": 1024},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=1300)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from llama_cpp import Llama

    path = choose_local_model(Settings()).path
    text = (ROOT / "examples" / "stalin-1929.txt").read_text(encoding="utf-8")
    tokens = load_llama(path, threads=args.threads, context=512).tokenize(text.encode())[: args.tokens]
    print(f"{path.name}: {len(tokens)} prompt tokens, {args.threads} threads")
    for _ in range(args.repeats):
        for label, options in OPTIONS.items():
            llama = Llama(
                model_path=str(path),
                n_ctx=8192,
                n_threads=args.threads,
                n_threads_batch=args.threads,
                verbose=False,
                **options,
            )
            llama.eval(tokens[:8])  # warm the kernels and the page cache
            llama.reset()
            started = time.perf_counter()
            llama.eval(tokens)
            seconds = time.perf_counter() - started
            print(f"{label:14} {seconds:6.1f} s {len(tokens) / seconds:6.1f} tok/s", flush=True)
            llama.close()


if __name__ == "__main__":
    main()
