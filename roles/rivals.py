"""Rivals: a pass that rests on a sampled candidate is checked against the other samples.

When the first code fails one of the task's examples and a sampled candidate passes
everything, that pass rests on the examples and on the model's own tests, and a small
model's tests often leave whole cases out. The other samples drawn for the same attempt
are free evidence: each one that returns what the chosen code returns on every example
call is a *rival*, an answer the task's own words cannot rule out. Chosen code and rival
are called side by side in the sandbox, both in the code's own process (never in this
one, nor in the process that judges), on probes: the calls the
tests make and inputs a step away from them (:func:`analysis.probes.probes`). Where a
rival returns something else, or raises where the chosen code returns, the pass is
*contested*: the tests cannot say which of the two is right, so the run does not claim
"passed" (its tests still passed: ``validation.passed``), and it says where they part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from analysis.interface import public_names
from analysis.probes import argument_lists, probes
from analysis.testcases import EXAMPLE_PREFIX, test_function_name
from roles.context import CallContext
from sandbox import SandboxLimits, run_tests

if TYPE_CHECKING:
    from graph.state import Disagreement

__all__ = ["MAX_RIVALS", "PROBE_TIMEOUT_S", "contest", "probe_run", "target_function"]

MAX_RIVALS = 5
PROBE_TIMEOUT_S = 5.0
"""Wall-clock limit of one rival's probe run: a step away from the tests' inputs can be far
costlier (prime_fib(-4) never ends), and a probe run that times out gives no opinion."""

# Appended to the chosen code: the rival runs beside it, in the code's own process.
_RIVAL_APPENDIX = """

_rival_under_probe = {{"__name__": "rival"}}
exec(compile({source!r}, "rival.py", "exec"), _rival_under_probe)


def rival_under_probe(*args):
    return _rival_under_probe[{name!r}](*args)
"""

# The judging side sees only plain data coming back from both (sandbox/inside/remote.py).
_PROBE_HELPERS = """import solution as _code


def _outcome(function, args):
    try:
        return "returned", function(*args)
    except Exception as exc:  # a raise is an outcome too: the other may return
        return "raised", type(exc).__name__


def _probe(args):
    ours, theirs = _outcome(_code.{name}, args), _outcome(_code.rival_under_probe, args)
    assert ours == theirs or repr(ours) == repr(theirs), (
        f"chosen {{ours[0]}} {{ours[1]!r}}, rival {{theirs[0]}} {{theirs[1]!r}}"
    )
"""


def target_function(code: str, entry_point: str | None) -> str | None:
    """The function to probe: the entry point, else the code's only public function."""
    if entry_point:
        return entry_point
    names = public_names(code)
    return names[0] if len(names) == 1 else None


def probe_run(code: str, rival: str, name: str, calls: Sequence[tuple[Any, ...]]) -> tuple[str, str]:
    """The code and tests of one probe run: ``code`` with the rival beside it, one test_probe_<i> per call."""
    tests = [_PROBE_HELPERS.format(name=name)]
    tests += [f"def test_probe_{index}():\n    _probe({args!r})\n" for index, args in enumerate(calls)]
    return code.rstrip() + "\n" + _RIVAL_APPENDIX.format(source=rival, name=name), "\n\n".join(tests)


def contest(
    ctx: CallContext, code: str, others: Sequence[str], *, tests: str, entry_point: str | None
) -> list[Disagreement]:
    """Where rivals among ``others`` part from ``code`` on the probes: one entry per rival that does.

    ``others`` may hold ``code`` itself, repeats and empty replies: each distinct other code counts once.

    A candidate is a rival when it returns what ``code`` returns on every call the task's
    examples make; without examples to agree on, or when a probe run does not finish
    (an import error), a candidate gives no opinion; after a probe run times out
    (:data:`PROBE_TIMEOUT_S`), no more are run. At most :data:`MAX_RIVALS` candidates are
    probed, in the order drawn.
    """
    name = target_function(code, entry_point)
    if not name:
        return []
    examples = argument_lists(tests, name, within=EXAMPLE_PREFIX)
    calls = probes(tests, name)
    if not examples or not calls:
        return []
    example_probes = {index for index, args in enumerate(calls) if args in examples}
    if len(example_probes) < len(examples):  # an example call that does not round-trip: no basis to agree on
        return []
    limits = SandboxLimits(wall_timeout_s=min(PROBE_TIMEOUT_S, ctx.settings.test_timeout_s))
    found: list[Disagreement] = []
    for rival in list(dict.fromkeys(o for o in others if o and o != code))[:MAX_RIVALS]:
        report = run_tests(*probe_run(code, rival, name, calls), limits=limits)
        ctx.usage.sandbox_seconds += report["duration_s"]
        if report["timed_out"]:  # most often the chosen code itself on a costly probe: so it would be again
            break
        if report["passed_count"] + report["failed_count"] != len(calls):
            continue
        parted = {int(test_function_name(f["test"]).rsplit("_", 1)[1]): f["message"] for f in report["failures"]}
        if not parted or example_probes & parted.keys():  # the same answer, or not a rival: fails an example
            continue
        index = min(parted)
        found.append(
            {
                "call": f"{name}({', '.join(map(repr, calls[index]))})",
                "outcomes": parted[index].splitlines()[0].removeprefix("AssertionError: ")[:300],
                "rival": rival,
                "probes_parted": len(parted),
                "probes": len(calls),
            }
        )
    return found
