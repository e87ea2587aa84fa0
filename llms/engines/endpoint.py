"""Remote models: an OpenAI-compatible inference server (vLLM, TGI, llama.cpp's server).

Built on langchain-huggingface's ``ChatHuggingFace(llm=HuggingFaceEndpoint(...))``,
which posts to ``<base>/v1/chat/completions`` and streams the reply. Two of its habits
are handled here: it sends ``"model": "dummy"`` unless ``model_kwargs`` names the
served model, and it appends ``/v1/chat/completions`` itself, so a URL given with a
trailing ``/v1`` is cut back to its base. With ``HF_HUB_OFFLINE=1`` the Hub client it
uses refuses every URL, local ones too, so that setting is reported as the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llms.errors import ModelLoadError

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

__all__ = ["ENDPOINT_PREFIX", "EndpointSpec", "build_endpoint_chat", "parse_endpoint"]

ENDPOINT_PREFIX = "endpoint:"


@dataclass(frozen=True)
class EndpointSpec:
    """Where a served model is: the server's base URL and the model name it serves."""

    base_url: str
    model: str
    timeout_s: int = 120

    @property
    def name(self) -> str:
        """Return the name this model reports itself by."""
        return f"{ENDPOINT_PREFIX}{self.base_url}/v1#{self.model}"


def parse_endpoint(name: str | None) -> EndpointSpec | None:
    """Return the endpoint that ``name`` (or the environment) designates, if any.

    ``endpoint:http://host:8080/v1#served-model`` names both; without ``#`` the model
    comes from ``STARCODER_ENDPOINT_MODEL`` (default ``default``). With no name,
    ``STARCODER_ENDPOINT_URL`` configures one.
    """
    if name is None:
        url = os.environ.get("STARCODER_ENDPOINT_URL")
        if not url:
            return None
        spec = url
    elif name.startswith(ENDPOINT_PREFIX):
        spec = name[len(ENDPOINT_PREFIX) :]
    else:
        return None
    url, _, model = spec.partition("#")
    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    if not url.startswith(("http://", "https://")):
        raise ModelLoadError(name or spec, f"endpoint URL must start with http:// or https://: {url!r}")
    timeout = os.environ.get("STARCODER_ENDPOINT_TIMEOUT", "120")
    return EndpointSpec(
        base_url=url,
        model=model or os.environ.get("STARCODER_ENDPOINT_MODEL", "default"),
        timeout_s=int(timeout) if timeout.isdigit() else 120,
    )


def build_endpoint_chat(spec: EndpointSpec) -> BaseChatModel:
    """Return a ``ChatHuggingFace`` that talks to ``spec``'s server (no request is sent)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        raise ModelLoadError(
            spec.name,
            "HF_HUB_OFFLINE is set, and the Hugging Face client then refuses every URL "
            "(local ones too); unset it to use an endpoint",
        )
    from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint

    llm = HuggingFaceEndpoint(  # type: ignore[call-arg] # its validator fills model in from endpoint_url
        endpoint_url=spec.base_url,
        timeout=spec.timeout_s,
        task="text-generation",
    )
    return ChatHuggingFace(llm=llm, model_id=spec.model, model_kwargs={"model": spec.model})
