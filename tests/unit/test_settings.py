from pathlib import Path

import pytest

from agentmem.errors import AgentmemError
from agentmem.settings import Settings, load_settings


def test_home_comes_from_env(agentmem_home: Path):
    s = load_settings()
    assert s.home == agentmem_home
    assert s.db_path.parent == agentmem_home and s.chroma_dir.parent == agentmem_home


def test_env_prefix_and_types(monkeypatch):
    monkeypatch.setenv("AGENTMEM_TOP_K", "7")
    monkeypatch.setenv("AGENTMEM_LLM_BACKEND", "vllm")
    s = load_settings()
    assert s.top_k == 7 and s.llm_backend == "vllm"


def test_toml_file_in_home_is_read_and_env_wins(agentmem_home: Path, monkeypatch):
    agentmem_home.mkdir(parents=True)
    (agentmem_home / "config.toml").write_text('top_k = 9\nmax_new_tokens = 77\n')
    monkeypatch.setenv("AGENTMEM_MAX_NEW_TOKENS", "55")
    s = load_settings()
    assert s.top_k == 9  # from the file
    assert s.max_new_tokens == 55  # env beats the file


def test_home_override_reads_its_own_config(tmp_path: Path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text("top_k = 3\n")
    s = load_settings(home=other)
    assert s.home == other and s.top_k == 3
    assert load_settings().top_k != 3  # the override did not leak


def test_explicit_overrides_win_and_none_is_ignored():
    s = load_settings(top_k=11, chroma_url=None)
    assert s.top_k == 11 and s.chroma_url is None


def test_invalid_values_are_rejected(monkeypatch):
    monkeypatch.setenv("AGENTMEM_TOP_K", "0")
    with pytest.raises(Exception) as err:
        load_settings()
    assert "top_k" in str(err.value)


def test_pool_name_is_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(default_pool="../etc")


def test_cli_reports_bad_settings_in_one_line(monkeypatch):
    from ui.cli import get_settings

    monkeypatch.setenv("AGENTMEM_TOP_K", "zero")
    with pytest.raises(AgentmemError) as err:
        get_settings()
    assert "top_k" in err.value.message and "\n" not in err.value.message
