"""Fixed hostile code against the sandbox: every case must fail, quickly, and leave no trace.

Each case is a solution module and a test module written to misbehave: read secrets,
write outside its folder, reach the network, exhaust processes, memory, CPU, time,
output or files, end the process early, crash, or fake a pass through pytest itself.
For every case the run must come back ``passed=False`` with a reason, within a bounded
time; afterwards no process of it may be left, the listener must have seen nothing,
the host's files must be unchanged, and a normal run must still pass.

The cases that probe the file system and the network need full isolation and are
skipped on hosts where only a weaker tier works (the reason says which).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import string
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox import SandboxLimits, detect_tier, run_tests
from sandbox.cgroup import PidsCgroup, pids_cgroup_root

REPO = Path(__file__).resolve().parent.parent
LIMITS = SandboxLimits(
    wall_timeout_s=5, cpu_s=5, memory_mb=512, file_size_mb=8, max_processes=32,
    tmpfs_mb=64, output_cap_bytes=100_000,
)  # fmt: skip
TIME_BOUND_S = LIMITS.wall_timeout_s + 8  # the harness deadline, the host's grace, slack
SOLUTION = "def add(a, b):\n    return a + b\n"
NORMAL_TESTS = "from solution import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Host:
    """What the host holds that the hostile code goes after."""

    token: str  # names this case's paths and processes
    secret: str  # in the environment of the host process
    canary_text: str  # what the canary files hold
    home_canary: Path
    project_canary: Path
    tmp_canary: Path
    pwned: list[Path]
    listener: socket.socket

    def values(self) -> dict[str, str]:
        """Placeholders for the hostile code templates."""
        return {
            "token": self.token,
            "secret_sha": _sha(self.secret),
            "canary_sha": _sha(self.canary_text),
            "home_canary": str(self.home_canary),
            "project_canary": str(self.project_canary),
            "tmp_canary": str(self.tmp_canary),
            "pwned": json.dumps([str(p) for p in self.pwned]),
            "port": str(self.listener.getsockname()[1]),
            "host_pid": str(os.getpid()),
        }


@contextmanager
def hostile_host() -> Iterator[Host]:
    """Canaries in the home and project folders and /tmp, a secret, a listener; removed after."""
    token = uuid.uuid4().hex
    secret = "s3cret-" + uuid.uuid4().hex
    saved = os.environ.get("STARCODER_HOSTILE_SECRET")
    os.environ["STARCODER_HOSTILE_SECRET"] = secret
    artifacts = REPO / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    home_canary = Path.home() / f".starcoder-canary-{token}"
    project_canary = artifacts / f"canary-{token}.txt"
    tmp_canary = Path("/tmp") / f"starcoder-canary-{token}"
    canaries = [home_canary, project_canary, tmp_canary]
    canary_text = "canary-" + uuid.uuid4().hex
    for canary in canaries:
        canary.write_text(canary_text)
    pwned = [folder / f"pwned-{token}" for folder in (Path.home(), artifacts, Path("/tmp"))]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        yield Host(token, secret, canary_text, home_canary, project_canary, tmp_canary, pwned, listener)
    finally:
        listener.close()
        for path in [*canaries, *pwned]:
            path.unlink(missing_ok=True)
        if saved is None:
            os.environ.pop("STARCODER_HOSTILE_SECRET", None)
        else:
            os.environ["STARCODER_HOSTILE_SECRET"] = saved


@pytest.fixture
def host() -> Iterator[Host]:
    """The host's canaries, secret and listener for one case."""
    with hostile_host() as place:
        yield place


# -- what must hold after every case -----------------------------------------------------


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) for every process visible here."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        table[int(entry.name)] = (ppid, cmdline.decode(errors="replace"))
    return table


def _descendants(table: dict[int, tuple[int, str]], root: int) -> list[int]:
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent]
        found += children
        frontier += children
    return found


def own_descendants() -> set[int]:
    """The processes this test process has started (and not yet reaped), now."""
    return set(_descendants(_process_table(), os.getpid()))


