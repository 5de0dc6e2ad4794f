"""The vLLM backend: the same LLMBackend contract, answered by a vLLM OpenAI-compatible server over HTTP.

Each request names its model: an adapter's serving name, or the base model's served name (read from /v1/models).
Adapters are loaded and unloaded at run time (POST /v1/load_lora_adapter, /v1/unload_lora_adapter; the server
needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora). Batches go out as concurrent requests, which vLLM
batches itself. Every call has a timeout, and a server that is down, slow or failing is a ModelError with a hint.
It does not start or stop the server: see `agentmem.llm.vllm_server`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from agentmem.errors import AgentmemError, ModelError
from agentmem.llm.base import ChatMessage, Generation, GenerationConfig, LLMBackend, row_configs
from agentmem.llm.stops import StopTrimmer, trim_at_stop
from agentmem.settings import Settings

START_HINT = "start it with `agentmem vllm start`, or point AGENTMEM_VLLM_URL at a running vLLM server"


class AdapterNotLoaded(AgentmemError):
    """The server does not know the adapter named by a request."""


class ServerUnavailable(ModelError):
    """The server is down, or did not answer in time."""


class VLLMBackend(LLMBackend):
    name = "vllm"

    def __init__(self, url: str, *, timeout_s: float = 120.0, max_concurrency: int = 32,
                 transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self._client = httpx.Client(
            base_url=self.url, transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            limits=httpx.Limits(max_connections=max_concurrency + 8, max_keepalive_connections=max_concurrency),
        )
        self._base_name: str | None = None
        self._paths: dict[str, str] = {}  # adapters this process loaded: reloaded if the server lost them
        self._in_flight: Counter[str] = Counter()
        self._idle = threading.Condition()

    @classmethod
    def from_settings(cls, settings: Settings) -> VLLMBackend:
        backend = cls(settings.vllm_url, timeout_s=settings.vllm_timeout_s)
        backend.base_model_name()  # fail now, with a hint, when the server is not there
        return backend

    # -- HTTP ----------------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        try:
            response = self._client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise self._timeout_error(exc) from exc
        except httpx.TransportError as exc:
            raise self._down_error(exc) from exc
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.text, body)
        return response

    def _down_error(self, exc: Exception) -> ServerUnavailable:
        return ServerUnavailable(f"the vLLM server at {self.url} is not reachable ({type(exc).__name__})", START_HINT)

    def _timeout_error(self, exc: Exception) -> ServerUnavailable:
        return ServerUnavailable(
            f"the vLLM server at {self.url} did not answer within {self.timeout_s:g} s ({type(exc).__name__})",
            "it is overloaded or stuck: see its log (agentmem vllm status), or raise AGENTMEM_VLLM_TIMEOUT_S",
        )

    def _status_error(self, status: int, text: str, body: dict | None) -> AgentmemError:
        message = _error_message(text)
        model = (body or {}).get("model")
        if status == 404 and model and model != self._base_name and "does not exist" in message:
            return AdapterNotLoaded(f"adapter {model!r} is not loaded on the vLLM server at {self.url}",
                                    "load it first (adapters are re-loaded by `agentmem vllm start`)")
        if status >= 500:
            return ModelError(f"the vLLM server at {self.url} failed: {message}", "see its log: agentmem vllm status")
        return AgentmemError(f"the vLLM server refused the request ({status}): {message}",
                             "check the request's parameters against the server's limits")

    # -- models and adapters -------------------------------------------------------------------------------
    def _models(self) -> list[dict]:
        return self._send("GET", "/v1/models").json().get("data", [])

    def base_model_name(self) -> str:
        """The base model's served name: the one model card without a parent."""
        if self._base_name is None:
            roots = [m["id"] for m in self._models() if not m.get("parent")]
            if not roots:
                raise ModelError(f"the vLLM server at {self.url} lists no base model", START_HINT)
            self._base_name = roots[0]
        return self._base_name

    def adapters(self) -> list[str]:
        return sorted(m["id"] for m in self._models() if m.get("parent"))

    def load_adapter(self, name: str, path: str) -> None:
        folder = Path(path).resolve()  # the server runs elsewhere: it gets an absolute path (same machine)
        if not (folder / "adapter_config.json").is_file():
            raise ModelError(f"{folder} is not a PEFT adapter folder (no adapter_config.json)", "check the adapter path")
        known = self._paths.get(name)
        if known is not None and known != str(folder):
            raise AgentmemError(f"adapter name {name!r} is already loaded from {known}",
                                "every adapter version needs a new serving name")
        try:
            self._send("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(folder)})
        except AgentmemError as exc:
            if "already been loaded" in exc.message and name in self.adapters():
                self._paths[name] = str(folder)  # loaded earlier (another process, or before a restart of ours)
                return
            if isinstance(exc, ServerUnavailable):
                raise
            raise ModelError(f"the vLLM server cannot load adapter {folder}: {exc.message}",
                             "was it trained for this base model, with a rank within AGENTMEM_VLLM_MAX_LORA_RANK "
                             "(and was the server started with --enable-lora)?") from exc
        self._paths[name] = str(folder)

    def unload_adapter(self, name: str) -> None:
        with self._idle:  # requests this process sent on it finish first (the contract of LLMBackend)
            self._idle.wait_for(lambda: self._in_flight[name] <= 0, timeout=self.timeout_s)
        self._paths.pop(name, None)
        try:
            self._send("POST", "/v1/unload_lora_adapter", {"lora_name": name})
        except AgentmemError as exc:
            if "cannot be found" not in exc.message:  # already gone: nothing to do
                raise

    def _model(self, adapter: str | None) -> str:
        return adapter if adapter is not None else self.base_model_name()

    @contextlib.contextmanager
    def _leased(self, adapter: str | None) -> Iterator[None]:
        if adapter is None:
            yield
            return
        with self._idle:
            self._in_flight[adapter] += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight[adapter] -= 1
                self._idle.notify_all()

    def _post_model(self, path: str, body: dict, adapter: str | None) -> dict:
        """POST naming the adapter; re-load once an adapter this process loaded that the server lost (restart)."""
        try:
            return self._send("POST", path, body).json()
        except AdapterNotLoaded:
            if adapter is None or adapter not in self._paths:
                raise
            self._reload(adapter)
            return self._send("POST", path, body).json()

    def _reload(self, name: str) -> None:
        try:
            self._send("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": self._paths[name]})
        except AgentmemError as exc:
            if "already been loaded" not in exc.message:  # another thread got there first
                raise

    # -- generation ----------------------------------------------------------------------------------------
    def _chat_body(self, messages: Sequence[ChatMessage], config: GenerationConfig, adapter: str | None,
                   stream: bool) -> dict[str, Any]:
        if not messages:
            raise AgentmemError("no messages to answer", "pass at least one user message")
        body: dict[str, Any] = {
            "model": self._model(adapter), "messages": [dict(m) for m in messages],
            "max_tokens": config.max_new_tokens, "temperature": config.temperature,
            "top_p": 1.0 if config.greedy else config.top_p, "stream": stream,
        }
        if config.stop:
            body["stop"] = list(config.stop)
        if config.seed is not None:
            body["seed"] = config.seed
        return body

    def generate(
        self, messages: Sequence[ChatMessage], config: GenerationConfig | None = None, adapter: str | None = None
    ) -> Generation:
        """Streamed underneath, so that the timeout bounds the wait for each piece, not for the whole answer: on
        a busy server (a consolidation's evaluation beside many chats) a long answer may take minutes and still
        be progressing, while a stuck one sends nothing and times out."""
        config = config or GenerationConfig()
        body = self._chat_body(messages, config, adapter, stream=True)
        body["stream_options"] = {"include_usage": True}
        start = time.perf_counter()
        pieces: list[str] = []
        finish, usage = None, {}
        with self._leased(adapter):
            for chunk in self._sse_chunks(body, adapter):
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices", []):
                    pieces.append((choice.get("delta") or {}).get("content") or "")
                    finish = choice.get("finish_reason") or finish
        text, hit_stop = trim_at_stop("".join(pieces), config.stop)
        return Generation(
            text=text, adapter=adapter, prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)), seconds=time.perf_counter() - start,
            finish_reason=_finish(finish, hit_stop), extra={"model": body["model"]},
        )

    def stream(
        self, messages: Sequence[ChatMessage], config: GenerationConfig | None = None, adapter: str | None = None
    ) -> Iterator[str]:
        config = config or GenerationConfig()
        body = self._chat_body(messages, config, adapter, stream=True)
        trimmer = StopTrimmer(config.stop)
        with self._leased(adapter):
            for piece in self._sse(body, adapter):
                out = trimmer.feed(piece)
                if out:
                    yield out
                if trimmer.stopped:
                    return  # closing the response makes vLLM abort the request
            rest = trimmer.flush()
            if rest:
                yield rest

    def _sse(self, body: dict, adapter: str | None) -> Iterator[str]:
        for chunk in self._sse_chunks(body, adapter):
            for choice in chunk.get("choices", []):
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece

    def _sse_chunks(self, body: dict, adapter: str | None, *, retried: bool = False) -> Iterator[dict]:
        try:
            with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    error = self._status_error(response.status_code, response.read().decode(errors="replace"), body)
                    if isinstance(error, AdapterNotLoaded) and adapter in self._paths and not retried:
                        self._reload(adapter)
                        yield from self._sse_chunks(body, adapter, retried=True)
                        return
                    raise error
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    chunk = json.loads(payload)
                    if "error" in chunk:
                        raise ModelError(f"the vLLM server failed mid-answer: {_error_message(payload)}",
                                         "see its log: agentmem vllm status")
                    yield chunk
        except httpx.TimeoutException as exc:
            raise self._timeout_error(exc) from exc
        except httpx.TransportError as exc:
            raise self._down_error(exc) from exc

    def generate_batch(
        self, batch: Sequence[Sequence[ChatMessage]], config: GenerationConfig | None = None, adapter: str | None = None,
        *, drafts: Sequence[str | None] | None = None, budgets: Sequence[int] | None = None,
    ) -> list[Generation]:
        """One request per conversation, sent together: vLLM's scheduler batches them (drafts are not used)."""
        if not batch:
            return []
        configs = row_configs(len(batch), config or GenerationConfig(), budgets)
        with ThreadPoolExecutor(max_workers=min(len(batch), self.max_concurrency),
                                thread_name_prefix="vllm-batch") as pool:
            return list(pool.map(lambda messages, row: self.generate(messages, row, adapter), batch, configs))

    # -- tokens and scores ---------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        body = {"model": self.base_model_name(), "prompt": text, "add_special_tokens": False}
        return [int(t) for t in self._send("POST", "/tokenize", body).json()["tokens"]]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def score_continuations(
        self, prompt: str, continuations: Sequence[str], adapter: str | None = None
    ) -> list[tuple[float, int]]:
        """Prompt logprobs of prompt+continuation token ids (tokenized apart, as the in-process backend does),
        all rows in one /v1/completions request."""
        if not continuations:
            return []
        texts = [prompt, *continuations]
        with ThreadPoolExecutor(max_workers=min(len(texts), self.max_concurrency)) as pool:
            ids = list(pool.map(self.tokenize, texts))
        head, rows = ids[0], [ids[0] + c for c in ids[1:]]
        body = {"model": self._model(adapter), "prompt": rows, "max_tokens": 1, "temperature": 0.0,
                "prompt_logprobs": 0}
        with self._leased(adapter):
            data = self._post_model("/v1/completions", body, adapter)
        by_index = {int(c.get("index", i)): c for i, c in enumerate(data["choices"])}
        out = []
        for i, row in enumerate(rows):
            logprobs = by_index[i].get("prompt_logprobs") or []
            total = 0.0
            for position in range(len(head), len(row)):
                total += _token_logprob(logprobs[position], row[position])
            out.append((total, len(row) - len(head)))
        return out

    # -- status --------------------------------------------------------------------------------------------
    def info(self) -> dict:
        info: dict[str, Any] = {"backend": self.name, "url": self.url}
        try:
            models = self._models()
            info["model"] = next((m["id"] for m in models if not m.get("parent")), None)
            info["adapters"] = sorted(m["id"] for m in models if m.get("parent"))
            info["version"] = self._send("GET", "/version").json().get("version")
        except AgentmemError as exc:  # status pages must render while the server is down
            info["error"] = exc.message
        return info

    def close(self) -> None:
        self._client.close()


def _finish(reason: str | None, hit_stop: bool) -> str:
    if reason in ("abort", "error"):
        raise ModelError(f"the vLLM server ended the answer with {reason!r}", "see its log: agentmem vllm status")
    return "length" if reason == "length" and not hit_stop else "stop"


def _token_logprob(entry: dict | None, token: int) -> float:
    if not entry:
        raise ModelError("the vLLM server returned no prompt logprob for a continuation token",
                         "score with a non-empty prompt")
    value = entry.get(str(token), entry.get(token))  # type: ignore[call-overload]
    if value is None:
        raise ModelError(f"the vLLM server's prompt logprobs miss token {token}", "is the server's tokenizer the same?")
    return float(value["logprob"] if isinstance(value, dict) else value)


def _error_message(text: str) -> str:
    """vLLM's error bodies: {"error": {"message": ...}} (recent) or {"message": ...} (older); else the text."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:300] or "no details"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    return text.strip()[:300]
