"""The llama.cpp engine (llama-cpp-python): GGUF weights on a CPU, ~8× transformers there.

It formats chat messages with the model's own chat template (read from the GGUF, the
same formatter ``Llama.create_chat_completion`` uses), then drives ``Llama.generate``'s
token stream itself: each token's text goes to the caller at once, and the loop breaks
as soon as the role's stop rule closes, so no token is generated past the answer.

Calls go through a :class:`~llms.batching.BatchingQueue`. A call that arrives alone
runs as above, on the ``Llama`` object's own context. Calls that arrive together (the
sampled code candidates, which the roles ask for at once) are decoded as one batch: a
second context holds one sequence per call, a prompt they share is evaluated once, and
every step decodes one token of each sequence still running, each drawn by its own
sampler (its own temperature and seed). On a 2-core CPU five 200-token samples take
about 2.1x one sample's time rather than 5x, because one pass over the weights serves
them all. A batch that would not fit in the second context runs call by call instead.
A batch repeats itself, but a call's answer in a batch can differ from its answer alone
(batched matrix products sum in another order, enough to flip a near-tie token), so the
loop batches only its sampled candidates, whose seeds already make them a choice.
``Llama`` is not thread-safe: the queue's one worker thread does every generation.
"""

from __future__ import annotations

import codecs
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from llms.batching import BatchingQueue, BatchJob
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
BATCH_CONTEXT = 8192
"""Token cells of the context that decodes calls together (prompts once, plus each call's answer)."""
MAX_BATCH = 8


