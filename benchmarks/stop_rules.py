"""Tokens each role generates with its early-stop rule on and off, on the same prompts.

``python -m benchmarks.stop_rules [--model NAME] [--tasks N] [--json]`` sends the
generator, tester and reviewer prompts of the five plain tasks in ``benchmarks.tasks``
twice: with the role's stop rule (stop when the fenced block / JSON object closes) and
without it (the model runs to its end-of-turn token or the role's token budget).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from analysis.interface import interface_of, public_names
from analysis.parsing import extract_code
from benchmarks.tasks import TASKS
from llms.presets import Role
from roles.context import role_messages

ROLES: tuple[Role, ...] = ("generator", "tester", "reviewer")
"""The roles measured, each with its own prompt pair (``prompts/<role>_system.md``, ``<role>_user.md``)."""


def main(argv: list[str] | None = None) -> int:
    """Measure and print tokens per role with and without stop rules."""
    from llms import load_model

    parser = argparse.ArgumentParser(prog="python -m benchmarks.stop_rules", description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model preset or path (default: the packaged model)")
    parser.add_argument("--tasks", type=int, default=len(TASKS), help="how many of the five tasks")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    totals = {role: {"on": [0, 0.0], "off": [0, 0.0]} for role in ROLES}
    for task in TASKS[: args.tasks]:
        gen = model.for_role("generator").invoke(role_messages("generator", {"task": task, "interface_hint": ""}))
        code = extract_code(str(gen.content)) or "def solution(): ..."
        slots = {
            "task": task,
            "interface_hint": "",
            "interface": interface_of(code),
            "names": ", ".join(public_names(code)) or "*",
            "retry_note": "",
            "code": code,
            "checks": "tests 5 passed, 0 failed.",
        }
        for role in ROLES:
            for mode, override in (("on", {}), ("off", {"stop_rule": None})):
                started = time.perf_counter()
                reply = model.for_role(role).invoke(role_messages(role, slots), **override)
                totals[role][mode][0] += reply.usage_metadata["output_tokens"]
                totals[role][mode][1] += time.perf_counter() - started
    n = args.tasks
    rows = {
        role: {
            "tokens_with_stop_rule": round(v["on"][0] / n, 1),
            "tokens_without": round(v["off"][0] / n, 1),
            "seconds_with_stop_rule": round(v["on"][1] / n, 2),
            "seconds_without": round(v["off"][1] / n, 2),
        }
        for role, v in totals.items()
    }
    if args.json:
        sys.stdout.write(json.dumps({"model": model.name, "tasks": n, "per_role": rows}, indent=2) + "\n")
        return 0
    sys.stdout.write(f"model {model.name}, mean per call over {n} tasks\n")
    sys.stdout.write(f"{'role':<10} {'tokens on':>10} {'tokens off':>11} {'s on':>7} {'s off':>7}\n")
    for role, row in rows.items():
        sys.stdout.write(
            f"{role:<10} {row['tokens_with_stop_rule']:>10} {row['tokens_without']:>11} "
            f"{row['seconds_with_stop_rule']:>7} {row['seconds_without']:>7}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
