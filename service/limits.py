"""The server's protective limits: body size, batch size, concurrent runs, the API key.

One typed object with documented defaults; every field falls back to an environment
variable (``STARCODER_<FIELD>``, upper case) so a deployment can tune it without code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["ServiceLimits", "api_key_from_env"]

MIB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(f"STARCODER_{name.upper()}")
    return int(raw) if raw not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(f"STARCODER_{name.upper()}")
    return float(raw) if raw not in (None, "") else default


def api_key_from_env() -> str | None:
    """The API key every route demands, from ``STARCODER_API_KEY`` (unset or empty: none)."""
    return os.environ.get("STARCODER_API_KEY") or None


@dataclass(frozen=True, kw_only=True)
class ServiceLimits:
    """What one server process accepts before it refuses work.

    Attributes:
        max_body_bytes: Largest request body; larger ones get 413, counted as the
            bytes arrive, so a chunked body without Content-Length is cut off too.
        max_batch_size: Most inputs one ``/batch`` request may carry.
        max_running: Runs (graph or agent calls) executing at once.
        max_queued: Runs allowed to wait for a free slot; beyond that a request gets 429.
        queue_timeout_s: How long a queued run waits before it gets 429.
    """

    max_body_bytes: int = field(default_factory=lambda: _env_int("max_body_bytes", MIB))
    max_batch_size: int = field(default_factory=lambda: _env_int("max_batch_size", 8))
    max_running: int = field(default_factory=lambda: _env_int("max_running", 2))
    max_queued: int = field(default_factory=lambda: _env_int("max_queued", 4))
    queue_timeout_s: float = field(default_factory=lambda: _env_float("queue_timeout_s", 60.0))

    def __post_init__(self) -> None:
        """Refuse limits that would make the server accept nothing, or everything."""
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.max_batch_size < 1 or self.max_running < 1 or self.max_queued < 0:
            raise ValueError("max_batch_size and max_running must be >= 1, max_queued >= 0")
        if self.queue_timeout_s <= 0:
            raise ValueError("queue_timeout_s must be positive")
