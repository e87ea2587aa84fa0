"""Where a model runs: the device, the dtype that suits it, and CPU threads."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

__all__ = ["DevicePlan", "available_memory_bytes", "cpu_threads", "has_cuda", "plan_device"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DevicePlan:
    """The device a model goes to and how its weights are stored there."""

    device: str
    """``cuda`` or ``cpu``."""
    dtype_name: str
    """``bfloat16``, ``float16`` or ``float32``."""
    device_map: str | None
    """``auto`` on CUDA (spread over the GPUs, needs accelerate), ``None`` on CPU."""
    threads: int

    def torch_dtype(self) -> Any:
        """Return the ``torch.dtype`` for :attr:`dtype_name`."""
        import torch

        return getattr(torch, self.dtype_name)


def cpu_threads() -> int:
    """Return the threads a CPU engine should use: the cores this process may run on."""
    configured = os.environ.get("STARCODER_THREADS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def has_cuda() -> bool:
    """Tell whether torch sees a CUDA device (False when torch is not importable)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def plan_device(device: str | None = None) -> DevicePlan:
    """Choose the device and dtype: CUDA → bf16 (fp16 where unsupported), CPU → fp32."""
    import torch

    wanted = (device or ("cuda" if torch.cuda.is_available() else "cpu")).lower()
    threads = cpu_threads()
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA was asked for but torch sees no CUDA device")
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return DevicePlan(device="cuda", dtype_name=dtype, device_map="auto", threads=threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return DevicePlan(device="cpu", dtype_name="float32", device_map=None, threads=threads)


def available_memory_bytes() -> int | None:
    """Return the memory available to a new model on this machine (RAM), if known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
