"""Load test: N concurrent clients against the real server (uvicorn on 127.0.0.1) with a fake model.

    .venv/bin/python benchmarks/load.py --delay 0 --concurrency 16 --seconds 10
    .venv/bin/python benchmarks/load.py --delay 0.2 --concurrency 64 --seconds 10

Prints requests/s, p50/p99 latency and the error count. The client runs on the same machine
(2 cores here) and competes with the server for CPU; the figures include that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks._server import running_server

ROOT = Path(__file__).resolve().parent.parent


async def drive(
    base: str, body: dict[str, object], concurrency: int, seconds: float, path: str
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    if path == "/healthz":
                        response = await client.get(path)
                    else:
                        response = await client.post(path, json=body)
                    ok = response.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, errors, elapsed


def run_wrk(base: str, body: dict[str, object], args: argparse.Namespace) -> str:
    """Drive the server with wrk (Debian package ``wrk``) and summarise its report."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    folder = Path(tempfile.mkdtemp(prefix="draftmark-wrk-"))
    (folder / "body.json").write_text(json.dumps(body))
    (folder / "post.lua").write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{folder / "body.json"}", "r"); wrk.body = f:read("*a"); f:close()\n'
    )
    script = [] if args.path == "/healthz" else ["-s", str(folder / "post.lua")]
    subprocess.run(["wrk", "-t1", "-c4", "-d2s", *script, base + args.path], capture_output=True, check=True)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{args.concurrency}", f"-d{int(args.seconds)}s", "--latency", *script, base + args.path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+(\S+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return (
        f"wrk {args.path}, fake model delay {args.delay * 1000:.0f} ms, {args.concurrency} connections, "
        f"{args.seconds:.0f} s\nthroughput: {rate.group(1) if rate else '?'} req/s  "
        f"p50: {p50.group(1) if p50 else '?'}  "
        f"p99: {p99.group(1) if p99 else '?'}  errors: {errors.group(1) if errors else 0}"
        + (f"  socket errors: {socket_errors.group(1)}" if socket_errors else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay", type=float, default=0.0, help="fake model latency in seconds")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--path", default="/v1/markings", choices=["/v1/markings", "/healthz"])
    parser.add_argument(
        "--client",
        default="python",
        choices=["python", "wrk"],
        help="python: asyncio httpx clients in this process; wrk: the wrk tool (lighter on CPU)",
    )
    args = parser.parse_args()
    essay = (ROOT / "examples" / "stalin-1929.txt").read_text(encoding="utf-8")
    body = {"essay": essay, "scheme_id": "stalin-power-1929"}
    if args.client == "wrk":
        with running_server({}, fake_delay=args.delay) as (base, _db):
            print(run_wrk(base, body, args))
        return
    with running_server({}, fake_delay=args.delay) as (base, _db):
        asyncio.run(drive(base, body, 4, 1.0, args.path))  # warm-up
        latencies, errors, elapsed = asyncio.run(drive(base, body, args.concurrency, args.seconds, args.path))
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(
        f"POST {args.path} with fake model delay {args.delay * 1000:.0f} ms, {args.concurrency} concurrent clients, "
        f"{elapsed:.1f} s"
    )
    print(
        f"requests: {len(latencies)}  errors: {errors}  throughput: {len(latencies) / elapsed:.0f} req/s  "
        f"p50: {p50:.1f} ms  p99: {p99:.1f} ms"
    )


if __name__ == "__main__":
    main()
