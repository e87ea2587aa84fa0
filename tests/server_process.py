"""Start a real uvicorn server in a subprocess on a free loopback port, for the server tests.

By default the process serves :func:`tests.server_app.create_fake_app` (the real server
with a FAKE model); ``argv`` can start anything else, e.g. ``starcoder-agents serve``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["PROJECT_ROOT", "ServerProcess", "free_port", "running_server"]

# Not resolved: the tests run from the project folder they were collected in.
PROJECT_ROOT = Path(__file__).absolute().parent.parent
FAKE_APP = "tests.server_app:create_fake_app"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A running server: its base URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    headers: dict[str, str]

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's combined stdout and stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTP client for this server (with its API key, if any)."""
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=120, **kwargs)  # type: ignore[arg-type]


def _wait_until_up(server: ServerProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/health", headers=server.headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout_s:.0f}s:\n{server.log_tail()}")


@contextmanager
def running_server(
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    argv: Sequence[str] | None = None,
    api_key: str | None = None,
    startup_timeout_s: float = 90.0,
) -> Iterator[ServerProcess]:
    """Run a server until the block ends; ``argv`` gets ``{port}`` filled in.

    ``api_key`` becomes the server's ``STARCODER_API_KEY`` (with several keys, comma
    separated, the client sends the first). Rate limits are off unless ``env`` sets
    ``STARCODER_RATE_PER_MINUTE``: the other tests send runs faster than any client would.
    """
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"server-{port}.log"
    full_env = {
        **os.environ,
        "STARCODER_AGENTS_HOME": str(workdir / "home"),
        "PYTHONUNBUFFERED": "1",
        "STARCODER_RATE_PER_MINUTE": "0",
        **(env or {}),
    }
    if api_key:
        full_env["STARCODER_API_KEY"] = api_key
    else:
        full_env.pop("STARCODER_API_KEY", None)
    command = [a.format(port=port) for a in argv] if argv else [
        sys.executable, "-m", "uvicorn", "--factory", FAKE_APP,
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(
        url=f"http://127.0.0.1:{port}",
        process=process,
        log_path=log_path,
        headers={"X-API-Key": api_key.split(",")[0]} if api_key else {},
    )
    try:
        _wait_until_up(server, startup_timeout_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
