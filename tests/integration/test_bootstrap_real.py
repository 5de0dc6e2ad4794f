"""Converting the shipped GGUF for real: once, atomically, idempotently."""

import pytest

from agentmem import bootstrap

pytestmark = pytest.mark.integration


def test_init_converts_once_and_is_idempotent(settings, base_model_dir, monkeypatch):
    # Pretend the real conversion is the session's (already made) checkpoint, then check the lazy path reuses it.
    target = bootstrap.converted_model_dir(settings)
    calls = []

    def fake_convert(src, dst):
        calls.append(dst)
        import shutil

        shutil.copytree(base_model_dir, dst)
        return dst

    monkeypatch.setattr(bootstrap, "convert_gguf", fake_convert)
    assert bootstrap.base_model_path(settings) == target
    assert bootstrap.base_model_path(settings) == target
    assert len(calls) == 1


def test_session_conversion_is_complete_and_loads(base_model_dir):
    from transformers import AutoConfig

    assert (base_model_dir / ".agentmem-complete").is_file()
    assert AutoConfig.from_pretrained(base_model_dir).model_type == "llama"
    assert not [p for p in base_model_dir.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers
