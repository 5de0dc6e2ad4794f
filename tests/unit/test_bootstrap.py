import pytest

from agentmem import bootstrap
from agentmem.errors import ModelError


def test_gguf_file_is_found_in_the_wheel():
    path = bootstrap.gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def test_embedding_model_folder_is_found(settings):
    folder = bootstrap.embed_model_path(settings)
    assert (folder / "config.json").is_file() and (folder / "modules.json").is_file()


def test_not_converted_yet_without_create(settings):
    with pytest.raises(ModelError) as err:
        bootstrap.base_model_path(settings, create=False)
    assert "agentmem init" in str(err.value)


def test_configured_folder_must_be_a_model(settings, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="config.json"):
        bootstrap.base_model_path(settings.model_copy(update={"base_model": empty}))


def test_missing_wheel_gives_install_hint(monkeypatch):
    import importlib.metadata as md

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(bootstrap.md, "distribution", missing)
    with pytest.raises(ModelError) as err:
        bootstrap.gguf_path()
    assert "install.sh" in err.value.hint


def test_corrupt_gguf_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ModelError, match="cannot read the GGUF file"):
        bootstrap.convert_gguf(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temp leftovers