def assert_nothing_left(token: str, before: set[int]) -> None:
    """No new child of this process, no process with the case's token, no cgroup of ours."""
    table = _process_table()
    assert set(_descendants(table, os.getpid())) - before == set()
    assert [cmd for _, cmd in table.values() if token in cmd] == []
    root = pids_cgroup_root()
    if root is not None:
        assert list(root.glob(f"starcoder-sandbox-{os.getpid()}-*")) == []


def assert_host_untouched(host: Host) -> None:
    """Canaries unchanged, nothing written where the hostile code aimed, no connection."""
    for canary in (host.home_canary, host.project_canary, host.tmp_canary):
        assert canary.read_text() == host.canary_text
    assert [p for p in host.pwned if p.exists()] == []
    with pytest.raises(BlockingIOError):
        host.listener.accept()


# -- the cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A hostile solution and test module, and what the verdict must say."""

    name: str
    tests: str
    code: str = SOLUTION
    error_has: tuple[str, ...] = ()  # any of these in the error
    needs_full_isolation: bool = False
    needs_process_limit: bool = False
    wall_timeout_s: float = LIMITS.wall_timeout_s  # more for cases that must finish to mean anything


CASES = [
    Case(
        "reads_env_secret",
        """
import hashlib, os
def digest(value):
    return hashlib.sha256(value.encode()).hexdigest()
def test_secret_is_visible():
    seen = [os.environ.get("STARCODER_HOSTILE_SECRET", "")]
    for pid in os.listdir("/proc"):
        try:
            seen += open(f"/proc/{pid}/environ", "rb").read().decode().split("\\0")
        except OSError:
            pass
    values = [v.split("=", 1)[-1] for v in seen]
    assert "$secret_sha" in [digest(v) for v in values]
""",
        error_has=("tests failed",),
    ),
    Case(
        "reads_home_canary",
        """
import hashlib
def test_home_canary_is_readable():
    data = open("$home_canary").read()
    assert hashlib.sha256(data.encode()).hexdigest() == "$canary_sha"
""",
        error_has=("tests failed",),
        needs_full_isolation=True,
    ),
    Case(
        "reads_project_canary",
        """
import hashlib
def test_project_canary_is_readable():
    data = open("$project_canary").read()
    assert hashlib.sha256(data.encode()).hexdigest() == "$canary_sha"
""",
        error_has=("tests failed",),
        needs_full_isolation=True,
    ),
    Case(
        "writes_outside",
        """
import json
def test_write_everywhere():
    wrote = []
    for path in json.loads('$pwned') + ["$home_canary", "$project_canary", "$tmp_canary",
                                         "/usr/pwned-$token"]:
        try:
            with open(path, "w") as handle:
                handle.write("pwned")
            wrote.append(path)
        except OSError:
            pass
    assert len(wrote) == 7
""",
        error_has=("tests failed",),
        needs_full_isolation=True,
    ),
    Case(
        "connects_to_host_listener",
        """
import socket
def test_reach_the_listener():
    connection = socket.create_connection(("127.0.0.1", $port), timeout=1)
    connection.sendall(b"hello from the sandbox")
""",
        error_has=("tests failed",),
        needs_full_isolation=True,
    ),
    Case(
        "fork_bomb",
        """
import os
def test_fork_bomb():
    while True:
        try:
            os.fork()
        except OSError:
            pass
""",
        error_has=("timed out", "crashed", "tests failed"),
        needs_process_limit=True,
    ),
    Case(
        "memory_bomb",
        """
def test_eat_memory():
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))
""",
        error_has=("tests failed", "crashed"),
    ),
    Case(
        "busy_loop",
        """
def test_spin():
    while True:
        pass
""",
        error_has=("timed out", "crashed"),
    ),
    Case(
        "detached_sleeper",
        """
import os, time
def daemon_running():
    for pid in os.listdir("/proc"):
        try:
            if b"$token" in open(f"/proc/{pid}/cmdline", "rb").read():
                return True
        except OSError:
            pass
    return False
def test_leave_a_daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sleep", ["sleep-$token", "3600"])
        os._exit(0)
    deadline = time.time() + 2
    while not daemon_running() and time.time() < deadline:
        time.sleep(0.01)
    assert not daemon_running(), "the daemon is loose"
""",
        error_has=("tests failed",),
    ),
    Case(
        "unbounded_output",
        """
import os, sys
def test_flood():
    chunk = b"x" * 65536
    while True:
        os.write(1, chunk)
        sys.stderr.write("y" * 65536)
""",
        error_has=("crashed", "timed out", "tests failed"),
    ),
    Case(
        "thousands_of_files",
        """
import os, tempfile
def test_litter():
    for folder in (".", tempfile.gettempdir()):
        for i in range(5000):
            try:
                open(os.path.join(folder, f"litter-$token-{i}"), "w").close()
            except OSError:
                break
    assert False, "littered"
""",
        error_has=("tests failed",),
    ),
    Case(
        "reads_stdin",
        """
import os, sys
def test_stdin():
    data = os.read(0, 1)
    assert data, "stdin is closed"
    assert sys.stdin.read()
""",
        error_has=("tests failed",),
    ),
    Case(
        "os_exit_after_failure",
        """
import os
def test_fails():
    assert 1 == 2
def test_hides_the_failure():
    os._exit(0)
""",
        error_has=("without writing its report",),
    ),
    Case(
        "sys_exit_at_import",
        NORMAL_TESTS,
        code="import sys\nsys.exit(0)\n" + SOLUTION,
        error_has=("import failed: SystemExit",),
    ),
    Case(
        "segfault",
        """
import ctypes
def test_crash():
    ctypes.string_at(0)
""",
        error_has=("SIGSEGV",),
    ),
    Case(
        "hook_in_module_and_conftest",
        """
import os
import pytest
CONFTEST = '''
import pytest
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
'''
for folder in (".", os.path.dirname(__file__)):
    try:
        with open(os.path.join(folder, "conftest.py"), "w") as handle:
            handle.write(CONFTEST)
    except OSError:
        pass

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"

def test_really_fails():
    assert False
""",
        error_has=("tests failed",),
    ),
    Case(
        "pytest_plugins_list",
        """
pytest_plugins = ["solution"]
def test_really_fails():
    assert False
""",
        code=SOLUTION
        + """
import pytest
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
""",
        error_has=("tried to change how pytest reports",),
    ),
    Case(
        "registers_plugin_at_run_time",
        """
import pytest
class FakePass:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        outcome.get_result().outcome = "passed"

def test_a_register(request):
    request.config.pluginmanager.register(FakePass(), "fakepass")

def test_b_really_fails():
    assert False
""",
        error_has=("tried to change how pytest reports",),
    ),
    Case(
        "tests_forge_the_report_file",
        """
import glob, os
def test_forge():
    for folder in ["/tmp", "/tmp/.sandbox-out", os.getcwd(), *glob.glob("/tmp/*")]:
        for name in ("report.xml", "sentinel.json"):
            try:
                with open(os.path.join(folder, name), "w") as handle:
                    handle.write('<testsuites><testsuite><testcase name="test_forge"/>'
                                 '</testsuite></testsuites>')
            except OSError:
                pass
    os._exit(0)
""",
        error_has=("without writing its report",),
    ),
    Case(
        "kills_its_supervisor",
        """
import os, signal
def test_kill_parent():
    os.kill(os.getppid(), signal.SIGKILL)
    assert False
""",
        error_has=("without a result", "tests failed", "crashed"),
    ),
]


