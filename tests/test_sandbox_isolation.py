"""Fail closed: full isolation unless a weaker tier is asked for by name, and the limits a run gets.

Where bubblewrap cannot run, every command that runs untrusted code stops at once
(exit 2, before loading a model) with a message that says how to install it or how to
opt in; with the opt-in, results and ``/health`` name the weaker tier. A weaker host
is simulated by a PATH without ``bwrap`` or by capping the tier, never by breaking
this machine's bubblewrap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import IsolationUnavailable, SandboxLimits, TierInfo, detect_tier, require_isolation, run_tests
from sandbox import cgroup as cgroups
from sandbox.cgroup import RunCgroup, memory_cgroup_file, memory_cgroup_root
from tests.fakes import ADD_TESTS, GOOD_CODE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REQUIRE = "STARCODER_SANDBOX_REQUIRE_FULL_ISOLATION"
TIER = "STARCODER_SANDBOX_TIER"
REFUSED = "full isolation (bubblewrap) is required"
INSTALL = "apt-get install bubblewrap"
WEAK_TIER = TierInfo("unshare", "no network, own PID namespace; bubblewrap: bwrap not installed", "cgroup pids.max")


@pytest.fixture(autouse=True)
def _no_sandbox_settings(monkeypatch):
    """Each test starts from the defaults, whatever the calling shell exported."""
    monkeypatch.delenv(REQUIRE, raising=False)
    monkeypatch.delenv(TIER, raising=False)


@pytest.fixture
def fresh_detection():
    """Forget cached tier probes before and after the test."""
    from sandbox.tiers import _detect

    _detect.cache_clear()
    yield
    _detect.cache_clear()


# -- the default and the opt-in ------------------------------------------------------------


def test_full_isolation_is_the_default_demand():
    assert SandboxLimits().require_full_isolation is True


@pytest.mark.parametrize(("raw", "required"), [("0", False), ("off", False), ("1", True), ("yes", True)])
def test_the_opt_in_is_read_from_the_environment(raw, required, monkeypatch):
    monkeypatch.setenv(REQUIRE, raw)
    assert SandboxLimits().require_full_isolation is required


def test_an_unclear_opt_in_is_refused_not_read_as_no(monkeypatch):
    monkeypatch.setenv(REQUIRE, "maybe")
    with pytest.raises(ValueError, match=REQUIRE):
        SandboxLimits()


def test_the_default_refuses_when_only_a_weaker_tier_works(monkeypatch):
    monkeypatch.setattr("sandbox.tiers.detect_tier", lambda tier=None: WEAK_TIER)
    with pytest.raises(IsolationUnavailable) as refused:
        require_isolation()
    message = str(refused.value)
    assert REFUSED in message and "bwrap not installed" in message
    assert INSTALL in message and "make setup" in message
    assert f"{REQUIRE}=0" in message and f"{TIER}=unshare" in message
    with pytest.raises(IsolationUnavailable):
        run_tests(GOOD_CODE, ADD_TESTS)  # the runner asks the same question


def test_a_weaker_tier_by_name_still_needs_the_opt_in(monkeypatch):
    monkeypatch.setenv(TIER, "unshare")
    with pytest.raises(IsolationUnavailable, match=f"capped at unshare.*{REQUIRE}=0"):
        require_isolation()
    with pytest.raises(IsolationUnavailable):
        run_tests(GOOD_CODE, ADD_TESTS)


def test_the_opt_in_runs_and_names_the_tier(monkeypatch):
    monkeypatch.setenv(TIER, "rlimits")
    monkeypatch.setenv(REQUIRE, "0")
    tier = require_isolation()
    assert (tier.name, tier.full) == ("rlimits", False)
    report = run_tests(GOOD_CODE, ADD_TESTS, limits=SandboxLimits(wall_timeout_s=20))
    assert report["passed"] is True, report["error"]
    assert report["isolation"] == "rlimits"


def test_limits_are_named_where_no_cgroup_is_writable(monkeypatch, fresh_detection):
    monkeypatch.setattr("sandbox.tiers.pids_cgroup_root", lambda: None)
    monkeypatch.setattr("sandbox.tiers.memory_cgroup_file", lambda: None)
    monkeypatch.setattr("sandbox.tiers.os.getuid", lambda: 0)
    tier = detect_tier()
    assert tier.process_limit == ("RLIMIT_NPROC" if tier.drop_uid else "none")
    assert tier.memory_limit == "RLIMIT_AS (each process)"
    assert tier.as_dict()["memory_limit"] == tier.memory_limit


# -- the command line stops before loading a model ---------------------------------------


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "starcoder-agents"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]


def _run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in (REQUIRE, TIER)}
    return subprocess.run(
        [*_cli(), *args], capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT, env={**full_env, **env}
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "code.py").write_text(GOOD_CODE)
    (tmp_path / "tests.py").write_text(ADD_TESTS)
    return str(tmp_path / "code.py"), str(tmp_path / "tests.py")


@pytest.fixture
def path_without_bwrap(tmp_path: Path) -> str:
    """A PATH with the weaker tiers' tools but no ``bwrap``: a host without bubblewrap."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("unshare", "setpriv", "prlimit"):
        if found := shutil.which(tool):
            (folder / tool).symlink_to(found)
    return str(folder)


def test_validate_exits_2_without_bubblewrap_and_says_how_to_install_it(files, path_without_bwrap):
    result = _run_cli("validate", *files, env={"PATH": path_without_bwrap})
    assert result.returncode == 2, result.stderr
    assert REFUSED in result.stderr and INSTALL in result.stderr and f"{REQUIRE}=0" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["run", "serve"])
