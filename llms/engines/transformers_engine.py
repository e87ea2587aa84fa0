"""The transformers engine: loads any causal LM (Hub id, folder, GGUF) and generates in batches.

Loading: GGUF weights are dequantized by transformers (slow: ~30 s for 0.5B on a CPU), so
the result is converted once into a plain checkpoint in the user cache
(:mod:`llms.gguf_conversion`); later loads read that checkpoint in seconds.

Generation: every call goes through a :class:`~llms.batching.BatchingQueue`, so calls
that arrive together run as one left-padded ``generate``. A per-step hook (a
``StoppingCriteria``) decodes each row, streams its new text to its caller, and stops a
row as soon as its role's stop rule closes, its token budget is spent, or it ends.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llms.batching import BatchingQueue, BatchJob
from llms.devices import DevicePlan, available_memory_bytes
from llms.engines.base import AnswerTracker, Completion, FinishReason
from llms.errors import ModelLoadError
from llms.gguf_conversion import convert_gguf, converted_dir, is_converted
from llms.packaged import assemble
from llms.presets import Preset, RoleSettings
from llms.prompting import ChatMessage, completion_prompt

__all__ = ["TransformersEngine", "hub_cached", "load_transformers"]

logger = logging.getLogger(__name__)

_CONVERT_LOCK = threading.Lock()


@dataclass
class _Row:
    """One request inside a running batch."""

    job: BatchJob
    settings: RoleSettings
    tracker: AnswerTracker
    input_tokens: int
    started: float
    output_tokens: int = 0
    finish: FinishReason | None = None
    seconds: float = 0.0
    done_at_step: int = field(default=-1)


class TransformersEngine:
    """A transformers model and tokenizer, generating through a batching queue."""

    engine = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        preset: Preset,
        plan: DevicePlan,
        source: str,
        max_batch: int = 8,
        window_s: float = 0.02,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.preset = preset
        self.device = plan.device
        self.dtype = plan.dtype_name
        self.source = source
        self.chat = preset.chat and bool(getattr(tokenizer, "chat_template", None))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        eos = model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {int(e) for e in eos_ids if e is not None} | {int(tokenizer.eos_token_id)}
        self.queue = BatchingQueue(
            self._run_batch, max_batch=max_batch, window_s=window_s, name=f"generate-{preset.name}"
        )

    # -- prompts ---------------------------------------------------------------------

    def prompt(self, messages: Sequence[ChatMessage], settings: RoleSettings) -> tuple[str, str]:
        """Return ``(prompt text, answer opening)`` for ``messages``."""
        if self.chat:
            text = self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
            return str(text), ""
        return completion_prompt(messages, settings.stop)

    # -- generation ------------------------------------------------------------------

    def stream(self, messages: Sequence[ChatMessage], settings: RoleSettings) -> Iterator[str | Completion]:
        """Yield text pieces, then one :class:`Completion` (see :class:`Engine`)."""
        prompt, opening = self.prompt(messages, settings)
        key = (settings.temperature > 0, settings.temperature, settings.top_p, settings.seed)
        job = self.queue.submit(BatchJob(payload=(prompt, opening, settings), key=key))
        yield from job.results()

    def _run_batch(self, jobs: list[BatchJob]) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        prompts = [job.payload[0] for job in jobs]
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = {k: v.to(self.model.device) for k, v in encoded.items()}
        prompt_len = encoded["input_ids"].shape[1]
        lengths = encoded["attention_mask"].sum(dim=1).tolist()
        started = time.perf_counter()
        rows = [
            _Row(
                job=job,
                settings=job.payload[2],
                tracker=AnswerTracker(job.payload[2], opening=job.payload[1]),
                input_tokens=int(n),
                started=started,
            )
            for job, n in zip(jobs, lengths, strict=True)
        ]
        for row in rows:
            if row.tracker.opening:
                row.job.put(row.tracker.first_piece())
        tokenizer = self.tokenizer
        eos_ids = self.eos_ids

        class _Step(StoppingCriteria):
            """Stream each row's new text and stop rows that are complete."""

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                now = time.perf_counter()
                generated = input_ids[:, prompt_len:].tolist()
                flags = []
                for row, ids in zip(rows, generated, strict=True):
                    if row.finish is None:
                        last = ids[-1]
                        ended = last in eos_ids
                        text_ids = ids[:-1] if ended else ids
                        piece = row.tracker.update(tokenizer.decode(text_ids, skip_special_tokens=True))
                        if piece:
                            row.job.put(piece)
                        row.output_tokens = len(ids)
                        if row.tracker.done:
                            row.finish = "stop_rule"
                        elif ended:
                            row.finish = "eos"
                        elif len(ids) >= row.settings.max_new_tokens:
                            row.finish = "length"
                        if row.finish is not None:
                            row.seconds = now - row.started
                            _finish(row)
                    flags.append(row.finish is not None)
                return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)

        first = rows[0].settings
        sampling: dict[str, Any] = {"do_sample": False}
        if first.temperature > 0:
            sampling = {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p}
            if first.seed is not None:
                torch.manual_seed(first.seed)
        with torch.inference_mode():
            self.model.generate(
                **encoded,
                max_new_tokens=max(row.settings.max_new_tokens for row in rows),
                stopping_criteria=StoppingCriteriaList([_Step()]),
                pad_token_id=tokenizer.pad_token_id,
                top_k=None if not sampling["do_sample"] else 50,
                **({} if sampling["do_sample"] else {"temperature": None, "top_p": None}),
                **sampling,
            )
        end = time.perf_counter()
        for row in rows:
            if row.finish is None:  # generate stopped the row itself (eos / length)
                row.finish = "length"
                row.seconds = end - row.started
                _finish(row)


