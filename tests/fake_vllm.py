"""A tiny stand-in for vLLM's OpenAI-compatible server (never shipped): the routes the vLLM backend uses, with
vLLM's response and error shapes, so unit tests exercise the real HTTP client without a model.

Answers are deterministic: "<model> says: <last user message>", one word per token. Tokens are words; a token's
prompt logprob is -(id % 7 + 1) / 10. `delay_s` makes chat answers slow (timeouts), `piece_delay_s` slows each
streamed piece, a message containing BOOM gets vLLM's engine-failure 500, and requests are recorded.
Run as a script it serves on --host/--port and accepts (and ignores) vLLM's other flags, which lets the tests
drive `agentmem vllm start|stop` through a fake venv whose bin/python runs this file.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def token_id(word: str) -> int:
    return zlib.crc32(word.encode()) % 5000


def prompt_logprob(token: int) -> float:
    return -(token % 7 + 1) / 10


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # a client that timed out and left: expected
        pass


class FakeVLLM:
    def __init__(self, base: str = "base-model", host: str = "127.0.0.1", port: int = 0):
        self.base = base
        self.adapters: dict[str, str] = {}
        self.delay_s = 0.0
        self.piece_delay_s = 0.0  # between streamed pieces: slow but progressing
        self.requests: list[tuple[str, dict]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self.server = _QuietServer((host, port), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> FakeVLLM:
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, model: str, messages: list[dict]) -> list[str]:
        last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        words = f"{model} says: {last}".split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _handler(fake: FakeVLLM):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _json(self, status: int, data) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, kind: str = "BadRequestError") -> None:
            self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": status}})

        def _text(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._text(200, "")
            elif self.path == "/version":
                self._json(200, {"version": "fake"})
            elif self.path == "/v1/models":
                cards = [{"id": fake.base, "object": "model", "root": fake.base, "parent": None}]
                cards += [{"id": n, "object": "model", "root": p, "parent": fake.base} for n, p in fake.adapters.items()]
                self._json(200, {"object": "list", "data": cards})
            else:
                self._error(404, "Not Found", "NotFoundError")

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with fake._lock:
                fake.requests.append((self.path, body))
                fake.active += 1
                fake.max_active = max(fake.max_active, fake.active)
            try:
                self._route(body)
            finally:
                with fake._lock:
                    fake.active -= 1

        def _route(self, body: dict) -> None:
            model = body.get("model")
            if self.path in ("/v1/chat/completions", "/v1/completions", "/tokenize") and model is not None \
                    and model != fake.base and model not in fake.adapters:
                return self._error(404, f"The model `{model}` does not exist.", "NotFoundError")
            if self.path == "/v1/load_lora_adapter":
                name, path = body.get("lora_name"), body.get("lora_path")
                if name in fake.adapters:
                    return self._error(400, f"The lora adapter '{name}' has already been loaded. If you want to "
                                            "load the adapter in place, set 'load_inplace' to True.")
                if not (Path(path) / "adapter_config.json").is_file():
                    return self._error(404, f"Loading lora {name} failed: No adapter found for {path}",
                                       "NotFoundError")
                rank = json.loads((Path(path) / "adapter_config.json").read_text()).get("r", 8)
                if rank > 16:
                    return self._error(500, f"LoRA rank {rank} is greater than max_lora_rank 16.",
                                       "InternalServerError")
                fake.adapters[name] = path
                return self._text(200, f"Success: LoRA adapter '{name}' added successfully.")
            if self.path == "/v1/unload_lora_adapter":
                name = body.get("lora_name")
                if name not in fake.adapters:
                    return self._error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
                del fake.adapters[name]
                return self._text(200, f"Success: LoRA adapter '{name}' removed successfully.")
            if self.path == "/tokenize":
                tokens = [token_id(w) for w in body["prompt"].split()]
                return self._json(200, {"count": len(tokens), "max_model_len": 8192, "tokens": tokens})
            if self.path == "/v1/completions":
                return self._completions(body)
            if self.path == "/v1/chat/completions":
                time.sleep(fake.delay_s)
                if any("BOOM" in m["content"] for m in body["messages"]):
                    return self._error(500, "EngineCore encountered an issue. See stack trace (above) for the root "
                                            "cause.", "InternalServerError")
                return self._chat(body)
            self._error(404, "Not Found", "NotFoundError")

        def _completions(self, body: dict) -> None:
            choices = []
            for i, ids in enumerate(body["prompt"]):
                lps = [None] + [{str(t): {"logprob": prompt_logprob(t), "rank": 1, "decoded_token": "x"}}
                                for t in ids[1:]]
                choices.append({"index": i, "text": " x", "finish_reason": "length", "prompt_logprobs": lps})
            self._json(200, {"object": "text_completion", "model": body["model"], "choices": choices})

        def _chat(self, body: dict) -> None:
            pieces = fake.answer(body["model"], body["messages"])
            finish = "stop"
            if len(pieces) > body.get("max_tokens", 16):
                pieces, finish = pieces[: body["max_tokens"]], "length"
            text = "".join(pieces)
            for stop in body.get("stop") or []:
                if stop in text:
                    text, finish = text[: text.index(stop)], "stop"
            if not body.get("stream"):
                return self._json(200, {
                    "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": finish}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": len(pieces), "total_tokens": 5 + len(pieces)},
                })
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(0, len(text), 4):  # 4-character pieces: stop strings can straddle them
                time.sleep(fake.piece_delay_s)
                self._event({"choices": [{"index": 0, "delta": {"content": text[i : i + 4]}, "finish_reason": None}]})
            self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                self._event({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": len(pieces),
                                                      "total_tokens": 5 + len(pieces)}})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _event(self, data: dict) -> None:
            self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

    return Handler


def main(argv: list[str]) -> None:
    """As a fake `python -m vllm.entrypoints.openai.api_server ...`: serve until killed."""
    if argv[:1] == ["-m"]:
        argv = argv[2:]
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="base-model")
    parser.add_argument("--served-model-name", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--crash", action="store_true", help="exit at once with an error (a failed start)")
    parser.add_argument("--startup-delay", type=float, default=0.0, help="seconds before listening")
    parser.add_argument("--engine-child", action="store_true",
                        help="also run an 'engine' child process, as vLLM does (it outlives a SIGKILLed parent)")
    args, _ = parser.parse_known_args(argv)
    if args.engine_child:
        import subprocess

        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "VLLM::EngineCore"])
    if args.crash:
        print("RuntimeError: fake engine failed to start", flush=True)
        sys.exit(3)
    time.sleep(args.startup_delay)
    fake = FakeVLLM(args.served_model_name or args.model, args.host, args.port)
    print(f"fake vLLM serving on {fake.url}", flush=True)
    fake.server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
