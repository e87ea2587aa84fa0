"""The packaged default model, for real: both engines, early stopping, usage, streaming."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from llms import DEFAULT_MODEL, check_model, load_model

pytestmark = pytest.mark.slow

CODE_TASK = [
    SystemMessage("You are a Python programmer. Reply with exactly one fenced python code block."),
    HumanMessage("Write is_palindrome(s) that ignores case."),
]
REVIEW_TASK = [
    SystemMessage('Review the code. Reply with one JSON object: {"score": 0-10, "recommendations": [...]}.'),
    HumanMessage("def add(a, b):\n    return a+b"),
]


def _check_code_reply(reply: AIMessage, budget: int) -> None:
    text = str(reply.content)
    assert text.count("```") == 2 and text.rstrip().endswith("```"), text
    assert "def is_palindrome" in text
    meta = reply.response_metadata
    assert meta["model_name"] == DEFAULT_MODEL
    assert meta["finish_reason"] == "stop_rule"
    assert meta["generation_seconds"] > 0
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 20
    # Early stop for real: generation ended at the closing fence, far short of the budget.
    assert 20 < usage["output_tokens"] < budget


@pytest.mark.parametrize("engine", ["llama.cpp", "transformers"])
def test_default_model_writes_a_fenced_block_and_stops(engine: str) -> None:
    loaded = load_model(DEFAULT_MODEL, engine=engine, device="cpu")
    assert loaded.name == DEFAULT_MODEL and loaded.engine == engine
    reply = loaded.for_role("generator").invoke(CODE_TASK)
    _check_code_reply(reply, budget=512)
    review = loaded.for_role("reviewer").invoke(REVIEW_TASK)
    text = str(review.content)
    assert text.rstrip().endswith("}") and review.response_metadata["finish_reason"] == "stop_rule"


def test_default_engine_on_cpu_is_llama_cpp_and_fast_to_load() -> None:
    loaded = load_model()
    assert loaded is load_model(None)
    assert loaded.engine == "llama.cpp"
    assert loaded.load_s < 5


def test_default_model_streams_tokens_as_events() -> None:
    model = load_model(DEFAULT_MODEL, engine="llama.cpp", device="cpu").for_role("generator")

    async def collect() -> tuple[list[str], AIMessage]:
        events = [e async for e in model.astream_events(CODE_TASK, version="v2")]
        streamed = [e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream"]
        end = next(e for e in events if e["event"] == "on_chat_model_end")
        return streamed, end["data"]["output"]

    streamed, final = asyncio.run(collect())
    assert len(streamed) > 10
    assert "".join(streamed) == final.content
    assert final.usage_metadata is not None and final.response_metadata["model_name"] == DEFAULT_MODEL


def test_check_model_reports_speed() -> None:
    info = check_model(DEFAULT_MODEL)
    assert info["engine"] == "llama.cpp" and info["tokens_per_s"] > 0 and info["output_tokens"] > 0


@pytest.mark.parametrize("engine", ["llama.cpp", "transformers"])
def test_seeded_sampling_repeats_and_seeds_differ(engine: str) -> None:
    generator = load_model(DEFAULT_MODEL, engine=engine, device="cpu").for_role("generator")
    task = [HumanMessage("Name ten different fruits, one per line.")]

    def sample(seed: int) -> str:
        return str(generator.bind(temperature=1.0, seed=seed, max_new_tokens=24).invoke(task).content)

    first, other, again = sample(1), sample(2), sample(1)
    assert first == again and first != other


def test_llama_cpp_decodes_calls_made_at_once_as_one_batch() -> None:
    from concurrent.futures import ThreadPoolExecutor

    loaded = load_model(DEFAULT_MODEL, engine="llama.cpp", device="cpu")
    assert loaded.decodes_together and loaded.describe()["decodes_together"] is True
    loaded.impl.queue.window_s = 0.2  # generous, so that threads started together land in one batch
    generator = loaded.for_role("generator")
    greedy = generator.bind(max_new_tokens=40)
    calls = [greedy] + [generator.bind(temperature=1.0, seed=seed, max_new_tokens=24) for seed in (1, 2, 3)]

    def together() -> tuple[list[AIMessage], list[int]]:
        sizes = loaded.impl.queue.batch_sizes
        before = len(sizes)
        with ThreadPoolExecutor(len(calls)) as pool:
            replies = list(pool.map(lambda call: call.invoke(CODE_TASK), calls))
        return replies, sizes[before:]

    first, sizes = together()
    assert sizes == [4]  # one decode for the four calls
    again, sizes = together()
    assert sizes == [4]
    # A batch need not repeat to the bit: run again, one sample of three once differed
    # (the shared prompt's cache and the sequences' cells can lie otherwise), so only
    # the shape of the answers is checked here.
    assert all("def is_palindrome" in str(r.content) for r in again[:1])
    assert len({str(r.content) for r in first[1:]}) == 3  # each call samples with its own seed
    # Greedy in a batch is a sound answer, though not always greedy alone's to the letter:
    # batched matrix products sum in another order, enough to flip a near-tie token.
    assert "def is_palindrome" in str(first[0].content) and "def is_palindrome" in str(greedy.invoke(CODE_TASK).content)
    for reply, budget in zip(first, (40, 24, 24, 24), strict=True):
        usage = reply.usage_metadata
        assert usage is not None and 0 < usage["output_tokens"] <= budget
        assert reply.response_metadata["finish_reason"] in ("stop_rule", "eos", "length")
