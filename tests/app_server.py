"""Start and stop a real `agentmem ui` server for integration and browser tests (never shipped in the package).

The server runs as a subprocess on a free loopback port with its own data folder; `start` waits until the runtime
(model included) is loaded, `stop` terminates that one process and waits for it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    home: Path
    log: Path

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(home: Path, base_model: Path, *, env: dict[str, str] | None = None, timeout: float = 240) -> Server:
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    full_env = dict(os.environ) | {"AGENTMEM_HOME": str(home), "AGENTMEM_BASE_MODEL": str(base_model),
                                   "GRADIO_ANALYTICS_ENABLED": "False"} | (env or {})
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from ui.cli import main; main()", "ui", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=full_env, stdin=subprocess.DEVNULL)
    server = Server(proc, f"http://127.0.0.1:{port}", home, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{server.tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as r:
                if json.load(r).get("ready"):
                    return server
        except OSError:
            pass
        time.sleep(0.5)
    stop(server)
    raise RuntimeError(f"the server did not get ready in {timeout} s:\n{server.tail()}")


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(10)


def publish_untrained_adapter(home: Path, base_model: Path, workdir: Path, *, pool: str = "default",
                              metrics: dict | None = None):
    """Publish a real PEFT adapter whose LoRA B matrices are zero (so it answers like the base model) into the
    registry of `home`: quicker than training when a test needs an adapter to be served, listed or rolled back."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from agentmem.manifest import Manifest
    from agentmem.registry import open_registry
    from agentmem.settings import load_settings

    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  task_type="CAUSAL_LM"))
    staged = Path(tempfile.mkdtemp(prefix="staged-adapter-", dir=workdir))
    peft_model.save_pretrained(staged)
    registry = open_registry(load_settings(home=home))
    try:
        return registry.publish(pool, staged, Manifest(base_model=str(base_model), metrics=metrics or {}))
    finally:
        registry.close()
