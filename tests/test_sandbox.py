"""The sandbox's normal behaviour: counts, coverage, failures, errors, tiers, limits.

Every test here runs real code in the real sandbox (no model involved); the hostile
cases live in ``test_sandbox_hostile.py``.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import threading
import time

import pytest

from sandbox import (
    IsolationUnavailable,
    SandboxLimits,
    detect_tier,
    run_command,
    run_tests,
)
from sandbox.inside import harness
from sandbox.runner import GATE

ADD = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
ADD_TESTS = (
    "from solution import add\n\n\n"
    "def test_add():\n    assert add(1, 2) == 3\n\n\n"
    "def test_add_negative():\n    assert add(-1, -2) == -3\n"
)
FAST = SandboxLimits(wall_timeout_s=20)
WEAKER_OK = dataclasses.replace(FAST, require_full_isolation=False)  # the explicit opt-in


# -- passing, failing, erroring ----------------------------------------------------------


def test_passing_suite_reports_counts_and_coverage():
    report = run_tests(ADD, ADD_TESTS, limits=FAST)
    assert report["passed"] is True
    assert report["error"] is None
    assert (report["passed_count"], report["failed_count"], report["errored_count"]) == (2, 0, 0)
    assert report["failures"] == []
    assert report["coverage"] is not None and 50.0 <= report["coverage"] < 100.0  # sub() unrun
    assert report["isolation"] == detect_tier().name
    assert report["timed_out"] is False
    assert 0 < report["duration_s"] < 20


def test_full_coverage_when_every_line_runs():
    tests = ADD_TESTS + ("\n\ndef test_sub():\n    from solution import sub\n    assert sub(3, 1) == 2\n")
    report = run_tests(ADD, tests, limits=FAST)
    assert report["passed"] and report["coverage"] == 100.0


def test_failing_assertion_has_a_trimmed_traceback():
    tests = ADD_TESTS + "\n\ndef test_wrong():\n    assert add(2, 2) == 5\n"
    report = run_tests(ADD, tests, limits=FAST)
    assert report["passed"] is False
    assert (report["passed_count"], report["failed_count"]) == (2, 1)
    assert report["error"] == "1 of 3 tests failed"
    [failure] = report["failures"]
    assert failure["test"] == "test_wrong"
    assert "assert 4 == 5" in failure["message"]
    assert "assert add(2, 2) == 5" in failure["traceback"]
    assert "E   assert 4 == 5" in failure["traceback"]
    assert "site-packages" not in failure["traceback"]
    assert "/sandbox/" not in failure["traceback"]
    assert "starcoder-sandbox-" not in failure["traceback"]


def test_long_tracebacks_are_capped():
    code = "def deep(n):\n    return deep(n - 1) if n else [i for i in range(500)]\n"
    tests = "from solution import deep\n\n\ndef test_deep():\n    assert deep(50) == list(range(1, 501))\n"
    report = run_tests(code, tests, limits=FAST)
    [failure] = report["failures"]
    assert len(failure["traceback"]) <= harness.TRACEBACK_CHARS
    assert "assert" in failure["traceback"]


def test_failures_inside_the_solution_show_its_frame():
    code = "def div(a, b):\n    return a / b\n"
    tests = "from solution import div\n\n\ndef test_div():\n    assert div(1, 0) == 0\n"
    report = run_tests(code, tests, limits=FAST)
    [failure] = report["failures"]
    assert "ZeroDivisionError" in failure["message"]
    assert "solution.py:2: in div" in failure["traceback"]


def test_class_based_tests_are_named_with_their_class():
    tests = "from solution import add\n\n\nclass TestAdd:\n    def test_bad(self):\n        assert add(1, 1) == 3\n"
    report = run_tests(ADD, tests, limits=FAST)
    assert report["failures"][0]["test"] == "TestAdd::test_bad"


def test_syntax_error_in_the_solution_is_an_import_failure():
    report = run_tests("def add(a, b:\n    return a + b\n", ADD_TESTS, limits=FAST)
    assert report["passed"] is False
    assert report["error"].startswith("import failed: SyntaxError")
    assert "solution.py, line 1" in report["error"]
    assert report["errored_count"] == 1


def test_import_error_in_the_solution_names_the_exception():
    code = "import no_such_module_anywhere\n\n" + ADD
    report = run_tests(code, ADD_TESTS, limits=FAST)
    assert report["passed"] is False
    assert report["error"] == ("import failed: ModuleNotFoundError: No module named 'no_such_module_anywhere'")


def test_exception_at_import_is_an_import_failure():
    report = run_tests("raise ValueError('boom at import')\n", ADD_TESTS, limits=FAST)
    assert report["error"] == "import failed: ValueError: boom at import"


def test_no_tests_is_an_error():
    report = run_tests(ADD, "from solution import add\n", limits=FAST)
    assert report["passed"] is False
    assert report["error"] == "no tests were collected"
    assert report["passed_count"] == report["failed_count"] == 0


def test_all_skipped_is_not_a_pass():
    tests = "import pytest\n\n\n@pytest.mark.skip\ndef test_later():\n    pass\n"
    report = run_tests(ADD, tests, limits=FAST)
    assert report["passed"] is False
    assert report["skipped_count"] == 1
    assert report["error"] == "no tests ran: all 1 were skipped"


def test_skips_are_counted_beside_passes():
    tests = ADD_TESTS + "\n\nimport pytest\n\n\n@pytest.mark.skip\ndef test_later():\n    pass\n"
    report = run_tests(ADD, tests, limits=FAST)
    assert report["passed"] is True
    assert (report["passed_count"], report["skipped_count"]) == (2, 1)


def test_exit_code_is_never_trusted():
    """os._exit(0) after a failing test: pytest exits 0 and writes no report."""
    tests = (
        "import os\nfrom solution import add\n\n\n"
        "def test_wrong():\n    assert add(1, 1) == 3\n\n\n"
        "def test_leave():\n    os._exit(0)\n"
    )
    report = run_tests(ADD, tests, limits=FAST)
    assert report["passed"] is False
    assert "without writing its report" in report["error"]


def test_usual_fixtures_do_not_look_like_tampering():
    tests = (
        "import pytest\nfrom solution import add\n\n\n"
        "@pytest.fixture\ndef pair():\n    return (1, 2)\n\n\n"
        "@pytest.mark.parametrize('a, b, total', [(1, 2, 3), (0, 0, 0)])\n"
        "def test_table(a, b, total):\n    assert add(a, b) == total\n\n\n"
        "def test_tools(pair, tmp_path, capsys, monkeypatch, caplog, recwarn):\n"
        "    monkeypatch.setenv('X', '1')\n    (tmp_path / 'f').write_text('x')\n"
        "    print('hi')\n    assert capsys.readouterr().out == 'hi\\n'\n"
        "    with pytest.raises(TypeError):\n        add(1)\n"
        "    assert add(*pair) == 3\n"
    )
    report = run_tests(ADD, tests, limits=FAST)
    assert report["passed"] is True, report["error"]
    assert report["passed_count"] == 3


def test_tests_may_write_in_their_working_folder_but_not_over_the_code():
    tests = (
        "import pathlib\nimport pytest\nfrom solution import add\n\n\n"
        "def test_write_here():\n    pathlib.Path('out.txt').write_text('ok')\n"
        "    assert pathlib.Path('out.txt').read_text() == 'ok'\n\n\n"
        "def test_code_is_read_only():\n    import solution\n"
        "    with pytest.raises(OSError):\n"
        "        pathlib.Path(solution.__file__).write_text('x = 1')\n"
    )
    report = run_tests(ADD, tests, limits=FAST)
    if detect_tier().name == "rlimits" and __import__("os").getuid() == 0:
        pytest.skip("root ignores file modes in the rlimits tier")
    assert report["passed"] is True, report["failures"]


def test_module_name_names_both_files():
    tests = "from mathutils import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    report = run_tests(ADD, tests, module_name="mathutils", limits=FAST)
    assert report["passed"] is True and report["coverage"] is not None


@pytest.mark.parametrize("name", ["", "a-b", "../x", "test_x", "conftest", "a.b"])
def test_bad_module_names_are_refused(name):
    with pytest.raises(ValueError):
        run_tests(ADD, ADD_TESTS, module_name=name)


def test_workspace_is_removed(tmp_path, monkeypatch):
    if detect_tier().drop_uid:
        pytest.skip("the unprivileged uid cannot reach pytest's tmp_path")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    run_tests(ADD, ADD_TESTS, limits=FAST)
    run_command(["true"], {"a.txt": "x"}, limits=FAST)
    assert list(tmp_path.iterdir()) == []


# -- run_command -------------------------------------------------------------------------


def test_run_command_runs_ruff_on_the_files():
    result = run_command(
        ["ruff", "check", "--isolated", "--no-cache", "--output-format", "json", "solution.py"],
        {"solution.py": "import os\n"},
        limits=FAST,
    )
    assert result.returncode == 1, result.stderr
    assert [f["code"] for f in json.loads(result.stdout)] == ["F401"]
    assert result.isolation == detect_tier().name
    assert result.timed_out is False and result.truncated is False


def test_run_command_caps_output():
    limits = SandboxLimits(wall_timeout_s=20, output_cap_bytes=1000)
    result = run_command(["python", "-c", "print('x' * 1_000_000)"], {}, limits=limits)
    assert result.returncode == 0
    assert len(result.stdout) == 1000 and result.truncated is True


def test_run_command_times_out():
    started = time.monotonic()
    result = run_command(["sleep", "60"], {}, limits=SandboxLimits(wall_timeout_s=1))
    assert result.timed_out is True
    assert result.returncode < 0
    assert time.monotonic() - started < 5


def test_run_command_gets_an_empty_environment(monkeypatch):
    monkeypatch.setenv("STARCODER_TEST_LEAK", "leaked")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")
    result = run_command(["env"], {}, limits=FAST)
    assert "leaked" not in result.stdout and "PYTEST_ADDOPTS" not in result.stdout
    assert "PYTHONDONTWRITEBYTECODE=1" in result.stdout


_SHOW_LIMITS = (
    "import resource as r; "
    "print(r.getrlimit(r.RLIMIT_AS)[0] >> 20, r.getrlimit(r.RLIMIT_CPU)[0], "
    "r.getrlimit(r.RLIMIT_FSIZE)[0] >> 20, r.getrlimit(r.RLIMIT_CORE)[0])"
)


@pytest.mark.parametrize("launcher", ["prlimit", "harness"])
def test_run_command_applies_the_limits(launcher, monkeypatch):
    if launcher == "harness":  # hosts without prlimit: the harness's exec mode sets them
        monkeypatch.setattr("sandbox.runner.shutil.which", lambda name: None)
    limits = SandboxLimits(wall_timeout_s=20, memory_mb=300, cpu_s=7, file_size_mb=3)
    result = run_command(["python", "-c", _SHOW_LIMITS], {}, limits=limits)
    assert result.stdout.split() == ["300", "7", "3", "0"], result.stderr


@pytest.mark.parametrize("name", ["../escape.py", "/etc/passwd", ".hidden", "a/b.py", ""])
def test_run_command_refuses_odd_file_names(name):
    with pytest.raises(ValueError):
        run_command(["true"], {name: "x"})


def test_run_command_needs_a_command():
    with pytest.raises(ValueError):
        run_command([], {})


# -- tiers and limits --------------------------------------------------------------------


def test_detect_tier_names_its_tier_and_reason():
    tier = detect_tier()
    assert tier.name in ("bubblewrap", "unshare", "rlimits")
    assert tier.reason
    assert str(tier).startswith(tier.name)
    assert detect_tier() is tier  # cached


def test_detect_tier_refuses_unknown_names():
    with pytest.raises(ValueError):
        detect_tier("chroot")


@pytest.mark.parametrize("forced", ["unshare", "rlimits"])
def test_a_weaker_tier_can_be_forced_and_is_announced(forced, monkeypatch):
    monkeypatch.setenv("STARCODER_SANDBOX_TIER", forced)
    monkeypatch.setenv("STARCODER_SANDBOX_REQUIRE_FULL_ISOLATION", "0")
    tier = detect_tier()
    assert tier.name in ("unshare", "rlimits") if forced == "unshare" else tier.name == "rlimits"
    assert f"capped at {forced}" in tier.reason
    report = run_tests(ADD, ADD_TESTS, limits=SandboxLimits(wall_timeout_s=20))
    assert report["passed"] is True, report["error"]
    assert report["isolation"] == tier.name
    assert report["coverage"] is not None
    result = run_command(["python", "-c", "print(6 * 7)"], {}, limits=SandboxLimits(tier=forced))
    assert (result.stdout.strip(), result.isolation) == ("42", tier.name)


def test_forced_tier_reports_failures_too():
    tests = ADD_TESTS + "\n\ndef test_wrong():\n    assert add(2, 2) == 5\n"
    limits = dataclasses.replace(WEAKER_OK, tier="rlimits")
    report = run_tests(ADD, tests, limits=limits)
    assert report["isolation"] == "rlimits"
    assert report["failed_count"] == 1
    assert "starcoder-sandbox-" not in report["failures"][0]["traceback"]


@pytest.fixture
def fresh_detection():
    """Forget cached tier probes before and after the test."""
    from sandbox.tiers import _detect

    _detect.cache_clear()
    yield
    _detect.cache_clear()


def test_missing_bubblewrap_falls_back_and_says_why(monkeypatch, fresh_detection):
    import shutil

    real_which = shutil.which
    monkeypatch.setattr("sandbox.tiers.shutil.which", lambda name: None if name == "bwrap" else real_which(name))
    tier = detect_tier()
    assert tier.name in ("unshare", "rlimits")
    assert "bubblewrap: bwrap not installed" in tier.reason
    with pytest.raises(IsolationUnavailable, match="bwrap not installed"):
        run_tests(ADD, ADD_TESTS, limits=FAST)  # full isolation is the default demand
    report = run_tests(ADD, ADD_TESTS, limits=WEAKER_OK)
    assert report["passed"] and report["isolation"] == tier.name


def test_broken_bubblewrap_is_probed_and_skipped(monkeypatch, fresh_detection):
    monkeypatch.setattr("sandbox.tiers._bwrap_argv", lambda *a, **k: ["false", "--"])
    tier = detect_tier()
    assert tier.name != "bubblewrap"
    assert "bwrap does not work here" in tier.reason


def test_require_full_isolation_refuses_a_weaker_tier():
    limits = SandboxLimits(tier="rlimits", require_full_isolation=True)
    with pytest.raises(IsolationUnavailable, match="bubblewrap"):
        run_tests(ADD, ADD_TESTS, limits=limits)
    with pytest.raises(IsolationUnavailable):
        run_command(["true"], {}, limits=limits)


def test_require_full_isolation_runs_where_bubblewrap_works():
    if not detect_tier().full:
        pytest.skip(f"no full isolation here: {detect_tier()}")
    report = run_tests(ADD, ADD_TESTS, limits=SandboxLimits(require_full_isolation=True))
    assert report["passed"] and report["isolation"] == "bubblewrap"


def test_limits_fall_back_to_environment_variables(monkeypatch):
    monkeypatch.setenv("STARCODER_SANDBOX_WALL_TIMEOUT_S", "7.5")
    monkeypatch.setenv("STARCODER_SANDBOX_MAX_CONCURRENT", "3")
    monkeypatch.setenv("STARCODER_SANDBOX_REQUIRE_FULL_ISOLATION", "yes")
    limits = SandboxLimits()
    assert (limits.wall_timeout_s, limits.max_concurrent) == (7.5, 3)
    assert limits.require_full_isolation is True
    assert SandboxLimits(wall_timeout_s=2).wall_timeout_s == 2


@pytest.mark.parametrize("bad", [{"wall_timeout_s": 0}, {"memory_mb": -1}, {"tier": "docker"}])
def test_limits_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        SandboxLimits(**bad)


# -- concurrency -------------------------------------------------------------------------

_PROBE_TESTS = """
import json, os, tempfile, time
import solution

