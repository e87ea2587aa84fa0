"""Every hostile and forging case of the test suite under each sandbox tier: a table.

    python -m benchmarks.sandbox_cases [--tiers bubblewrap,unshare,rlimits] [--json]

For each case (``tests/test_sandbox_hostile.py``) and tier it runs the case's code and
tests through :func:`sandbox.run_tests` and reports whether the run came back passed
(it never should), the reason it gives, whether the host's canary files, secret and
listener were left alone, and how long it took. The weaker tiers run here because they
are asked for by name (``require_full_isolation=False``). A measurement, not a test:
the test suite asserts the full tier's outcomes; this shows what each tier holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import string
import sys
from typing import Any

from sandbox import SandboxLimits, detect_tier, run_tests
from sandbox.tiers import TIERS
from tests.test_sandbox_hostile import CASES, LIMITS, Case, Host, hostile_host


def _host_untouched(place: Host) -> bool:
    canaries = (place.home_canary, place.project_canary, place.tmp_canary)
    if any(c.read_text() != place.canary_text for c in canaries) or any(p.exists() for p in place.pwned):
        return False
    try:
        place.listener.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def run_case(case: Case, tier: str) -> dict[str, Any]:
    """One case under one tier: the verdict, its reason, and whether the host was spared."""
    limits: SandboxLimits = dataclasses.replace(
        LIMITS, tier=tier, require_full_isolation=False, wall_timeout_s=case.wall_timeout_s
    )
    with hostile_host() as place:
        values = place.values()
        report = run_tests(
            string.Template(case.code).substitute(values), string.Template(case.tests).substitute(values),
            limits=limits,
        )  # fmt: skip
        leaked = place.secret in json.dumps(report)
        untouched = _host_untouched(place)
    return {
        "case": case.name,
        "tier": report["isolation"],
        "passed": report["passed"],
        "error": report["error"],
        "host_untouched": untouched and not leaked,
        "seconds": report["duration_s"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the cases and print a Markdown table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", default=",".join(TIERS), help="comma-separated tiers to run")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args(argv)
    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
    rows = []
    for tier in tiers:
        if detect_tier(tier).name != tier:
            print(f"skipping {tier}: this machine has {detect_tier(tier)}", file=sys.stderr)  # noqa: T201
            continue
        rows += [run_case(case, tier) for case in CASES]
    if args.json:
        print(json.dumps(rows, indent=2))  # noqa: T201
        return 0
    print("| case | tier | passed | reason | host untouched | s |")  # noqa: T201
    print("|---|---|---|---|---|---|")  # noqa: T201
    for row in rows:
        reason = (row["error"] or "").replace("|", "/")[:90]
        print(  # noqa: T201
            f"| {row['case']} | {row['tier']} | {row['passed']} | {reason} | {row['host_untouched']} | "
            f"{row['seconds']:.1f} |"
        )
    return 0 if not any(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
