"""Rivals: a pass that rests on a sampled candidate is checked against the other samples.

When the first code fails one of the task's examples and a sampled candidate passes
everything, that pass rests on the examples and on the model's own tests, and a small
model's tests often leave whole cases out. The other samples drawn for the same attempt
are free evidence: each one that returns what the chosen code returns on every example
call is a *rival*, an answer the task's own words cannot rule out. Chosen code and rivals
are called side by side in one sandbox run, all in the code's own process (never in this
one, nor in the process that judges), each call bounded in time, on probes: the calls the
tests make and inputs a step away from them (:func:`analysis.probes.probes`). Where a
rival returns something else, or raises where the chosen code returns, the pass is
*contested*: the tests cannot say which of the two is right, so the run does not claim
"passed" (its tests still passed: ``validation.passed``), and it says where they part.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from analysis.interface import public_names
from analysis.probes import argument_lists, probes
from analysis.testcases import EXAMPLE_PREFIX, test_function_name
from roles.context import CallContext
from sandbox import SandboxLimits, run_tests

if TYPE_CHECKING:
    from graph.state import Disagreement

__all__ = ["CALL_TIMEOUT_S", "MAX_RIVALS", "PROBE_TIMEOUT_S", "contest", "probe_run", "target_function"]

MAX_RIVALS = 5
PROBE_TIMEOUT_S = 10.0
"""Wall-clock limit of the one probe run (every rival, every probe): a run that times out gives no opinion."""
CALL_TIMEOUT_S = 0.5
"""Limit of one probe call: a step away from the tests' inputs can be far costlier (prime_fib(-4)
never ends), and a call that does not end in time gives no opinion on that probe."""

# Appended to the chosen code: the rivals run beside it, in the code's own process, and each
# call there is bounded; a rival that does not load (or lacks the function) gives no opinion.
_RIVALS_APPENDIX = """

import signal as _probe_signal


class _ProbeTimedOut(BaseException):
    pass


def _probe_alarm(signum, frame):
    raise _ProbeTimedOut


def _probe_call(function, args):
    if function is None:
        return "no rival", None
    previous = _probe_signal.signal(_probe_signal.SIGALRM, _probe_alarm)
    _probe_signal.setitimer(_probe_signal.ITIMER_REAL, {call_timeout})
    try:
        return "returned", function(*args)
    except _ProbeTimedOut:
        return "timed out", None
    except Exception as exc:  # a raise is an outcome too: the other may return
        return "raised", type(exc).__name__
    finally:
        _probe_signal.setitimer(_probe_signal.ITIMER_REAL, 0)
        _probe_signal.signal(_probe_signal.SIGALRM, previous)


def _load_rival(source):
    space = {{"__name__": "rival"}}
    try:
        exec(compile(source, "rival.py", "exec"), space)
    except BaseException:
        return None
    return space.get({name!r})


_rivals_under_probe = [_load_rival(source) for source in {sources!r}]


def chosen_under_probe(*args):
    return _probe_call({name}, args)


def rival_under_probe(which, *args):
    return _probe_call(_rivals_under_probe[which], args)
"""

# The judging side sees only plain data coming back (sandbox/inside/remote.py); the chosen
# code is called once per probe.
_PROBE_HELPERS = """import solution as _code

_chosen = {}


def _probe(index, rival, args, example):
    if index not in _chosen:
        _chosen[index] = _code.chosen_under_probe(*args)
    ours, theirs = _chosen[index], _code.rival_under_probe(rival, *args)
    if "no rival" in (ours[0], theirs[0]) or ("timed out" in (ours[0], theirs[0]) and not example):
        return  # no opinion here; on an example a rival must be seen to agree
    assert ours == theirs or repr(ours) == repr(theirs), (
        f"chosen {ours[0]} {ours[1]!r}, rival {theirs[0]} {theirs[1]!r}"
    )
"""


def target_function(code: str, entry_point: str | None) -> str | None:
    """The function to probe: the entry point, else the code's only public function."""
    if entry_point:
        return entry_point
    names = public_names(code)
    return names[0] if len(names) == 1 else None


def probe_run(
    code: str, rivals: Sequence[str], name: str, calls: Sequence[tuple[Any, ...]], examples: Collection[int] = ()
) -> tuple[str, str]:
    """The code and tests of the probe run: ``code`` with ``rivals`` beside it, one test_probe_<call>_<rival> each.

    ``examples``: the indexes of the calls the task's examples make, where a rival that
    does not answer in time counts as parting (it is not seen to agree).
    """
    appendix = _RIVALS_APPENDIX.format(sources=list(rivals), name=name, call_timeout=CALL_TIMEOUT_S)
    tests = [_PROBE_HELPERS]
    tests += [
        f"def test_probe_{index}_{which}():\n    _probe({index}, {which}, {args!r}, {index in examples})\n"
        for index, args in enumerate(calls)
        for which in range(len(rivals))
    ]
    return code.rstrip() + "\n" + appendix, "\n\n".join(tests)


def contest(
    ctx: CallContext, code: str, others: Sequence[str], *, tests: str, entry_point: str | None
) -> list[Disagreement]:
    """Where rivals among ``others`` part from ``code`` on the probes: one entry per rival that does.

    ``others`` may hold ``code`` itself, repeats and empty replies: each distinct other code counts once.

    A candidate is a rival when it returns what ``code`` returns on every call the task's
    examples make; without examples to agree on, a candidate gives no opinion. At most
    :data:`MAX_RIVALS` candidates are probed, in the order drawn, all in one sandbox run:
    a probe call that does not end within :data:`CALL_TIMEOUT_S` gives no opinion on that
    probe; a run that does not finish (the chosen code does not import, or the whole run
    passes :data:`PROBE_TIMEOUT_S`) gives none at all.
    """
    name = target_function(code, entry_point)
    if not name:
        return []
    examples = argument_lists(tests, name, within=EXAMPLE_PREFIX)
    calls = probes(tests, name)
    rivals = list(dict.fromkeys(o for o in others if o and o != code))[:MAX_RIVALS]
    if not examples or not calls or not rivals:
        return []
    example_probes = {index for index, args in enumerate(calls) if args in examples}
    if len(example_probes) < len(examples):  # an example call that does not round-trip: no basis to agree on
        return []
    limits = SandboxLimits(wall_timeout_s=min(PROBE_TIMEOUT_S, ctx.settings.test_timeout_s))
    report = run_tests(*probe_run(code, rivals, name, calls, example_probes), limits=limits)
    ctx.usage.sandbox_seconds += report["duration_s"]
    if report["timed_out"] or report["passed_count"] + report["failed_count"] != len(calls) * len(rivals):
        return []
    parted: dict[int, dict[int, str]] = {}  # rival -> probe -> how they part
    for failure in report["failures"]:
        index, which = map(int, test_function_name(failure["test"]).rsplit("_", 2)[1:])
        parted.setdefault(which, {})[index] = failure["message"]
    found: list[Disagreement] = []
    for which, partings in sorted(parted.items()):
        if example_probes & partings.keys():  # not a rival: it fails one of the task's examples
            continue
        index = min(partings)
        found.append(
            {
                "call": f"{name}({', '.join(map(repr, calls[index]))})",
                "outcomes": partings[index].splitlines()[0].removeprefix("AssertionError: ")[:300],
                "rival": rivals[which],
                "probes_parted": len(partings),
                "probes": len(calls),
            }
        )
    return found
