"""Run the real `agentmem` CLI in a subprocess (its own process, so it can be killed like a user's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# Permissive gate for tests of the plumbing around it (the gate has its own tests): on the 135M model a small
# adapter sometimes flips a canary or moves general agreement, which the gate then rightly refuses.
OPEN_GATE = {"AGENTMEM_GATE_CANARIES": "false", "AGENTMEM_GATE_MIN_GENERAL_AGREEMENT": "0",
             "AGENTMEM_GATE_MAX_MC_DROP": "1"}


def cli_env(home: Path, base_model_dir: Path, train: dict[str, Any], **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(AGENTMEM_HOME=str(home), AGENTMEM_BASE_MODEL=str(base_model_dir),
               AGENTMEM_CONSOLIDATE_TRAIN=json.dumps(train), **extra)
    return env


def cli(*args: str, env: dict[str, str], check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", "from ui.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"agentmem {' '.join(args)} -> {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc


def cli_json(*args: str, env: dict[str, str]) -> Any:
    return json.loads(cli(*args, "--json", env=env).stdout)