def llama_cpp_available() -> bool:
    """Tell whether llama-cpp-python is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


@dataclass
class _Sequence:
    """One call inside a batch decoded together."""

    job: BatchJob
    seq: int
    prompt: list[int]
    settings: RoleSettings
    tracker: AnswerTracker
    budget: int
    sampler: Any
    decoder: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))
    generated: str = ""
    count: int = 0
    next_token: int = -1
    finish: FinishReason | None = None


class LlamaCppEngine:
    """A ``llama_cpp.Llama``, the chat formatter from its GGUF metadata, and a batching queue."""

    engine = "llama.cpp"
    dtype = "gguf"
    decodes_together = True
    """Calls made at once share a decode (see the module's docstring)."""

    def __init__(
        self,
        llama: Any,
        *,
        preset: Preset,
        device: str,
        source: str,
        max_batch: int = MAX_BATCH,
        window_s: float = 0.02,
    ) -> None:
        from llama_cpp import llama_chat_format

        self.llama = llama
        self.preset = preset
        self.device = device
        self.source = source
        self.max_batch = max_batch
        self._together: tuple[Any, Any] | None = None  # (context, batch), made on first use
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
        self.queue = BatchingQueue(
            self._run_batch, max_batch=max_batch, window_s=window_s, name=f"llama.cpp-{preset.name}"
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
        tokens, opening = self.prompt_tokens(messages, settings)
        job = self.queue.submit(BatchJob(payload=(tokens, opening, settings), key="llama.cpp"))
        yield from job.results()

    def _budget(self, tokens: list[int], settings: RoleSettings) -> int:
        return max(0, min(settings.max_new_tokens, self.llama.n_ctx() - len(tokens)))

    def _run_batch(self, jobs: list[BatchJob]) -> None:
        if len(jobs) > 1:
            prompts = {tuple(job.payload[0]) for job in jobs}
            cells = sum(len(p) for p in prompts) + sum(self._budget(job.payload[0], job.payload[2]) for job in jobs)
            if cells <= BATCH_CONTEXT:
                self._generate_together(jobs)
                return
        for job in jobs:
            self._generate_one(job)

    def _generate_one(self, job: BatchJob) -> None:
        """One call on the ``Llama`` object's own context (a prompt prefix it holds is reused)."""
        import llama_cpp

        tokens, opening, settings = job.payload
        tracker = AnswerTracker(settings, opening=opening)
        if opening:
            job.put(tracker.first_piece())
        vocab = self.llama._model.vocab
        budget = self._budget(tokens, settings)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generated = ""
        count = 0
        finish: FinishReason = "length"
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
                    job.put(piece)
                if tracker.done:
                    finish = "stop_rule"
                    break
                if count >= budget:
                    break
            stream.close()
        job.put(
            Completion(
                text=tracker.text,
                input_tokens=len(tokens),
                output_tokens=count,
                seconds=time.perf_counter() - started,
                finish_reason=finish,
            )
        )

    def _together_context(self) -> tuple[Any, Any]:
        """The second context (one KV sequence per call) and its token batch, made once."""
        if self._together is None:
            import llama_cpp
            from llama_cpp import _internals

            params = llama_cpp.llama_context_params.from_buffer_copy(self.llama.context_params)
            params.n_ctx = BATCH_CONTEXT
            params.n_batch = params.n_ubatch = 512
            params.n_seq_max = self.max_batch
            params.kv_unified = True  # sequences share the cells of a prompt they have in common
            context = _internals.LlamaContext(model=self.llama._model, params=params, verbose=False)
            batch = _internals.LlamaBatch(n_tokens=512, embd=0, n_seq_max=self.max_batch, verbose=False)
            self._together = (context, batch)
        return self._together

    def _sampler(self, settings: RoleSettings) -> Any:
        """The sampler chain ``Llama.generate`` builds for these settings, with the call's own seed."""
        import llama_cpp
        from llama_cpp import _internals

        sampler = _internals.LlamaSampler()
        if settings.temperature > 0:
            sampler.add_top_k(40)
            sampler.add_typical(1.0, 1)
            sampler.add_top_p(settings.top_p, 1)
            sampler.add_min_p(0.05, 1)
            sampler.add_temp(settings.temperature)
            sampler.add_dist(llama_cpp.LLAMA_DEFAULT_SEED if settings.seed is None else settings.seed)
        else:
            sampler.add_greedy()
        return sampler

    def _generate_together(self, jobs: list[BatchJob]) -> None:
        """Decode ``jobs`` as one batch: each distinct prompt once, then a token of each call per step."""
        import llama_cpp

        context, batch = self._together_context()
        memory = llama_cpp.llama_get_memory(context.ctx)
        llama_cpp.llama_memory_clear(memory, True)
        vocab = self.llama._model.vocab
        started = time.perf_counter()
        rows = [
            _Sequence(
                job=job,
                seq=index,
                prompt=list(job.payload[0]),
                settings=job.payload[2],
                tracker=AnswerTracker(job.payload[2], opening=job.payload[1]),
                budget=self._budget(job.payload[0], job.payload[2]),
                sampler=self._sampler(job.payload[2]),
            )
            for index, job in enumerate(jobs)
        ]
        by_prompt: dict[tuple[int, ...], list[_Sequence]] = {}
        for row in rows:
            if row.tracker.opening:
                row.job.put(row.tracker.first_piece())
            by_prompt.setdefault(tuple(row.prompt), []).append(row)
        for prompt, group in by_prompt.items():
            seqs = [row.seq for row in group]
            for begin in range(0, len(prompt), 512):
                chunk = prompt[begin : begin + 512]
                last = begin + len(chunk) == len(prompt)
                _fill(batch, [(t, begin + i, seqs, last and i == len(chunk) - 1) for i, t in enumerate(chunk)])
                _decode(context, batch)
            for row in group:
                row.next_token = row.sampler.sample(context, len(chunk) - 1)
        running = [row for row in rows if row.budget > 0]
        for row in rows:
            if row.budget <= 0:
                row.finish = "length"
                self._finish(row, started)
        while running:
            for row in running:
                self._take(row, vocab)
                if row.finish is not None:
                    llama_cpp.llama_memory_seq_rm(memory, row.seq, -1, -1)
                    self._finish(row, started)
            running = [row for row in running if row.finish is None]
            if not running:
                break
            _fill(batch, [(row.next_token, len(row.prompt) + row.count - 1, [row.seq], True) for row in running])
            _decode(context, batch)
            for index, row in enumerate(running):
                row.next_token = row.sampler.sample(context, index)
        llama_cpp.llama_memory_clear(memory, True)

    def _take(self, row: _Sequence, vocab: Any) -> None:
        """Add the row's sampled token to its answer; set ``row.finish`` when the answer is done."""
        import llama_cpp

        row.count += 1
        if llama_cpp.llama_vocab_is_eog(vocab, row.next_token):
            row.finish = "eos"
            return
        row.generated += row.decoder.decode(self.llama.detokenize([row.next_token]))
        piece = row.tracker.update(row.generated)
        if piece:
            row.job.put(piece)
        if row.tracker.done:
            row.finish = "stop_rule"
        elif row.count >= row.budget:
            row.finish = "length"

    @staticmethod
    def _finish(row: _Sequence, started: float) -> None:
        row.job.put(
            Completion(
                text=row.tracker.text,
                input_tokens=len(row.prompt),
                output_tokens=row.count,
                seconds=time.perf_counter() - started,
                finish_reason=row.finish or "length",
            )
        )


def _fill(batch: Any, items: list[tuple[int, int, list[int], bool]]) -> None:
    """Put ``(token, position, sequence ids, wants logits)`` items into a ``LlamaBatch``."""
    raw = batch.batch
    raw.n_tokens = len(items)
    for i, (token, position, seqs, logits) in enumerate(items):
        raw.token[i] = token
        raw.pos[i] = position
        raw.n_seq_id[i] = len(seqs)
        for j, seq in enumerate(seqs):
            raw.seq_id[i][j] = seq
        raw.logits[i] = logits


def _decode(context: Any, batch: Any) -> None:
    import llama_cpp

    status = llama_cpp.llama_decode(context.ctx, batch.batch)
    if status != 0:
        raise RuntimeError(f"llama.cpp could not decode a batch of {batch.batch.n_tokens} tokens (status {status})")


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
