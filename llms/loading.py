"""Loading models once per process.

:func:`load_model` picks the engine (transformers on a GPU, llama.cpp for GGUF weights
on a CPU, a remote endpoint when one is named or configured), loads the model once per
process and argument set, and wraps it in :class:`LoadedModel`, which hands each role
a chat model with that role's settings. A name of several models joined by commas is a
fallback chain: the first answers, the next takes over on connection errors and
timeouts (each later one is loaded only when first needed). What the command line
shows about the presets (listing them, checking one) lives in :mod:`llms.catalog`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable

from llms.chat import EngineChatModel, StopRuleChatModel
from llms.engines.endpoint import EndpointSpec, build_endpoint_chat, parse_endpoint
from llms.errors import ModelLoadError
from llms.presets import DEFAULT_MODEL, DEFAULT_ROLES, Preset, Role, resolve

__all__ = ["FALLBACK_ERRORS", "LoadedModel", "load_model"]

logger = logging.getLogger(__name__)

ENGINES = ("transformers", "llama.cpp", "endpoint")
_ROLES: tuple[Role, ...] = ("generator", "tester", "reviewer", "refiner", "arbiter")

_cache: dict[tuple[str, str | None, str | None], LoadedModel] = {}
_cache_lock = threading.RLock()


def _fallback_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import httpx

        errors.append(httpx.TransportError)
    except ImportError:  # pragma: no cover - httpx comes with langchain
        pass
    try:
        import requests

        errors.extend([requests.ConnectionError, requests.Timeout])
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


FALLBACK_ERRORS = _fallback_errors()
"""The errors on which a fallback chain hands a call to its next model."""


@dataclass
class LoadedModel:
    """A loaded model and the chat model each role uses."""

    name: str
    engine: str
    load_s: float
    device: str = "cpu"
    dtype: str = ""
    source: str = ""
    impl: Any = field(default=None, repr=False)
    """The engine object behind a local model (for benchmarks and tests)."""
    role_models: dict[Role, Runnable[Any, Any]] = field(default_factory=dict, repr=False)
    decodes_together: bool = False
    """Calls made at once share one decode (llama.cpp's batch; a server's parallel slots)."""

    def for_role(self, role: Role) -> Runnable[list[BaseMessage], Any]:
        """Return the chat model for ``role``: messages in, an ``AIMessage`` out."""
        try:
            return self.role_models[role]
        except KeyError:
            raise ValueError(f"unknown role {role!r}; expected one of {_ROLES}") from None

    def describe(self) -> dict[str, Any]:
        """Return what this model is and how it was loaded."""
        return {
            "name": self.name,
            "engine": self.engine,
            "device": self.device,
            "dtype": self.dtype,
            "source": self.source,
            "load_s": round(self.load_s, 3),
            "decodes_together": self.decodes_together,
        }


# -- choosing and building ---------------------------------------------------------------


def _choose_engine(preset: Preset, engine: str | None, device: str | None) -> str:
    if engine:
        if engine not in ENGINES:
            raise ModelLoadError(preset.name, f"unknown engine {engine!r}; expected one of {ENGINES}")
        return engine
    from llms.devices import has_cuda
    from llms.engines.llamacpp_engine import llama_cpp_available

    on_gpu = (device or "").startswith("cuda") or (device is None and has_cuda())
    has_gguf = preset.packaged is not None or preset.gguf_file is not None
    if not on_gpu and has_gguf and llama_cpp_available():
        return "llama.cpp"
    return "transformers"


def _local_model(preset: Preset, engine: str, device: str | None) -> LoadedModel:
    from llms.devices import plan_device

    try:
        plan = plan_device(device)
    except RuntimeError as exc:
        raise ModelLoadError(preset.name, str(exc)) from exc
    started = time.perf_counter()
    impl: Any
    if engine == "llama.cpp":
        from llms.engines.llamacpp_engine import load_llama_cpp

        impl = load_llama_cpp(preset, plan)
    else:
        from llms.engines.transformers_engine import load_transformers

        impl = load_transformers(preset, plan)
    load_s = time.perf_counter() - started
    roles: dict[Role, Runnable[Any, Any]] = {
        role: EngineChatModel(engine=impl, settings=preset.role(role), model_name=preset.name) for role in _ROLES
    }
    logger.info("loaded %s with %s on %s in %.2fs", preset.name, engine, impl.device, load_s)
    return LoadedModel(
        name=preset.name,
        engine=engine,
        load_s=load_s,
        device=impl.device,
        dtype=impl.dtype,
        source=impl.source,
        impl=impl,
        role_models=roles,
        decodes_together=bool(getattr(impl, "decodes_together", False)),
    )


def _endpoint_model(spec: EndpointSpec) -> LoadedModel:
    started = time.perf_counter()
    inner = build_endpoint_chat(spec)
    roles: dict[Role, Runnable[Any, Any]] = {
        role: StopRuleChatModel(inner=inner, settings=settings, model_name=spec.name)
        for role, settings in DEFAULT_ROLES.items()
    }
    return LoadedModel(
        name=spec.name,
        engine="endpoint",
        load_s=time.perf_counter() - started,
        device="remote",
        dtype="",
        source=f"{spec.base_url}/v1 (model {spec.model})",
        role_models=roles,
        decodes_together=True,  # a server with parallel slots (llama-server --parallel, vLLM) batches them
    )


class _LazyRoleModel(BaseChatModel):
    """A role of a model that is loaded only when a call first reaches it (a fallback)."""

    target: str
    role: str
    device: str | None = None

    @property
    def _llm_type(self) -> str:
        return "starcoder-agents-lazy"

    def _model(self) -> BaseChatModel:
        model = load_model(self.target, device=self.device).for_role(self.role)  # type: ignore[arg-type]
        if not isinstance(model, BaseChatModel):
            raise ModelLoadError(self.target, "a fallback must be a single model, not a chain")
        return model

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._model()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        return self._model()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)


def _chain(names: list[str], device: str | None) -> LoadedModel:
    first = load_model(names[0], device=device)
    rest = names[1:]
    roles: dict[Role, Runnable[Any, Any]] = {
        role: first.for_role(role).with_fallbacks(
            [_LazyRoleModel(target=n, role=role, device=device) for n in rest],
            exceptions_to_handle=FALLBACK_ERRORS,
        )
        for role in _ROLES
    }
    return LoadedModel(
        name=",".join([first.name, *rest]),
        engine=f"{first.engine}+fallback",
        load_s=first.load_s,
        device=first.device,
        dtype=first.dtype,
        source=f"{first.source}; then {', '.join(rest)}",
        impl=first.impl,
        role_models=roles,
        decodes_together=first.decodes_together,
    )


def load_model(name: str | None = None, *, engine: str | None = None, device: str | None = None) -> LoadedModel:
    """Load ``name`` (a preset, a Hub id, a local folder or GGUF file, an ``endpoint:URL``).

    ``None`` means the configured endpoint (``STARCODER_ENDPOINT_URL``) with the local
    default behind it, or else :data:`DEFAULT_MODEL`. The same arguments give the same
    object for the life of the process.

    Raises:
        ModelLoadError: naming the model and why it cannot load here.
    """
    if name is None and (configured := parse_endpoint(None)) is not None:
        name = f"{configured.name},{DEFAULT_MODEL}"
    key = (name or DEFAULT_MODEL, engine, device)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        if name and "," in name:
            loaded = _chain([part.strip() for part in name.split(",") if part.strip()], device)
        elif (spec := parse_endpoint(name)) is not None or engine == "endpoint":
            if spec is None:
                raise ModelLoadError(str(name), "engine='endpoint' needs a name 'endpoint:URL#model'")
            loaded = _endpoint_model(spec)
        else:
            preset = resolve(name)
            loaded = _local_model(preset, _choose_engine(preset, engine, device), device)
        _cache[key] = loaded
        return loaded
