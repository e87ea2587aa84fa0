"""What the server says about itself: health, version, the model and the sandbox tier."""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

from typing_extensions import TypedDict

from roles.context import ModelProvider

__all__ = [
    "Health",
    "ModelInfo",
    "SandboxInfo",
    "model_info",
    "package_version",
    "sandbox_tier",
]

logger = logging.getLogger(__name__)


class ModelInfo(TypedDict):
    """The model the server loaded at start."""

    loaded: bool
    name: str
    engine: str
    details: dict[str, Any]


class SandboxInfo(TypedDict):
    """The isolation tier for untrusted tests here, as :func:`sandbox.detect_tier` finds it.

    ``full_isolation`` false means a weaker tier, run only because it was asked for
    (``require_full_isolation`` false); with it true, runs are refused instead.
    ``process_limit`` and ``memory_limit`` say what caps a run's processes and memory.
    """

    tier: str
    full_isolation: bool
    require_full_isolation: bool
    process_limit: str
    memory_limit: str
    reason: str


class Health(TypedDict):
    """What ``GET /health`` returns."""

    status: str
    version: str
    auth: str
    insecure: bool
    model: ModelInfo
    sandbox: SandboxInfo
    checkpointer: str
    runs_running: int
    runs_queued: int
    runs_refused: int
    runs_rate_limited: int
    runs_abandoned: int


def package_version() -> str:
    """The installed version of this project."""
    try:
        return metadata.version("starcoder-agents")
    except metadata.PackageNotFoundError:
        return "unknown"


def model_info(model: ModelProvider) -> ModelInfo:
    """Describe ``model`` with whatever it offers (``engine``, ``describe()``)."""
    details: dict[str, Any] = {}
    describe = getattr(model, "describe", None)
    if callable(describe):
        try:
            described = describe()
            details = dict(described) if isinstance(described, dict) else {"description": str(described)}
        except Exception as exc:  # a description must not take /health down
            logger.warning("model.describe() failed: %s", exc)
            details = {"error": str(exc)}
    return ModelInfo(
        loaded=True,
        name=str(model.name),
        engine=str(getattr(model, "engine", "unknown")),
        details=details,
    )


def sandbox_tier() -> SandboxInfo:
    """The isolation tier the sandbox runs untrusted tests under, as it detects it."""
    try:
        from sandbox import SandboxLimits, detect_tier

        limits = SandboxLimits()
        info = detect_tier(limits.tier)
    except Exception as exc:  # report, don't crash: /health is how one finds out
        logger.warning("sandbox tier detection failed: %s", exc)
        return SandboxInfo(
            tier="unknown", full_isolation=False, require_full_isolation=True, process_limit="unknown",
            memory_limit="unknown", reason=str(exc),
        )  # fmt: skip
    return SandboxInfo(
        tier=info.name,
        full_isolation=info.full,
        require_full_isolation=limits.require_full_isolation,
        process_limit=info.process_limit,
        memory_limit=info.memory_limit,
        reason=info.reason,
    )
