"""`agentmem vllm start|stop|status` without vLLM: a fake venv whose bin/python runs tests/fake_vllm.py, so the
launch, the /health wait, the pid file shared across processes, adapter re-loading and the clear errors are the
real code paths. The real server: tests/integration/test_vllm.py."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentmem import vllm_server
from agentmem.errors import ConfigError, ModelError
from agentmem.settings import load_settings

FAKE = Path(__file__).resolve().parents[1] / "fake_vllm.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv-vllm"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    python.chmod(0o755)
    return venv


@pytest.fixture
def vsettings(fake_venv: Path, tmp_path: Path, monkeypatch):
    model = tmp_path / "tiny-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    monkeypatch.setenv("AGENTMEM_VLLM_VENV", str(fake_venv))
    monkeypatch.setenv("AGENTMEM_VLLM_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AGENTMEM_BASE_MODEL", str(model))
    monkeypatch.setenv("AGENTMEM_VLLM_START_TIMEOUT_S", "20")
    s = load_settings()
    yield s
    vllm_server.stop(load_settings(), grace_s=5)


def test_the_command_serves_the_base_model_on_loopback_with_runtime_lora(vsettings):
    cmd = vllm_server.server_command(vsettings, vsettings.base_model, Path("/venv/bin/python"))
    assert cmd[:5] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model",
                       str(vsettings.base_model)]
    joined = " ".join(cmd)
    assert "--host 127.0.0.1" in joined and "--enable-lora" in joined and "--max-lora-rank 16" in joined
    assert "--max-loras 4" in joined and "--dtype" in joined and "--lora-target-modules q_proj" in joined
    env = vllm_server.server_env(vsettings)
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True" and env["HF_HUB_OFFLINE"] == "1"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1" and "PYTHONPATH" not in env


def test_missing_venv_says_how_to_make_it(settings, tmp_path):
    s = settings.model_copy(update={"vllm_venv": tmp_path / "nowhere"})
    with pytest.raises(ModelError, match="vLLM environment is missing") as err:
        vllm_server.start(s)
    assert "./install.sh --vllm" in err.value.hint


def test_only_loopback_is_served(settings):
    with pytest.raises(ConfigError, match="this machine only"):
        vllm_server.host_port(settings.model_copy(update={"vllm_url": "http://10.1.2.3:8000"}))


def test_start_status_stop_across_processes_and_adapters_come_back(vsettings, tmp_path):
    from agentmem.manifest import Manifest
    from agentmem.registry import open_registry

    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "adapter_config.json").write_text(json.dumps({"r": 8}))
    with open_registry(vsettings) as registry:
        active = registry.publish("work", staged, Manifest(base_model="tiny-model"))

    steps: list[str] = []
    result = vllm_server.start(vsettings, progress=steps.append)
    assert not result.already_running and result.adapters == [active.serving_name] and not result.adapter_errors
    assert vsettings.vllm_pid_path.is_file() and Path(result.record.log).is_file()
    assert "agentmem vllm start" in Path(result.record.log).read_text()

    other = load_settings()  # another process: only the data folder is shared
    info = vllm_server.status(other)
    assert info["running"] and info["healthy"] and info["pid"] == result.record.pid
    assert info["adapters"] == [active.serving_name] and info["served_model"] == "tiny-model"
    again = vllm_server.start(other)
    assert again.already_running and again.record.pid == result.record.pid

    stopped = vllm_server.stop(other)
    assert stopped is not None and stopped.pid == result.record.pid
    assert not vsettings.vllm_pid_path.exists() and not Path(f"/proc/{result.record.pid}").exists()
    assert vllm_server.status(other)["running"] is False and vllm_server.stop(other) is None


def test_a_killed_server_leaves_an_engine_that_status_shows_and_start_or_stop_ends(vsettings, monkeypatch):
    """SIGKILL of vLLM's API server leaves its engine core running (seen with vllm-cpu 0.32): status must show
    it, and the next start (or stop) must end it rather than run a second engine beside it."""
    import signal
    import time

    monkeypatch.setenv("AGENTMEM_VLLM_ARGS", "--engine-child")
    settings = load_settings()
    first = vllm_server.start(settings).record
    _wait(lambda: vllm_server.leftovers(settings, first))  # the engine child is up
    engine = vllm_server.leftovers(settings, first)
    os.kill(first.pid, signal.SIGKILL)
    _wait(lambda: not vllm_server._alive(first.pid))
    info = vllm_server.status(settings)
    assert not info["running"] and info["leftover_pids"] == engine

    steps: list[str] = []
    second = vllm_server.start(settings, progress=steps.append)
    assert any("left of a vLLM server that died" in m for m in steps)
    assert not any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in engine)
    assert not second.already_running and second.record.pid != first.pid

    os.kill(second.record.pid, signal.SIGKILL)
    _wait(lambda: not vllm_server._alive(second.record.pid))
    _wait(lambda: vllm_server.leftovers(settings, second.record))
    left = vllm_server.leftovers(settings, second.record)
    assert vllm_server.stop(settings) is None  # nothing was serving, but the engine is stopped
    time.sleep(0.2)
    assert not any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in left)
    assert not settings.vllm_pid_path.exists()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return "gone"


def _wait(condition, timeout_s: float = 20) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_server_that_dies_while_starting_reports_its_log(vsettings, monkeypatch):
    monkeypatch.setenv("AGENTMEM_VLLM_ARGS", "--crash")
    with pytest.raises(ModelError, match="exited while starting.*fake engine failed") as err:
        vllm_server.start(load_settings())
    assert "vllm.log" in err.value.hint and not vsettings.vllm_pid_path.exists()


def test_a_server_that_never_gets_healthy_is_stopped_after_the_timeout(vsettings, monkeypatch):
    monkeypatch.setenv("AGENTMEM_VLLM_ARGS", "--startup-delay 60")
    monkeypatch.setenv("AGENTMEM_VLLM_START_TIMEOUT_S", "1.5")
    with pytest.raises(ModelError, match="did not become healthy within 1.5 s") as err:
        vllm_server.start(load_settings())
    assert "AGENTMEM_VLLM_START_TIMEOUT_S" in err.value.hint and not vsettings.vllm_pid_path.exists()
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if _is_fake(p)]


def _is_fake(cmdline: Path) -> bool:
    try:
        text = cmdline.read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(FAKE) in text and "--startup-delay" in text and str(os.getpid()) != cmdline.parent.name


def test_cli_start_status_stop(vsettings):
    import ui.cli
    from ui.cli import app

    ui.cli._register()
    runner = CliRunner()
    started = runner.invoke(app, ["vllm", "start", "--json"])
    assert started.exit_code == 0, started.output
    pid = json.loads(started.stdout)["pid"]
    status = runner.invoke(app, ["vllm", "status", "--json"])
    assert json.loads(status.stdout)["pid"] == pid
    stopped = runner.invoke(app, ["vllm", "stop"])
    assert stopped.exit_code == 0 and f"pid {pid}" in stopped.stdout
    assert "not running" in runner.invoke(app, ["vllm", "status"]).stdout
