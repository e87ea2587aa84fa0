"""How fast the model layer is next to the engines it wraps, on the packaged default model.

Run ``python -m benchmarks.models [--quick] [--json]``. In one run it reports:

- load times: llama.cpp (first and second load in this process) and transformers
  (from the converted checkpoint; ``--cold`` also converts the GGUF from scratch);
- tokens/s of the project's generation path against the raw engine on the same model,
  prompt and token count: transformers (``model.generate``) and llama.cpp
  (``Llama.create_chat_completion``) — goal ≥ 0.95;
- the CPU default (``load_model().for_role("generator")``, stop rule on) against
  llama.cpp direct generating the same number of tokens — goal ≥ 0.9;
- aggregate tokens/s of 1, 4 and 8 concurrent requests on the transformers path,
  batched into one ``generate`` against one at a time;
- the same for 1 and 5 concurrent requests on the llama.cpp path (five: the loop's
  sampled candidates), decoded as one batch against one at a time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

logger = logging.getLogger("benchmarks.models")

SYSTEM = "You are a Python programmer. Reply with exactly one fenced python code block."
TASKS = [
    "Write is_palindrome(s) that ignores case.",
    "Write fizzbuzz(n) returning a list of strings.",
    "Write a function that merges two sorted lists.",
    "Write a function that counts the words in a text.",
    "Write a function that flattens a nested list.",
    "Write a function that returns the n-th Fibonacci number.",
    "Write a function that checks whether a number is prime.",
    "Write a function that reverses the words of a sentence.",
]


def _messages(task: str) -> list[BaseMessage]:
    return [SystemMessage(SYSTEM), HumanMessage(task)]


def _dicts(task: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]


def _timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def bench_loads(cold: bool) -> dict[str, Any]:
    """Load times of both engines, in seconds."""
    from llms.devices import plan_device
    from llms.engines.llamacpp_engine import load_llama_cpp
    from llms.engines.transformers_engine import load_transformers
    from llms.presets import DEFAULT_MODEL, PRESETS

    preset = PRESETS[DEFAULT_MODEL]
    plan = plan_device("cpu")
    out: dict[str, Any] = {}
    _, out["llama.cpp first load_s"] = _timed(lambda: load_llama_cpp(preset, plan))
    _, out["llama.cpp second load_s"] = _timed(lambda: load_llama_cpp(preset, plan))
    if cold:
        previous = os.environ.get("STARCODER_AGENTS_CACHE")
        with tempfile.TemporaryDirectory() as scratch:
            os.environ["STARCODER_AGENTS_CACHE"] = scratch
            try:
                _, out["transformers cold load_s (GGUF convert)"] = _timed(lambda: load_transformers(preset, plan))
            finally:
                if previous is None:
                    os.environ.pop("STARCODER_AGENTS_CACHE", None)
                else:
                    os.environ["STARCODER_AGENTS_CACHE"] = previous
    engine, out["transformers warm load_s"] = _timed(lambda: load_transformers(preset, plan))
    out["_engine"] = engine
    return out


def _ratio(ours: list[float], raw: list[float]) -> dict[str, float]:
    a, b = statistics.median(ours), statistics.median(raw)
    return {"project_tok_s": round(a, 2), "raw_tok_s": round(b, 2), "ratio": round(a / b, 3)}


def bench_llama_cpp(tokens: int, repeats: int) -> dict[str, Any]:
    """The project's llama.cpp path against ``create_chat_completion``, same token count."""
    from llms import load_model
    from llms.chat import EngineChatModel
    from llms.presets import RoleSettings

    loaded = load_model(engine="llama.cpp", device="cpu")
    llama = loaded.impl.llama
    fixed = EngineChatModel(
        engine=loaded.impl,
        settings=RoleSettings(max_new_tokens=tokens, stop=None),
        model_name=loaded.name,
    )
    default = load_model().for_role("generator")
    fixed_ours, fixed_raw, default_ours, default_raw = [], [], [], []
    for i in range(repeats):
        task = TASKS[i % len(TASKS)]

        def raw(n: int, task: str = task) -> float:
            llama.reset()  # no prompt cache: both sides process the prompt in full
            reply, seconds = _timed(lambda: llama.create_chat_completion(_dicts(task), max_tokens=n, temperature=0.0))
            return reply["usage"]["completion_tokens"] / seconds

        def ours(model: Any, task: str = task) -> tuple[int, float]:
            llama.reset()
            reply, seconds = _timed(lambda: model.invoke(_messages(task)))
            n = reply.usage_metadata["output_tokens"]
            return n, n / seconds

        n, speed = ours(fixed)
        fixed_ours.append(speed)
        fixed_raw.append(raw(n))
        n, speed = ours(default)
        default_ours.append(speed)
        default_raw.append(raw(n))
    return {
        "llama.cpp path vs create_chat_completion": _ratio(fixed_ours, fixed_raw),
        "CPU default (stop rule on) vs llama.cpp direct": _ratio(default_ours, default_raw),
    }