def test_probe():
    start = time.time()
    mine = os.path.join(tempfile.gettempdir(), "marker-" + solution.TOKEN)
    open(mine, "w").close()
    time.sleep(0.8)
    markers = sorted(f for f in os.listdir(tempfile.gettempdir()) if f.startswith("marker-"))
    code = sorted(os.listdir(os.path.dirname(solution.__file__)))
    assert False, json.dumps({"start": start, "end": time.time(), "markers": markers,
                              "code": code, "token": solution.TOKEN})
"""


def _probe_result(report: dict) -> dict:
    message = report["failures"][0]["message"]
    return json.loads(message[message.index("{") : message.rindex("}") + 1])


def test_parallel_runs_are_bounded_and_see_only_their_own_files():
    limits = SandboxLimits(wall_timeout_s=20, max_concurrent=2)
    reports: dict[int, dict] = {}

    def one(i: int) -> None:
        reports[i] = run_tests(f"TOKEN = 'run{i}'\n", _PROBE_TESTS, limits=limits)

    GATE.peak = 0
    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(reports) == 4
    probes = [_probe_result(reports[i]) for i in range(4)]
    for i, probe in enumerate(probes):
        assert probe["token"] == f"run{i}"
        assert probe["markers"] == [f"marker-run{i}"]  # no other run's file in sight
        assert probe["code"] == ["solution.py"]  # the tests never sit beside the code
    assert GATE.peak <= 2
    events = sorted([(p["start"], 1) for p in probes] + [(p["end"], -1) for p in probes])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= 2


# -- the harness's pure parts ------------------------------------------------------------


def test_trim_traceback_keeps_own_frames_and_the_assertion():
    text = "\n".join(
        [
            "/venv/lib/python3.11/site-packages/_pytest/python.py:10: in call",
            "    return f()",
            "/sandbox/code/test_solution.py:5: in test_x",
            "    assert add(1, 2) == 4",
            "/sandbox/code/solution.py:2: in add",
            "    return helper(a, b)",
            "E   assert 3 == 4",
        ]
    )
    trimmed = harness.trim_traceback(text, ("/sandbox/code/",))
    assert "_pytest" not in trimmed
    assert "test_solution.py:5: in test_x" in trimmed and "solution.py:2: in add" in trimmed
    assert trimmed.endswith("E   assert 3 == 4")


def test_trim_traceback_caps_lines_and_length():
    text = "test_solution.py:1: in t\n" + "\n".join("E   " + "x" * 500 for _ in range(100))
    trimmed = harness.trim_traceback(text)
    assert len(trimmed) <= harness.TRACEBACK_CHARS
    assert all(len(line) <= harness.LINE_CHARS for line in trimmed.splitlines())


def test_hanging_test_is_the_one_without_a_result():
    out = "t.py::test_a PASSED\nt.py::test_b FAILED\nt.py::test_c "
    assert harness._hanging_test(out) == "t.py::test_c"
    assert harness._hanging_test("t.py::test_a PASSED\n") == ""


# -- how tests are judged: the code in a process of its own ---------------------------------

_CROSSING_CODE = """
class Stack:
    def __init__(self):
        self.items = []
    def push(self, item):
        self.items.append(item)
    def pop(self):
        return self.items.pop()
    def __len__(self):
        return len(self.items)