def _finish(row: _Row) -> None:
    row.job.put(
        Completion(
            text=row.tracker.text,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            seconds=row.seconds,
            finish_reason=row.finish or "length",
        )
    )


# -- loading ---------------------------------------------------------------------------


def _check_memory(preset: Preset, plan: DevicePlan) -> None:
    if not preset.params_b or plan.device != "cpu":
        return
    need = preset.params_b * 1e9 * (4 if plan.dtype_name == "float32" else 2)
    have = available_memory_bytes()
    if have is not None and need > have:
        raise ModelLoadError(
            preset.name,
            f"not enough memory: ~{need / 2**30:.1f} GiB needed in {plan.dtype_name}, {have / 2**30:.1f} GiB available",
        )


def _offline() -> bool:
    return any(
        os.environ.get(var, "").lower() in {"1", "true", "yes"} for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_cached(repo_id: str) -> bool:
    """Tell whether ``repo_id``'s config is in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - an id the cache cannot even parse is not cached
        return False


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Tell quickly whether the Hub answers at all (instead of minutes of retries)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _from_pretrained(preset: Preset, plan: DevicePlan, folder: str, **extra: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not Path(folder).exists() and not hub_cached(folder):
        if _offline():
            extra = {**extra, "local_files_only": True}
        elif not _hub_reachable():
            raise ModelLoadError(
                preset.name,
                f"no Hub access: the Hugging Face Hub cannot be reached and {folder!r} is "
                "neither a local folder nor in the local Hub cache",
            )
    kwargs: dict[str, Any] = {"dtype": plan.torch_dtype(), **extra}
    if plan.device_map:
        kwargs["device_map"] = plan.device_map
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **extra)
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except OSError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not Path(folder).exists():
            reason = (
                f"{folder!r} is neither a local folder nor reachable on the Hugging Face Hub "
                f"(no Hub access, or no such id): {reason}"
            )
        raise ModelLoadError(preset.name, reason) from exc
    except (ValueError, RuntimeError, ImportError, KeyError) as exc:
        raise ModelLoadError(preset.name, f"{type(exc).__name__}: {exc}") from exc
    model.eval()
    return model, tokenizer


def load_transformers(preset: Preset, plan: DevicePlan, **queue_options: Any) -> TransformersEngine:
    """Load ``preset`` with transformers on ``plan``'s device.

    Raises:
        ModelLoadError: the weights are missing, corrupted, unreachable or too large.
    """
    _check_memory(preset, plan)
    gguf: Path | None = None
    if preset.packaged is not None:
        gguf = assemble(preset.packaged)
    elif preset.gguf_file:
        gguf = Path(preset.source) / preset.gguf_file
    if gguf is None:
        model, tokenizer = _from_pretrained(preset, plan, preset.source)
        return TransformersEngine(model, tokenizer, preset=preset, plan=plan, source=preset.source, **queue_options)
    converted = converted_dir(preset, gguf)
    with _CONVERT_LOCK:
        if not is_converted(converted, gguf):
            logger.info("converting %s to a plain checkpoint (once)", gguf)
            cpu = DevicePlan(device="cpu", dtype_name="float32", device_map=None, threads=plan.threads)
            model, tokenizer = _from_pretrained(preset, cpu, str(gguf.parent), gguf_file=gguf.name)
            try:
                convert_gguf(model, tokenizer, converted, gguf)
            except (OSError, ValueError, RuntimeError) as exc:
                logger.warning("could not cache the converted %s: %s", preset.name, exc)
                if plan.device != "cpu":
                    model = model.to(plan.device, dtype=plan.torch_dtype())
                return TransformersEngine(model, tokenizer, preset=preset, plan=plan, source=str(gguf), **queue_options)
            del model, tokenizer
    model, tokenizer = _from_pretrained(preset, plan, str(converted))
    return TransformersEngine(model, tokenizer, preset=preset, plan=plan, source=str(gguf), **queue_options)