# -- the code under test tries to write its own verdict -----------------------------------
# Each is wrong code (``add`` subtracts) tested by ``assert add(2, 2) == 4``; each tries
# another way to make the run say "passed". The verdict must stay "not passed".

WRONG_ADD = "def add(a, b):\n    return a - b\n"
ADD_CLAIM = "from solution import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n"
FORGED_RESULT = (
    '{"exitstatus": 0, "tests": [{"nodeid": "test_solution.py::test_add", "outcome": "passed"}],'
    ' "collect_errors": [], "import_problem": null, "tampering": [], "coverage": 100}'
)

FORGING_CASES = [
    Case(
        "code_writes_report_and_exits",
        ADD_CLAIM,
        code=f"""
import glob, os
FORGED = {FORGED_RESULT!r}
for folder in ["/tmp", "/tmp/.sandbox-out", os.getcwd(), *glob.glob("/tmp/*"), *glob.glob("/tmp/*/*")]:
    for name in ("report.xml", "sentinel.json", "result.json"):
        try:
            with open(os.path.join(folder, name), "w") as handle:
                handle.write(FORGED)
        except OSError:
            pass
for fd in range(3, 256):  # any result pipe it may have inherited
    try:
        os.write(fd, FORGED.encode())
    except OSError:
        pass
os._exit(0)
"""
        + WRONG_ADD,
        error_has=("import failed",),
    ),
    Case(
        "code_patches_pytest_reports",
        ADD_CLAIM,
        code="""
from _pytest import reports
_original = reports.TestReport.from_item_and_call
def _always_passed(item, call):
    report = _original(item, call)
    report.outcome = "passed"
    report.longrepr = None
    return report
reports.TestReport.from_item_and_call = staticmethod(_always_passed)
"""
        + WRONG_ADD,
        error_has=("tests failed",),
    ),
    Case(
        "code_returns_always_equal",
        ADD_CLAIM,
        code="""
class AlwaysEqual:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = None
def add(a, b):
    return AlwaysEqual()
""",
        error_has=("tests failed",),
    ),
    Case(
        "code_returns_int_subclass",
        ADD_CLAIM,
        code="""
class Four(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
def add(a, b):
    return Four(a - b)
""",
        error_has=("tests failed",),
    ),
    Case(
        "code_returns_truthy_object",
        "from solution import is_even\n\n\ndef test_odd():\n    assert is_even(3) == False\n\n\n"
        "def test_even():\n    assert is_even(4)\n",
        code="""
class Truthy:
    def __bool__(self):
        return True
    def __eq__(self, other):
        return True
def is_even(n):
    return Truthy()
""",
        error_has=("tests failed",),
    ),
    Case(
        "code_reads_the_tests",
        ADD_CLAIM,
        code="""
import glob, os, re
def _read(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        return os.read(fd, 1_000_000).decode(errors="replace")
    except OSError:
        return ""
    finally:
        os.close(fd)
def _expected(a, b):
    pattern = re.compile(r"add\\(" + str(a) + r", " + str(b) + r"\\) == (\\d+)")
    places = [p for top in ("/tmp", "/sandbox")
              for p in glob.glob(top + "/**/*.py", recursive=True, include_hidden=True)]
    places += glob.glob("/proc/*/fd/*") + glob.glob("/proc/*/cmdline") + glob.glob("/proc/*/environ")
    for path in places:
        found = pattern.search(_read(path))
        if found:
            return int(found.group(1))
    return None
def add(a, b):
    found = _expected(a, b)
    return found if found is not None else a - b
""",
        error_has=("tests failed",),
        wall_timeout_s=20,
    ),
    Case(
        "code_kills_the_judge",
        ADD_CLAIM,
        code="""
import os, signal
def add(a, b):
    os.kill(os.getppid(), signal.SIGKILL)
    return a - b
""",
        error_has=("crashed", "without writing its report"),
    ),
    Case(
        "code_writes_the_judges_memory",
        ADD_CLAIM,
        code=f"""
import os
FORGED = {FORGED_RESULT!r}
def add(a, b):
    parent = os.getppid()
    for path in [f"/proc/{{parent}}/mem", *[f"/proc/{{parent}}/fd/{{n}}" for n in range(64)]]:
        try:
            with open(path, "wb") as handle:
                handle.write(FORGED.encode())
        except OSError:
            pass
    return a - b
""",
        error_has=("tests failed",),
    ),
    Case(
        "code_exits_zero_when_called",
        ADD_CLAIM,
        code="import os\n\n\ndef add(a, b):\n    os._exit(0)\n",
        error_has=("tests failed",),
    ),
]
CASES += FORGING_CASES


