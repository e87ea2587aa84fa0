"""The server's protective limits: body size, batch size, concurrent runs, rate, the API keys.

One typed object with documented defaults; every field falls back to an environment
variable (``STARCODER_<FIELD>``, upper case, read by :mod:`envconfig`) so a deployment can
tune it without code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envconfig import env_float, env_int, env_str

__all__ = ["ServiceLimits", "api_keys_from_env"]

MIB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    return env_int(f"STARCODER_{name.upper()}", default)


def _env_float(name: str, default: float) -> float:
    return env_float(f"STARCODER_{name.upper()}", default)


def api_keys_from_env() -> tuple[str, ...]:
    """The API keys every route demands, from ``STARCODER_API_KEY`` (unset or empty: none).

    Several keys, one per client, are separated by commas; each gets its own rate limit.
    """
    raw = env_str("STARCODER_API_KEY") or ""
    return tuple(key.strip() for key in raw.split(",") if key.strip())


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
        rate_per_minute: Runs a client (an API key, or an address when no keys are
            set) may start a minute once its burst is spent; 0 turns rate limits off.
        rate_burst: Runs a client may start at once before the rate applies.
    """

    max_body_bytes: int = field(default_factory=lambda: _env_int("max_body_bytes", MIB))
    max_batch_size: int = field(default_factory=lambda: _env_int("max_batch_size", 8))
    max_running: int = field(default_factory=lambda: _env_int("max_running", 2))
    max_queued: int = field(default_factory=lambda: _env_int("max_queued", 4))
    queue_timeout_s: float = field(default_factory=lambda: _env_float("queue_timeout_s", 60.0))
    rate_per_minute: float = field(default_factory=lambda: _env_float("rate_per_minute", 30.0))
    rate_burst: int = field(default_factory=lambda: _env_int("rate_burst", 10))

    def __post_init__(self) -> None:
        """Refuse limits that would make the server accept nothing, or everything."""
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.max_batch_size < 1 or self.max_running < 1 or self.max_queued < 0:
            raise ValueError("max_batch_size and max_running must be >= 1, max_queued >= 0")
        if self.queue_timeout_s <= 0:
            raise ValueError("queue_timeout_s must be positive")
        if self.rate_per_minute < 0 or self.rate_burst < 1:
            raise ValueError("rate_per_minute must be >= 0 (0: no rate limit) and rate_burst >= 1")
