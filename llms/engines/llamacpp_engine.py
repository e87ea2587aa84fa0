"""The llama.cpp engine (llama-cpp-python): GGUF weights on a CPU, ~8× transformers there.

It formats chat messages with the model's own chat template (read from the GGUF, the
same formatter ``Llama.create_chat_completion`` uses), then drives ``Llama.generate``'s
token stream itself: each token's text goes to the caller at once, and the loop breaks
as soon as the role's stop rule closes, so no token is generated past the answer.
``Llama`` is not thread-safe: one lock serialises generations on a loaded model.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from llms.devices import DevicePlan
from llms.engines.base import AnswerTracker, Completion, FinishReason
from llms.errors import ModelLoadError
from llms.packaged import assemble
from llms.presets import Preset, RoleSettings
from llms.prompting import ChatMessage, completion_prompt

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

__all__ = ["LlamaCppEngine", "llama_cpp_available", "load_llama_cpp"]

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT = 4096


def llama_cpp_available() -> bool:
    """Tell whether llama-cpp-python is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


class LlamaCppEngine:
    """A ``llama_cpp.Llama`` and the chat formatter from its GGUF metadata."""

    engine = "llama.cpp"
    dtype = "gguf"

    def __init__(self, llama: Any, *, preset: Preset, device: str, source: str) -> None:
        from llama_cpp import llama_chat_format

        self.llama = llama
        self.preset = preset
        self.device = device
        self.source = source
        self._lock = threading.Lock()
        template = llama.metadata.get("tokenizer.chat_template")
        self.chat = preset.chat and bool(template)
        self._formatter = None
        if self.chat:
            model = llama._model
            eos, bos = llama.token_eos(), llama.token_bos()
            self._formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            )

    def prompt_tokens(self, messages: Sequence[ChatMessage], settings: RoleSettings) -> tuple[list[int], str]:
        """Return the prompt's tokens and the answer opening (base models only)."""
        if self._formatter is not None:
            result = self._formatter(messages=cast("list[ChatCompletionRequestMessage]", list(messages)))
            tokens = self.llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
            return tokens, ""
        text, opening = completion_prompt(messages, settings.stop)
        return self.llama.tokenize(text.encode("utf-8"), add_bos=True, special=False), opening

    def stream(self, messages: Sequence[ChatMessage], settings: RoleSettings) -> Iterator[str | Completion]:
        """Yield text pieces, then one :class:`Completion` (see :class:`Engine`)."""
        import llama_cpp

        tokens, opening = self.prompt_tokens(messages, settings)
        tracker = AnswerTracker(settings, opening=opening)
        if opening:
            yield tracker.first_piece()
        vocab = self.llama._model.vocab
        n_ctx = self.llama.n_ctx()
        budget = max(0, min(settings.max_new_tokens, n_ctx - len(tokens)))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generated = ""
        count = 0
        finish: FinishReason = "length"
        with self._lock:
            started = time.perf_counter()
            if budget > 0:
                if settings.temperature > 0 and settings.seed is not None:
                    # A seeded sample repeats only from a full prompt evaluation: logits from
                    # a reused KV-cache prefix differ in the last bits, enough to flip a sample.
                    self.llama.reset()
                    self.llama.set_seed(settings.seed)
                stream = self.llama.generate(
                    tokens,
                    temp=settings.temperature,
                    top_p=settings.top_p if settings.temperature > 0 else 1.0,
                    top_k=40 if settings.temperature > 0 else 1,
                    min_p=0.05 if settings.temperature > 0 else 0.0,
                    repeat_penalty=1.0,
                )
                for token in stream:
                    count += 1
                    if llama_cpp.llama_vocab_is_eog(vocab, token):
                        finish = "eos"
                        break
                    generated += decoder.decode(self.llama.detokenize([token]))
                    piece = tracker.update(generated)
                    if piece:
                        yield piece
                    if tracker.done:
                        finish = "stop_rule"
                        break
                    if count >= budget:
                        break
                stream.close()
            seconds = time.perf_counter() - started
        yield Completion(
            text=tracker.text,
            input_tokens=len(tokens),
            output_tokens=count,
            seconds=seconds,
            finish_reason=finish,
        )


def gguf_path(preset: Preset) -> Path | None:
    """Return the GGUF file ``preset`` runs from (assembling packaged weights), if any."""
    if preset.packaged is not None:
        return assemble(preset.packaged)
    if preset.gguf_file:
        return Path(preset.source) / preset.gguf_file
    return None


def load_llama_cpp(preset: Preset, plan: DevicePlan, *, n_ctx: int = DEFAULT_CONTEXT) -> LlamaCppEngine:
    """Load ``preset``'s GGUF weights with llama.cpp.

    Raises:
        ModelLoadError: llama-cpp-python is missing, the model has no GGUF file, or
            llama.cpp cannot read it.
    """
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelLoadError(
            preset.name,
            "the llama.cpp engine needs llama-cpp-python (pip install 'starcoder-agents[llamacpp]')",
        ) from exc
    path = gguf_path(preset)
    if path is None:
        raise ModelLoadError(preset.name, "the llama.cpp engine needs GGUF weights; use engine='transformers'")
    if not path.is_file():
        raise ModelLoadError(preset.name, f"no such GGUF file: {path}")
    try:
        llama = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=plan.threads,
            n_threads_batch=plan.threads,
            n_gpu_layers=-1 if plan.device == "cuda" else 0,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(preset.name, f"llama.cpp cannot load {path}: {exc}") from exc
    return LlamaCppEngine(llama, preset=preset, device=plan.device, source=str(path))