def _skip_reason(case: Case) -> str | None:
    tier = detect_tier()
    if case.needs_full_isolation and not tier.full:
        return f"needs full isolation; this host has {tier}"
    if case.needs_process_limit and tier.process_limit == "none":
        return f"no process limit on this host ({tier})"
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case_fails_and_leaves_no_trace(case: Case, host: Host):
    if reason := _skip_reason(case):
        pytest.skip(reason)
    values = host.values()
    tests = string.Template(case.tests).substitute(values)
    code = string.Template(case.code).substitute(values)

    before = own_descendants()
    report = run_tests(code, tests, limits=dataclasses.replace(LIMITS, wall_timeout_s=case.wall_timeout_s))

    assert report["passed"] is False
    assert report["error"], "a failed run must say why"
    assert any(part in report["error"] for part in case.error_has), report["error"]
    assert report["duration_s"] < TIME_BOUND_S + case.wall_timeout_s - LIMITS.wall_timeout_s
    assert report["isolation"] == detect_tier().name
    text = json.dumps(report)
    assert host.secret not in text and host.canary_text not in text
    assert len(report["stdout_tail"]) <= 2000 and len(report["stderr_tail"]) <= 2000
    assert_nothing_left(host.token, before)
    assert_host_untouched(host)
    after = run_tests(SOLUTION, NORMAL_TESTS, limits=LIMITS)
    assert after["passed"] is True, after["error"]


