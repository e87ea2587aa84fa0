"""Each seed family's load-and-generate path, on tiny random-weight checkpoints (no Hub).

The test builds, for every family config class, a two-layer model and a small byte-level
BPE tokenizer into a temporary folder, then loads it by folder name through the real
``load_model`` → transformers path and generates through the role chat models: the
chat template path for instruct families, the completion path for StarCoder2 (base).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from llms import ModelLoadError, load_model

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "```python\nimport pytest\n\ndef test_add():\n    assert add(1, 2) == 3\n```\n",
    '{"score": 7, "recommendations": ["name things well"]}',
    "You are a Python programmer. Write a function that reverses a string.",
]
MESSAGES = [
    SystemMessage("You are a Python programmer. Answer with one fenced code block."),
    HumanMessage("Write add(a, b)."),
]


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def _tiny(config_cls: Any, **extra: Any) -> Any:
    return config_cls(
        vocab_size=400,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
        **extra,
    )


FAMILIES = {
    "Starcoder2Config": (False, {}),
    "MistralConfig": (True, {"sliding_window": None}),
    "Qwen2Config": (True, {}),
    "Qwen3Config": (True, {"head_dim": 8}),
    "LlamaConfig": (True, {}),
}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch

    torch.manual_seed(0)
    tokenizer = _tokenizer()
    folders = {}
    for family, (chat, extra) in FAMILIES.items():
        config = _tiny(getattr(transformers, family), **extra)
        model = transformers.AutoModelForCausalLM.from_config(config)
        folder = tmp_path_factory.mktemp(family.lower())
        model.save_pretrained(folder)
        tokenizer.chat_template = CHAT_TEMPLATE if chat else None
        tokenizer.save_pretrained(folder)
        folders[family] = folder
    return folders


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_loads_and_generates(family: str, tiny_models: dict[str, Path]) -> None:
    loaded = load_model(str(tiny_models[family]), engine="transformers", device="cpu")
    assert loaded.engine == "transformers" and loaded.device == "cpu"
    assert loaded.describe()["dtype"] == "float32"
    assert load_model(str(tiny_models[family]), engine="transformers", device="cpu") is loaded
    reply = loaded.for_role("generator").invoke(MESSAGES, max_new_tokens=12)
    assert isinstance(reply, AIMessage)
    usage = reply.usage_metadata
    assert usage is not None and 0 < usage["output_tokens"] <= 12 and usage["input_tokens"] > 5
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert reply.response_metadata["model_name"] == str(tiny_models[family])
    assert reply.response_metadata["generation_seconds"] > 0
    chat_path = loaded.impl.chat
    assert chat_path is (family != "Starcoder2Config")
    if not chat_path:  # base models: the answer opens with the fence the prompt opened
        assert str(reply.content).startswith("```python\n")


def test_concurrent_calls_share_one_generate(tiny_models: dict[str, Path]) -> None:
    loaded = load_model(str(tiny_models["Qwen2Config"]), engine="transformers", device="cpu")
    queue = loaded.impl.queue
    queue.window_s = 0.2  # generous, so that threads started together land in one batch
    before = len(queue.batch_sizes)
    prompts = [f"Write function number {i}." for i in range(4)]
    replies: dict[int, AIMessage] = {}

    def call(i: int) -> None:
        messages = [MESSAGES[0], HumanMessage(prompts[i])]
        replies[i] = loaded.for_role("tester").invoke(messages, max_new_tokens=6 + i)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(queue.batch_sizes[before:]) > 1
    for i, reply in replies.items():
        assert reply.usage_metadata is not None
        assert reply.usage_metadata["output_tokens"] <= 6 + i


def test_tokens_stream_as_chat_model_events(tiny_models: dict[str, Path]) -> None:
    loaded = load_model(str(tiny_models["LlamaConfig"]), engine="transformers", device="cpu")
    model = loaded.for_role("generator").bind(max_new_tokens=8)

    async def collect() -> tuple[list[str], AIMessage]:
        events = [e async for e in model.astream_events(MESSAGES, version="v2")]
        reply = await model.ainvoke(MESSAGES)
        return [e["event"] for e in events], reply

    kinds, reply = asyncio.run(collect())
    assert kinds.count("on_chat_model_stream") >= 2
    assert "on_chat_model_end" in kinds
    assert reply.usage_metadata is not None


def test_missing_folder_is_a_model_load_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="empty"):
        load_model(str(empty), engine="transformers", device="cpu")


def test_failover_when_the_endpoint_is_down(tiny_models: dict[str, Path]) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    local = str(tiny_models["Qwen2Config"])
    chain = load_model(f"endpoint:http://127.0.0.1:{port}/v1#served,{local}")
    assert chain.engine == "endpoint+fallback"
    reply = chain.for_role("reviewer").invoke(MESSAGES, max_new_tokens=5)
    assert reply.response_metadata["model_name"] == local
    assert reply.usage_metadata is not None
