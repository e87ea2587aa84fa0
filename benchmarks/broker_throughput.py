"""Runs per minute through the broker with 1, 2 and 3 workers, on the scripted model.

    python -m benchmarks.broker_throughput [--workers 1,2,3] [--runs 24] [--json]

For each worker count it starts one API replica and that many workers (the test
suite's FAKE model, so the figure measures the queue, the checkpoints and the sandbox,
not a language model) on a fresh database and queue, sends ``--runs`` runs at once
through ``/lg/runs``, and waits for all of them. It reports runs per minute (from the
first run sent to the last one finished) and the mean and p95 seconds a run waited in
the queue. Needs PostgreSQL, RabbitMQ and Redis on loopback. A measurement, not a
test: compare figures only side by side, on one machine, in one sitting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langgraph_sdk import get_sync_client

from tests.services import GRAPH, deployment, queue_waits, task


def measure(workers: int, runs: int, workdir: Path) -> dict[str, Any]:
    """One row: ``runs`` runs through one API replica and ``workers`` workers."""
    with deployment(workdir / f"w{workers}", apis=1, workers=workers) as deployed:
        client = get_sync_client(url=f"{deployed.apis[0].url}/lg")
        client.runs.wait(None, GRAPH, input={"task": task()[1]})  # warm: imports, sandbox, pools
        started = time.perf_counter()
        sent = [client.runs.create(None, GRAPH, input={"task": task()[1]}) for _ in range(runs)]
        finished = sum(client.runs.join(run["thread_id"], run["run_id"]).get("passed") is True for run in sent)
        elapsed = time.perf_counter() - started
        waits = queue_waits(deployed, [run["run_id"] for run in sent])
    return {
        "workers": workers,
        "runs": runs,
        "finished": finished,
        "seconds": round(elapsed, 1),
        "runs_per_minute": round(runs / elapsed * 60, 1),
        "queue_wait_mean_s": round(statistics.fmean(waits), 2),
        "queue_wait_p95_s": round(statistics.quantiles(waits, n=20)[-1], 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure each worker count and print a Markdown table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,3", help="comma-separated worker counts")
    parser.add_argument("--runs", type=int, default=24, help="runs sent at once per worker count")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="broker-throughput-") as scratch:
        rows = [measure(int(n), args.runs, Path(scratch)) for n in args.workers.split(",")]
    if args.json:
        print(json.dumps(rows, indent=2))  # noqa: T201
        return 0
    print("| workers | runs | finished | seconds | runs/min | queue wait mean s | p95 s |")  # noqa: T201
    print("|---|---|---|---|---|---|---|")  # noqa: T201
    for row in rows:
        cells = [row[k] for k in ("workers", "runs", "finished", "seconds", "runs_per_minute")]
        cells += [row["queue_wait_mean_s"], row["queue_wait_p95_s"]]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
