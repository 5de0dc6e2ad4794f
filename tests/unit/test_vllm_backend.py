"""The vLLM backend against a fake OpenAI-compatible server (tests/fake_vllm.py): the request each call sends,
adapter naming and hot-loading, streaming, batching, scoring, and clear errors for a server that is down, slow
or failing. The same backend against a real vLLM server: tests/integration/test_vllm.py."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from agentmem.errors import AgentmemError, ModelError
from agentmem.llm.base import GenerationConfig
from agentmem.llm.vllm_backend import VLLMBackend
from tests.fake_vllm import FakeVLLM, prompt_logprob, token_id

HI = [{"role": "user", "content": "hello there friend"}]


@pytest.fixture
def fake():
    server = FakeVLLM().start()
    yield server
    server.stop()


@pytest.fixture
def backend(fake):
    b = VLLMBackend(fake.url, timeout_s=5)
    yield b
    b.close()


def adapter_dir(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8}))
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat_bodies(fake: FakeVLLM) -> list[dict]:
    return [b for path, b in fake.requests if path == "/v1/chat/completions"]


def test_generate_asks_the_base_model_by_its_served_name(backend, fake):
    g = backend.generate(HI, GenerationConfig(max_new_tokens=50))
    assert g.text == "base-model says: hello there friend" and g.adapter is None
    assert g.finish_reason == "stop" and g.completion_tokens == 5 and g.prompt_tokens == 5
    body = chat_bodies(fake)[-1]
    assert body["model"] == "base-model" and body["messages"] == HI and body["stream"] is True
    assert body["max_tokens"] == 50 and body["temperature"] == 0.0 and body["top_p"] == 1.0
    assert "stop" not in body and "seed" not in body


def test_generation_config_maps_to_the_request(backend, fake):
    backend.generate(HI, GenerationConfig(max_new_tokens=7, temperature=0.7, top_p=0.9, seed=3, stop=("x", "y")))
    body = chat_bodies(fake)[-1]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"], body["stop"]) == (
        7, 0.7, 0.9, 3, ["x", "y"])


def test_length_and_stop(backend):
    short = backend.generate(HI, GenerationConfig(max_new_tokens=2))
    assert short.text == "base-model says:" and short.finish_reason == "length"
    stopped = backend.generate(HI, GenerationConfig(max_new_tokens=50, stop=("there",)))
    assert stopped.text == "base-model says: hello " and stopped.finish_reason == "stop"
    assert "".join(backend.stream(HI, GenerationConfig(max_new_tokens=50, stop=("there",)))) == stopped.text


def test_stream_equals_generate(backend, fake):
    pieces = list(backend.stream(HI, GenerationConfig(max_new_tokens=50)))
    assert len(pieces) > 3 and "".join(pieces) == backend.generate(HI, GenerationConfig(max_new_tokens=50)).text
    assert chat_bodies(fake)[0]["stream"] is True


def test_adapters_are_named_per_request_and_hot_loaded(backend, fake, tmp_path):
    v1 = adapter_dir(tmp_path, "v1")
    backend.load_adapter("default-v1-aaaa", str(v1))
    backend.load_adapter("default-v1-aaaa", str(v1))  # loading the same version again is a no-op
    assert backend.adapters() == ["default-v1-aaaa"]
    assert fake.adapters == {"default-v1-aaaa": str(v1.resolve())}
    g = backend.generate(HI, adapter="default-v1-aaaa")
    assert g.text.startswith("default-v1-aaaa says:") and g.adapter == "default-v1-aaaa"
    assert chat_bodies(fake)[-1]["model"] == "default-v1-aaaa"
    assert backend.generate(HI).text.startswith("base-model says:")  # None still means the base model
    with pytest.raises(AgentmemError, match="new serving name"):
        backend.load_adapter("default-v1-aaaa", str(adapter_dir(tmp_path, "other")))
    backend.unload_adapter("default-v1-aaaa")
    assert backend.adapters() == [] and fake.adapters == {}
    backend.unload_adapter("default-v1-aaaa")  # unloading twice is harmless
    assert backend.info()["adapters"] == []


def test_unknown_adapter_and_bad_folder_are_clear_errors(backend, tmp_path):
    with pytest.raises(AgentmemError, match="not loaded"):
        backend.generate(HI, adapter="nope")
    with pytest.raises(AgentmemError, match="not loaded"):
        list(backend.stream(HI, adapter="nope"))
    with pytest.raises(ModelError, match="adapter_config.json"):
        backend.load_adapter("x", str(tmp_path))
    too_big = adapter_dir(tmp_path, "big")
    (too_big / "adapter_config.json").write_text(json.dumps({"r": 64}))
    with pytest.raises(ModelError, match="cannot load adapter .*greater than max_lora_rank") as err:
        backend.load_adapter("big", str(too_big))
    assert "AGENTMEM_VLLM_MAX_LORA_RANK" in err.value.hint


def test_an_adapter_the_server_lost_is_loaded_again(backend, fake, tmp_path):
    backend.load_adapter("p-v1-x", str(adapter_dir(tmp_path, "v1")))
    fake.adapters.clear()  # as after a server restart
    assert backend.generate(HI, adapter="p-v1-x").text.startswith("p-v1-x says:")
    fake.adapters.clear()
    assert "".join(backend.stream(HI, adapter="p-v1-x")).startswith("p-v1-x says:")


def test_unload_waits_for_requests_in_flight_on_the_adapter(backend, fake, tmp_path):
    backend.load_adapter("p-v1-x", str(adapter_dir(tmp_path, "v1")))
    fake.delay_s = 0.6
    answers: list[str] = []
    worker = threading.Thread(target=lambda: answers.append(backend.generate(HI, adapter="p-v1-x").text))
    worker.start()
    time.sleep(0.2)
    start = time.perf_counter()
    backend.unload_adapter("p-v1-x")
    assert time.perf_counter() - start > 0.2  # it waited for the answer
    worker.join()
    assert answers and answers[0].startswith("p-v1-x says:") and fake.adapters == {}


def test_generate_batch_sends_concurrent_requests_in_order(backend, fake):
    fake.delay_s = 0.3
    batch = [[{"role": "user", "content": f"question {i}"}] for i in range(8)]
    start = time.perf_counter()
    out = backend.generate_batch(batch, GenerationConfig(max_new_tokens=20))
    elapsed = time.perf_counter() - start
    assert [g.text for g in out] == [f"base-model says: question {i}" for i in range(8)]
    assert fake.max_active >= 4 and elapsed < 8 * 0.3  # concurrent, so vLLM can batch them
    assert backend.generate_batch([]) == []


def test_generate_batch_sends_each_rows_own_budget(backend, fake):
    batch = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]
    backend.generate_batch(batch, GenerationConfig(max_new_tokens=30), budgets=[5, 50, 12])
    sent = {b["messages"][-1]["content"]: b["max_tokens"] for b in chat_bodies(fake)}
    assert sent == {"question 0": 5, "question 1": 30, "question 2": 12}  # never above the config's


def test_score_continuations_sums_prompt_logprobs_of_the_continuation(backend, fake):
    prompt, conts = "Question: sky colour? Answer:", [" blue", " dark green sea"]
    scores = backend.score_continuations(prompt, conts)
    head = [token_id(w) for w in prompt.split()]
    for (total, n), cont in zip(scores, conts):
        ids = [token_id(w) for w in cont.split()]
        assert n == len(ids) and total == pytest.approx(sum(prompt_logprob(t) for t in ids))
    completions = [b for path, b in fake.requests if path == "/v1/completions"]
    assert len(completions) == 1  # every row in one request
    assert completions[0]["prompt"][0][: len(head)] == head and completions[0]["prompt_logprobs"] == 0
    assert completions[0]["model"] == "base-model"
    assert backend.count_tokens("one two three") == 3


def test_a_server_that_is_down_is_a_clear_error_not_a_hang(settings):
    url = f"http://127.0.0.1:{free_port()}"
    backend = VLLMBackend(url, timeout_s=5)
    start = time.perf_counter()
    with pytest.raises(ModelError, match="not reachable") as err:
        backend.generate(HI)
    assert "agentmem vllm start" in err.value.hint
    with pytest.raises(ModelError, match="not reachable"):
        list(backend.stream(HI))
    assert backend.info()["error"].startswith("the vLLM server")  # the status page still renders
    assert time.perf_counter() - start < 5
    from agentmem.llm import open_backend

    with pytest.raises(ModelError, match="not reachable"):
        open_backend(settings.model_copy(update={"llm_backend": "vllm", "vllm_url": url}))


def test_a_slow_server_times_out_with_a_hint(fake):
    backend = VLLMBackend(fake.url, timeout_s=0.5)
    backend.base_model_name()
    fake.delay_s = 3
    start = time.perf_counter()
    with pytest.raises(ModelError, match="did not answer within 0.5 s") as err:
        backend.generate(HI)
    assert "AGENTMEM_VLLM_TIMEOUT_S" in err.value.hint
    with pytest.raises(ModelError, match="did not answer"):
        list(backend.stream(HI))
    assert time.perf_counter() - start < 2.5


def test_a_long_answer_that_keeps_coming_is_not_a_timeout(fake):
    """The timeout bounds the wait for each piece, not for the whole answer: on a loaded server (evaluation
    beside 16 chats) a long answer took over 120 s and failed a consolidation run while still progressing."""
    backend = VLLMBackend(fake.url, timeout_s=0.5)
    backend.base_model_name()
    fake.piece_delay_s = 0.2  # 9 pieces: about 1.8 s in all, each within the timeout
    start = time.perf_counter()
    g = backend.generate(HI, GenerationConfig(max_new_tokens=50))
    assert g.text == "base-model says: hello there friend" and g.completion_tokens == 5
    assert time.perf_counter() - start > 0.5  # longer than the timeout, and it answered
    assert [g.text] == [x.text for x in backend.generate_batch([HI], GenerationConfig(max_new_tokens=50))]


def test_a_failing_engine_is_a_model_error(backend):
    with pytest.raises(ModelError, match="failed: EngineCore"):
        backend.generate([{"role": "user", "content": "BOOM"}])
    with pytest.raises(ModelError, match="failed: EngineCore"):
        list(backend.stream([{"role": "user", "content": "BOOM"}]))
    with pytest.raises(AgentmemError, match="no messages"):
        backend.generate([])


def test_open_backend_picks_vllm(settings, fake):
    from agentmem.llm import open_backend

    backend = open_backend(settings.model_copy(update={"llm_backend": "vllm", "vllm_url": fake.url}))
    assert isinstance(backend, VLLMBackend) and backend.info()["model"] == "base-model"


def test_adapter_serving_switches_versions_and_unloads_the_old_after_draining(settings, fake, tmp_path):
    """What consolidation's publish and rollback do (AdapterServing.refresh) works with this backend."""
    from agentmem.manifest import Manifest
    from agentmem.registry import open_registry
    from agentmem.serving import AdapterServing

    backend = VLLMBackend(fake.url, timeout_s=5)
    with open_registry(settings) as registry:
        v1 = registry.publish("p", adapter_dir(tmp_path, "s1"), Manifest(base_model="base-model"))
        serving = AdapterServing(backend, registry)
        with serving.use("p") as name:
            assert name == v1.serving_name and backend.generate(HI, adapter=name).text.startswith(name)
            v2 = registry.publish("p", adapter_dir(tmp_path, "s2"), Manifest(base_model="base-model"))
            assert serving.refresh("p") == v2.serving_name
            time.sleep(0.3)
            assert v1.serving_name in fake.adapters  # leased by this request: not unloaded yet
            assert backend.generate(HI, adapter=name).text.startswith(v1.serving_name)
        deadline = time.monotonic() + 5
        while v1.serving_name in fake.adapters and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(fake.adapters) == {v2.serving_name}
        assert fake.adapters[v2.serving_name] == str(v2.path.resolve())
        registry.rollback("p")
        assert serving.refresh("p") == v1.serving_name and v1.serving_name in fake.adapters
