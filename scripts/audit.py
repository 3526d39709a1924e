"""Dependency audit for CI: pip-audit over the project's virtual environment.

Fails when a known vulnerability is found. When the vulnerability service cannot be reached
(as on a machine that reaches only package indexes) pip-audit skips every package; this script
says so plainly instead of reporting a clean bill of health.
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> int:
    """Run pip-audit and return the process exit code."""
    completed = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off", "-f", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit did not produce a report (exit {completed.returncode}): {completed.stderr.strip()[-500:]}")
        return 0
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    if not audited:
        print(f"pip-audit: NOT AUDITED - the vulnerability service was unreachable, all {len(deps)} packages skipped")
        return 0
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"pip-audit: {dep['name']} {dep['version']}: {ids}")
    print(
        f"pip-audit: {len(audited)} packages audited, {len(deps) - len(audited)} skipped, {len(vulnerable)} vulnerable"
    )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
