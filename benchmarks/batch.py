"""Batch benchmark: 1,000 essays through the real server against a 200 ms OpenAI-compatible stub.

    .venv/bin/python benchmarks/batch.py --essays 1000 --latency 0.2 --concurrency 64

The server talks to the stub through the real openai/langchain client. Prints the wall time
and checks, in the database, that every item was marked exactly once (zero lost, zero duplicated).
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

import httpx

from benchmarks._server import running_server
from service.llm.fake import FakeMarker
from service.testing import OpenAIStub, fake_marker_responder

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--essays", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2, help="stub latency per request, seconds")
    parser.add_argument("--concurrency", type=int, default=64, help="DRAFTMARK_BATCH_CONCURRENCY")
    args = parser.parse_args()
    essay = (ROOT / "examples" / "stalin-1929.txt").read_text(encoding="utf-8")
    items = [{"external_id": f"student-{i:05d}", "essay": f"Candidate {i}.\n\n{essay}"} for i in range(args.essays)]
    with OpenAIStub(responder=fake_marker_responder(FakeMarker(delay_s=args.latency))) as stub:
        env = {
            "DRAFTMARK_LLM_BASE_URL": stub.base_url,
            "DRAFTMARK_LLM_MODEL": "stub",
            "DRAFTMARK_BATCH_CONCURRENCY": str(args.concurrency),
            "DRAFTMARK_MAX_BATCH_ITEMS": str(max(1000, args.essays)),
            "DRAFTMARK_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        }
        with running_server(env, fake_delay=None) as (base, db), httpx.Client(base_url=base, timeout=120) as client:
            started = time.perf_counter()
            response = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items})
            response.raise_for_status()
            batch_id = response.json()["id"]
            accepted = time.perf_counter() - started
            while True:
                counts = client.get(f"/v1/batches/{batch_id}").json()["counts"]
                if counts["queued"] == counts["running"] == 0:
                    break
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            with sqlite3.connect(db) as conn:
                rows = conn.execute(
                    "SELECT external_id, COUNT(*) FROM markings WHERE batch_id = ? GROUP BY external_id", (batch_id,)
                ).fetchall()
        requests_seen = len(stub.requests)
    expected = {f"student-{i:05d}" for i in range(args.essays)}
    stored = {r[0] for r in rows}
    duplicated = sum(1 for r in rows if r[1] > 1)
    lost = len(expected - stored)
    print(f"{args.essays} essays, stub latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}")
    print(
        f"accepted in {accepted:.2f} s; all finished in {elapsed:.1f} s (target < 30 s); "
        f"done {counts['done']}, failed {counts['failed']}"
    )
    print(f"stored results: {len(stored)}; lost: {lost}; duplicated: {duplicated}; model requests: {requests_seen}")


if __name__ == "__main__":
    main()
