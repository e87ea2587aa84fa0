"""GGUF weights turned once into a plain transformers checkpoint, checked, in the user cache.

transformers dequantizes GGUF weights on every load (slow: ~30 s for 0.5B on a CPU).
:func:`convert_gguf` saves the dequantized model as safetensors + config + tokenizer,
checks every saved tensor against the model in memory, and marks the folder complete
with a manifest written last, then moves it into place in one rename; later loads read
that checkpoint in seconds (:func:`is_converted` tells whether it is there and whole).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from llms.errors import ModelLoadError
from llms.packaged import cache_dir
from llms.presets import Preset

__all__ = ["convert_gguf", "converted_dir", "is_converted"]

_MANIFEST = "converted.json"


def converted_dir(preset: Preset, gguf: Path) -> Path:
    """Return the folder that holds ``preset``'s checkpoint converted from ``gguf``."""
    tag = preset.packaged.sha256[:16] if preset.packaged and preset.packaged.sha256 else gguf.stem
    return cache_dir() / "converted" / f"{preset.name.replace('/', '--')}-{tag}"


def is_converted(folder: Path, gguf: Path) -> bool:
    """Tell whether ``folder`` holds a whole conversion of this very ``gguf`` file."""
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("source") == gguf.name and manifest.get("size") == gguf.stat().st_size


def convert_gguf(model: Any, tokenizer: Any, target: Path, gguf: Path) -> None:
    """Save a GGUF-loaded model as a plain checkpoint in ``target``, checked, atomically."""
    from safetensors import safe_open

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # transformers refuses to save a model that its GGUF quantizer produced; the weights
    # are already plain dequantized tensors, so dropping the quantizer marks is enough.
    model.hf_quantizer = None
    model.is_quantized = False
    for holder in (model, model.config):
        if hasattr(holder, "quantization_config"):
            delattr(holder, "quantization_config")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    state = model.state_dict()
    seen: set[str] = set()
    for file in sorted(tmp.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as saved:
            for key in saved.keys():  # noqa: SIM118 - safe_open has no __iter__
                if not saved.get_tensor(key).equal(state[key]):
                    raise ModelLoadError(str(target.name), f"converted tensor {key} differs")
                seen.add(key)
    missing = {k for k in state if k not in seen and not k.startswith("lm_head")}
    if missing:
        raise ModelLoadError(str(target.name), f"converted checkpoint lacks {sorted(missing)[:3]}")
    (tmp / _MANIFEST).write_text(json.dumps({"source": gguf.name, "size": gguf.stat().st_size}))
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