# -- the weaker tiers still contain runaway code -----------------------------------------

WEAK_TIER_CASES = [c for c in CASES if c.name in {
    "reads_env_secret", "detached_sleeper", "memory_bomb", "os_exit_after_failure",
    "unbounded_output",
}]  # fmt: skip


@pytest.mark.parametrize("tier", ["unshare", "rlimits"])
@pytest.mark.parametrize("case", WEAK_TIER_CASES, ids=[c.name for c in WEAK_TIER_CASES])
def test_weaker_tiers_contain_runaway_code(case: Case, tier: str, host: Host):
    limits = dataclasses.replace(LIMITS, tier=tier, require_full_isolation=False)
    values = host.values()
    before = own_descendants()
    report = run_tests(
        string.Template(case.code).substitute(values),
        string.Template(case.tests).substitute(values),
        limits=limits,
    )
    assert report["passed"] is False
    assert report["isolation"] == detect_tier(tier).name
    assert any(part in (report["error"] or "") for part in case.error_has), report["error"]
    assert host.secret not in json.dumps(report)
    assert report["duration_s"] < TIME_BOUND_S
    assert_nothing_left(host.token, before)


def test_leftovers_are_found_without_a_cgroup(host: Host, monkeypatch):
    """Without a pids cgroup the rlimits tier finds a daemon by its environment marker."""
    monkeypatch.setattr(PidsCgroup, "create", classmethod(lambda cls, max_pids: None))
    [case] = [c for c in CASES if c.name == "detached_sleeper"]
    tests = string.Template(case.tests).substitute(host.values())
    before = own_descendants()
    weakest = dataclasses.replace(LIMITS, tier="rlimits", require_full_isolation=False)
    report = run_tests(SOLUTION, tests, limits=weakest)
    assert report["isolation"] == "rlimits"
    assert report["error"] == "1 of 1 tests failed"  # the daemon did start
    assert_nothing_left(host.token, before)


def test_full_isolation_looks_as_promised():
    """Under bubblewrap: uid 65534, read-only interpreter, a capped tmpfs, no network."""
    if not detect_tier().full:
        pytest.skip(f"needs full isolation; this host has {detect_tier()}")
    tests = f"""
import os, socket, sys, pytest

def test_who_and_where():
    assert (os.getuid(), os.getgid()) == (65534, 65534)
    assert not os.path.exists("{REPO / "pyproject.toml"}")
    assert not os.path.exists("{Path.home() / ".bashrc"}")
    assert [n for n in os.listdir("/proc") if n.isdigit() and int(n) > 100] == []

def test_interpreter_is_read_only():
    with pytest.raises(OSError):
        open(os.path.join(sys.prefix, "pwned"), "w")

def test_tmpfs_is_capped():
    written = 0
    with pytest.raises(OSError):
        for i in range(100):
            with open(f"/tmp/fill-{{i}}", "wb") as handle:
                handle.write(b"x" * (4 << 20))
            written += 4
    assert written <= 16

def test_no_network():
    with pytest.raises(OSError):
        socket.create_connection(("1.1.1.1", 53), timeout=1)
"""
    limits = dataclasses.replace(LIMITS, tmpfs_mb=16)
    report = run_tests(SOLUTION, tests, limits=limits)
    assert report["passed"] is True, report["failures"] or report["error"]
    assert report["passed_count"] == 4