def bench_transformers(engine: Any, tokens: int, repeats: int) -> dict[str, Any]:
    """The project's transformers path against ``model.generate``, same token count."""
    import torch

    from llms.chat import EngineChatModel
    from llms.presets import RoleSettings

    chat = EngineChatModel(
        engine=engine,
        settings=RoleSettings(max_new_tokens=tokens, stop=None),
        model_name=engine.preset.name,
    )
    chat.invoke(_messages(TASKS[0]), max_new_tokens=4)  # warm-up: first-call allocations

    def raw(task: str, n: int) -> float:
        prompt, _ = engine.prompt(_dicts(task), chat.settings)
        encoded = engine.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out, seconds = _timed(
                lambda: engine.model.generate(
                    **encoded,
                    max_new_tokens=n,
                    min_new_tokens=n,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=engine.tokenizer.pad_token_id,
                )
            )
        return float(out.shape[1] - encoded["input_ids"].shape[1]) / seconds

    def ours(task: str) -> float:
        reply, seconds = _timed(lambda: chat.invoke(_messages(task)))
        return float(reply.usage_metadata["output_tokens"]) / seconds

    ours_speeds, raw_speeds = [], []
    for i in range(repeats):
        task = TASKS[i % len(TASKS)]
        if i % 2:  # alternate the order, so neither side always runs on a warmer machine
            raw_speeds.append(raw(task, tokens))
            ours_speeds.append(ours(task))
        else:
            ours_speeds.append(ours(task))
            raw_speeds.append(raw(task, tokens))
    return {"transformers path vs model.generate": _ratio(ours_speeds, raw_speeds)}


def bench_batching(engine: Any, tokens: int, sizes: list[int]) -> list[dict[str, Any]]:
    """Aggregate tokens/s of N concurrent requests: batched against one at a time."""
    from llms.chat import EngineChatModel
    from llms.presets import RoleSettings

    chat = EngineChatModel(
        engine=engine,
        settings=RoleSettings(max_new_tokens=tokens, stop=None),
        model_name=engine.preset.name,
    )
    rows = []
    for size in sizes:
        row: dict[str, Any] = {"concurrent": size}
        for label, max_batch in (("one_at_a_time", 1), ("batched", 8)):
            engine.queue.max_batch = max_batch
            counts: list[int] = []
            lock = threading.Lock()

            def call(i: int, counts: list[int] = counts, lock: threading.Lock = lock) -> None:
                reply = chat.invoke(_messages(TASKS[i % len(TASKS)]))
                with lock:
                    counts.append(reply.usage_metadata["output_tokens"] if reply.usage_metadata else 0)

            threads = [threading.Thread(target=call, args=(i,)) for i in range(size)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            row[f"{label}_tok_s"] = round(sum(counts) / wall, 2)
            row[f"{label}_wall_s"] = round(wall, 2)
        row["speedup"] = round(row["batched_tok_s"] / row["one_at_a_time_tok_s"], 2)
        rows.append(row)
    engine.queue.max_batch = 8
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its report to stdout."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.models", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer tokens and repeats")
    parser.add_argument("--cold", action="store_true", help="also time a GGUF conversion")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    llama_tokens, hf_tokens, batch_tokens, repeats = (128, 24, 16, 2) if args.quick else (256, 64, 32, 3)
    report: dict[str, Any] = {}
    logger.info("timing loads ...")
    loads = bench_loads(args.cold)
    engine = loads.pop("_engine")
    report["loads"] = {k: round(v, 2) for k, v in loads.items()}
    logger.info("llama.cpp: project path vs direct ...")
    report.update(bench_llama_cpp(llama_tokens, repeats))
    logger.info("transformers: project path vs model.generate ...")
    report.update(bench_transformers(engine, hf_tokens, repeats))
    logger.info("transformers: batched vs one at a time ...")
    report["batching"] = bench_batching(engine, batch_tokens, [1, 4, 8])
    logger.info("llama.cpp: batched vs one at a time ...")
    from llms import load_model

    report["batching_llama_cpp"] = bench_batching(
        load_model(engine="llama.cpp", device="cpu").impl, llama_tokens, [1, 5]
    )
    report["settings"] = {
        "llama_cpp_tokens": llama_tokens,
        "transformers_tokens": hf_tokens,
        "batch_tokens_per_request": batch_tokens,
        "llama_cpp_batch_tokens_per_request": llama_tokens,
        "repeats": repeats,
        "threads": engine.model.device.type == "cpu" and __import__("torch").get_num_threads(),
    }
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return 0
    lines = ["loads (s):"]
    lines += [f"  {k:<42} {v}" for k, v in report["loads"].items()]
    for key in (
        "transformers path vs model.generate",
        "llama.cpp path vs create_chat_completion",
        "CPU default (stop rule on) vs llama.cpp direct",
    ):
        r = report[key]
        lines.append(f"{key:<48} ours {r['project_tok_s']:>7} tok/s  raw {r['raw_tok_s']:>7} tok/s  ratio {r['ratio']}")
    for engine_name, key in (("transformers", "batching"), ("llama.cpp", "batching_llama_cpp")):
        lines.append(f"batching ({engine_name}, aggregate tok/s):")
        lines.append(f"  {'concurrent':>10} {'one-at-a-time':>14} {'batched':>10} {'speedup':>8}")
        for row in report[key]:
            lines.append(
                f"  {row['concurrent']:>10} {row['one_at_a_time_tok_s']:>14} {row['batched_tok_s']:>10} "
                f"{row['speedup']:>8}"
            )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