def test_run_and_serve_exit_2_before_loading_a_model(command, tmp_path, path_without_bwrap):
    args = ["run", "Write add(a, b)."] if command == "run" else ["serve", "--port", "9"]
    result = _run_cli(*args, "--model", str(tmp_path / "no-model"), env={"PATH": path_without_bwrap})
    assert result.returncode == 2, result.stderr
    assert REFUSED in result.stderr and INSTALL in result.stderr
    assert "Loading model" not in result.stderr and "cannot load model" not in result.stderr


def test_a_named_weaker_tier_without_the_opt_in_exits_2(files):
    result = _run_cli("validate", *files, env={TIER: "unshare"})
    assert result.returncode == 2, result.stderr
    assert REFUSED in result.stderr and "capped at unshare" in result.stderr


def test_validate_with_the_opt_in_names_the_tier_and_its_limits(files):
    result = _run_cli("validate", *files, "--json", env={TIER: "rlimits", REQUIRE: "0"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["isolation"] == "rlimits"
    assert report["sandbox"]["tier"] == "rlimits" and report["sandbox"]["full_isolation"] is False
    assert report["sandbox"]["process_limit"] and report["sandbox"]["memory_limit"]
    assert "weaker than full isolation" in result.stderr


# -- /health -----------------------------------------------------------------------------


def test_health_names_the_tier_and_whether_it_is_weaker(monkeypatch):
    from fastapi.testclient import TestClient

    from server import create_app
    from tests.server_app import FakeServingModels

    monkeypatch.setenv(TIER, "rlimits")
    monkeypatch.setenv(REQUIRE, "0")
    with TestClient(create_app(FakeServingModels(), checkpointer="memory")) as client:
        sandbox = client.get("/health").json()["sandbox"]
    assert sandbox["tier"] == "rlimits"
    assert sandbox["full_isolation"] is False and sandbox["require_full_isolation"] is False
    assert sandbox["process_limit"] == detect_tier("rlimits").process_limit
    assert sandbox["memory_limit"] == detect_tier("rlimits").memory_limit
    assert "capped at rlimits" in sandbox["reason"]


# -- the whole run's memory --------------------------------------------------------------

# Six processes of 120 MiB each: every one is within its own address-space limit, but
# together they need more than the run may have.
_MANY_HOARDERS = """
import os, time

def test_many_hoarders():
    children = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            hoard = bytearray(120 * 1024 * 1024)
            time.sleep(2)
            os._exit(0)
        children.append(pid)
    statuses = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    assert statuses == [0] * 6, statuses
"""


def test_a_memory_bomb_is_stopped_by_the_whole_run_limit(caplog):
    if memory_cgroup_root() is None:
        pytest.skip(
            "no writable memory cgroup here (a v1 memory hierarchy, or a v2 subtree with memory "
            "delegated): only RLIMIT_AS for each process applies"
        )
    assert f"cgroup {memory_cgroup_file()} (the whole run)" in detect_tier().memory_limit
    limits = SandboxLimits(wall_timeout_s=20, memory_mb=512, total_memory_mb=400)
    with caplog.at_level(logging.WARNING, logger="sandbox.runner"):
        report = run_tests("X = 1\n", _MANY_HOARDERS, limits=limits)
    assert report["passed"] is False
    assert "-9" in report["failures"][0]["message"], report["error"]  # SIGKILL from the kernel
    assert "reached its memory limit of 400 MiB" in caplog.text


def _cgroup_folder(folder: Path, *files: str) -> Path:
    """A folder that looks like a cgroup: the files the kernel would put there."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("cgroup.procs", *files):
        (folder / name).write_text("")
    return folder


@pytest.mark.parametrize("version", [1, 2])
def test_the_run_cgroup_sets_both_limits_on_either_version(version, tmp_path, monkeypatch):
    """Against a fake cgroup file system laid out as v1 (a hierarchy each) or v2 (one tree)."""
    v1_memory = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
    if version == 1:
        own = {"pids": "", "memory": "service/a"}
        _cgroup_folder(tmp_path / "memory")
        roots = {
            "pids": _cgroup_folder(tmp_path / "pids", "pids.max"),
            "memory": _cgroup_folder(tmp_path / "memory" / "service" / "a", *v1_memory),
        }
    else:
        own = {"": "service"}
        service = _cgroup_folder(tmp_path / "service", "memory.max", "pids.max")
        (service / "cgroup.subtree_control").write_text("cpu memory pids\n")
        roots = {"pids": service, "memory": service}
    monkeypatch.setattr(cgroups, "_CGROUP_FS", tmp_path)
    monkeypatch.setattr(cgroups, "_own_groups", lambda: own)
    assert (cgroups.pids_cgroup_root(), cgroups.memory_cgroup_root()) == (roots["pids"], roots["memory"])
    assert memory_cgroup_file() == ("memory.limit_in_bytes" if version == 1 else "memory.max")

    group = RunCgroup.create(max_pids=17)
    assert group is not None and group.pids_group is not None and group.memory_group is not None
    assert (group.pids_group / "pids.max").read_text() == "17"
    assert len(group.paths) == (2 if version == 1 else 1)
    kernel_files = v1_memory if version == 1 else ("memory.max", "memory.swap.max")
    _cgroup_folder(group.memory_group, *kernel_files)
    assert group.limit_memory(300 * 1024 * 1024)
    expected = [str(300 * 1024 * 1024)] * 2 if version == 1 else [str(300 * 1024 * 1024), "0"]
    assert [(group.memory_group / name).read_text() for name in kernel_files] == expected
    joins = group.wrap(["true"])[2]
    assert all(f"echo $$ > {path / 'cgroup.procs'}" in joins for path in group.paths)
