"""Load (nightly): 16 concurrent chats for 2 minutes against a real server while a consolidation run publishes and
the pool switches adapters: 0 failed requests, every answer from a whole adapter (old or new), no "database is
locked". Runs bench/reliability.py and asserts on its JSON (its table goes in the README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.nightly]
ROOT = Path(__file__).resolve().parents[2]


def test_sixteen_chats_through_an_adapter_switch(base_model_dir: Path, tmp_path: Path):
    out = tmp_path / "load.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "reliability.py"), "--clients", "16", "--seconds",
                           "120", "--hostile", "0", "--base-model", str(base_model_dir), "--json", str(out)],
                          capture_output=True, text=True, timeout=3600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["run_status"] == "succeeded" and r["new_adapter"], r
    assert r["requests"] >= 16 and r["failed"] == 0, r["failures"]
    assert r["database_locked"] == 0
    assert r["answers_after_switch_from_new"] > 0  # the pool did switch while the load went on
