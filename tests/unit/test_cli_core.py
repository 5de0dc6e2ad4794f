import json

from typer.testing import CliRunner

import ui.cli
from ui.cli import app

ui.cli._register()
runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("init", "ask", "chat", "status"):
        assert cmd in result.output


def test_status_json_uses_home(agentmem_home):
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["home"] == str(agentmem_home) and info["backend"] == "transformers"


def test_home_flag_overrides_env(tmp_path):
    result = runner.invoke(app, ["--home", str(tmp_path / "x"), "status", "--json"])
    assert json.loads(result.stdout)["home"] == str(tmp_path / "x")


def test_broken_base_model_is_one_clear_line(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("AGENTMEM_BASE_MODEL", str(tmp_path / "missing"))
    proc = subprocess.run([sys.executable, "-c", "from ui.cli import main; main()", "ask", "hi"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "AGENTMEM_BASE_MODEL" in lines[0] and "missing" in lines[0]