class EmptyError(ValueError):
    pass


def first(items):
    if not items:
        raise EmptyError("empty")
    return items[0]


def count(items):
    return len(items)


def numbers(n):
    yield from range(n)


def sort_in_place(items):
    items.sort()


def apply(function, value):
    return function(value)


LIMIT = 10
"""


def test_the_codes_values_cross_as_data_and_its_objects_as_references():
    tests = """
import pytest
from solution import *

def test_objects_of_the_code():
    stack = Stack()
    stack.push(1)
    stack.push(2)
    assert len(stack) == 2 and stack.pop() == 2 and stack.items == [1]

def test_exceptions_of_the_code():
    with pytest.raises(EmptyError):
        first([])
    with pytest.raises(ValueError, match="empty"):
        first([])

def test_iterators_and_in_place_changes():
    assert list(numbers(3)) == [0, 1, 2] and 2 in numbers(3)
    items = [3, 1, 2]
    sort_in_place(items)
    assert items == [1, 2, 3]

def test_functions_of_the_tests_are_called_back():
    assert apply(lambda v: v + 1, 1) == 2
    with pytest.raises(ZeroDivisionError):
        apply(lambda v: 1 / v, 0)

def test_literal_constants():
    assert LIMIT == 10
"""
    report = run_tests(_CROSSING_CODE, tests, limits=FAST)
    assert report["passed"] is True, report["failures"]
    assert report["passed_count"] == 5 and report["in_process_tests"] == []
    assert report["coverage"] is not None and report["coverage"] > 80


def test_an_object_of_the_code_has_no_truth_value_of_its_own():
    code = "class Yes:\n    def __bool__(self):\n        return True\n\n\ndef ok():\n    return Yes()\n"
    report = run_tests(code, "from solution import ok\n\n\ndef test_ok():\n    assert ok()\n", limits=FAST)
    assert report["passed"] is False
    assert "only plain data" in report["failures"][0]["message"]


def test_a_test_that_passes_what_cannot_cross_is_judged_in_process_and_named():
    tests = (
        "from solution import count\n\n\nclass Box:\n    pass\n\n\n"
        "def test_boxes():\n    assert count([Box(), Box()]) == 2\n\n\n"
        "def test_plain():\n    assert count([1]) == 1\n"
    )
    report = run_tests(_CROSSING_CODE, tests, limits=FAST)
    assert report["passed"] is True, report["failures"]
    assert report["in_process_tests"] == ["test_boxes"] and report["passed_count"] == 2
    wrong = run_tests(_CROSSING_CODE.replace("return len(items)", "return 0"), tests, limits=FAST)
    assert wrong["passed"] is False and wrong["failed_count"] == 2


def test_comparing_two_objects_of_the_code_is_judged_in_process():
    code = (
        "from dataclasses import dataclass\n\n\n@dataclass\nclass Point:\n    x: int\n    y: int\n\n\n"
        "def origin():\n    return Point(0, 0)\n"
    )
    tests = (
        "from solution import Point, origin\n\n\n"
        "def test_equal():\n    assert origin() == Point(0, 0)\n\n\n"
        "def test_type():\n    assert isinstance(origin(), Point)\n\n\n"
        "def test_fields():\n    assert origin().x == 0\n"
    )
    report = run_tests(code, tests, limits=FAST)
    assert report["passed"] is True, report["failures"]
    assert sorted(report["in_process_tests"]) == ["test_equal", "test_type"]
