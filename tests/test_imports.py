"""Every module of the service's packages imports on its own in a fresh interpreter (no import cycles).

A worker imports ``service.batches.task`` first; a cycle through ``service.api``'s package
``__init__`` once made that fail while every test (which imports the app first) passed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("service/batches", "service/api", "service/calibration", "service/llm")


def test_each_module_imports_alone() -> None:
    modules = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    ]
    # one interpreter per module, several at a time: a module may only pass when imported first
    script = "import importlib, sys; importlib.import_module(sys.argv[1])"
    procs = {m: subprocess.Popen([sys.executable, "-c", script, m], cwd=ROOT, stderr=subprocess.PIPE) for m in modules}
    failures = {}
    for module, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failures[module] = err.decode(errors="replace").strip().splitlines()[-1]
    assert not failures, failures
    assert len(modules) > 40
