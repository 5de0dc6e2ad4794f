"""Shared test fixtures.

Every test gets its own data folder (AGENTMEM_HOME points at a temp dir), so nothing leaks between tests or into
the user's real data. The converted base model is expensive to make (about 20 s), so integration tests share one
conversion per session through `base_model_dir`, pointed to by AGENTMEM_BASE_MODEL.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture(autouse=True)
def agentmem_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "agentmem-home"
    monkeypatch.setenv("AGENTMEM_HOME", str(home))
    for var in list(os.environ):
        if var.startswith("AGENTMEM_") and var not in ("AGENTMEM_HOME", "AGENTMEM_BASE_MODEL", "AGENTMEM_CACHE_DIR"):
            monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(scope="session", autouse=True)
def shared_cache(tmp_path_factory: pytest.TempPathFactory):
    """Base-model-derived caches (rehearsal answers, golden references) are computed once per test session."""
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("AGENTMEM_CACHE_DIR")
    os.environ["AGENTMEM_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("AGENTMEM_CACHE_DIR", None)
    else:
        os.environ["AGENTMEM_CACHE_DIR"] = old


@pytest.fixture
def settings(agentmem_home: Path):
    from agentmem.settings import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SmolLM2 checkpoint, converted once per test session (or AGENTMEM_TEST_BASE_MODEL if set)."""
    preset = os.environ.get("AGENTMEM_TEST_BASE_MODEL")
    if preset:
        return Path(preset)
    from agentmem.bootstrap import convert_gguf, gguf_path

    return convert_gguf(gguf_path(), tmp_path_factory.mktemp("models") / "SmolLM2-135M-Instruct")


@pytest.fixture
def real_settings(settings, base_model_dir: Path):
    """Settings using the real converted base model (integration tests)."""
    return settings.model_copy(update={"base_model": base_model_dir})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
