"""The JSON API under /api: ingest uploads, facts, misses, search, consolidation runs, adapters and status.

Every route needs the API key when one is set (ui.security). Errors the user can act on come back as
`{"error": {"message", "hint", "type"}}` with a fitting status (see `error_status`). The OpenAI-compatible
routes live in ui.api_openai; this module holds no agent logic, only translation between HTTP and `Services`.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agentmem.errors import AgentmemError, Busy, ConfigError, Conflict, ModelError, NotFound
from agentmem.memory import FactStatus, MissStatus
from ui.security import require_key
from ui.services import Services
from ui.uploads import UploadTooLarge, destination, save_stream, unique_names

_STATUS = [(NotFound, 404), (Busy, 409), (Conflict, 409), (UploadTooLarge, 413), (ConfigError, 400),
           (ModelError, 503)]


def error_status(exc: AgentmemError) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)


def error_response(exc: AgentmemError) -> JSONResponse:
    return JSONResponse({"error": {"message": exc.message, "hint": exc.hint, "type": type(exc).__name__}},
                        status_code=error_status(exc))


_SURROGATES = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """Lone UTF-16 surrogates, which a JSON body may carry as "\\ud800" escapes, as U+FFFD: no UTF-8 (SQLite,
    the tokenizer, a JSON response) can hold them."""
    return _SURROGATES.sub("\ufffd", text)


def json_safe(value: Any) -> Any:
    """`value` with what a JSON response cannot carry made printable: lone surrogates, inf and nan."""
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, except that the input it echoes cannot turn it into a 500 (a body of `Infinity`, or a lone
    surrogate escape, made FastAPI's own handler fail while rendering)."""
    return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, status_code=422)


def parse_status(kind: type[Enum], value: str | None) -> Any:
    """An optional status filter from a query string: "" means none; an unknown value is the caller's mistake."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise AgentmemError(f"unknown status {value!r}",
                            f"use one of: {', '.join(str(m.value) for m in kind)}") from None


class TeachRequest(BaseModel):
    text: str = Field(min_length=1, description="The fact, one sentence.")
    pool: str | None = None


class PoolRequest(BaseModel):
    pool: str | None = None


class ActivateRequest(BaseModel):
    pool: str | None = None
    version: str = Field(description="e.g. v2")


def router(services: Services) -> APIRouter:
    r = APIRouter(prefix="/api", tags=["agentmem"], dependencies=[Depends(require_key(services.settings))])
    settings = services.settings

    @r.post("/ingest", summary="Upload files and ingest them into a pool")
    def ingest(files: list[UploadFile] = File(..., description="One or more documents."),  # noqa: B008
               pool: str | None = Form(None)) -> dict[str, Any]:
        """Saved under uploads/<pool>/ with sanitized names (a re-upload replaces the file), then indexed;
        misses the new documents answer are resolved. Each file may be at most settings.max_upload_bytes."""
        pool = services.pool(pool)
        for f in files:
            if f.size is not None and f.size > settings.max_upload_bytes:
                raise UploadTooLarge(
                    f"{f.filename} is larger than the upload limit of {settings.max_upload_bytes:,} bytes",
                    "raise AGENTMEM_MAX_UPLOAD_BYTES",
                )
        saved = []
        for f, name in zip(files, unique_names([f.filename for f in files]), strict=True):
            target = destination(settings, pool, name)
            save_stream(f.file, target, settings.max_upload_bytes)
            saved.append(target)
        result = services.ingest(saved, pool)
        result["saved"] = [str(p.relative_to(settings.uploads_dir)) for p in saved]
        return result

    @r.get("/sources", summary="Ingested files of a pool")
    def sources(pool: str | None = None) -> list[dict[str, Any]]:
        return [s.to_dict() for s in services.rt.knowledge.sources(services.pool(pool))]

    @r.get("/search", summary="Retrieve the chunks most similar to a query")
    def search(q: str, pool: str | None = None, k: int = Query(5, ge=1, le=50)) -> list[dict[str, Any]]:
        return [h.to_dict() for h in services.rt.knowledge.search(q, services.pool(pool), k=k)]

    @r.get("/facts", summary="Taught facts of a pool, oldest first")
    def facts(pool: str | None = None, status: str | None = None, search: str | None = None) -> list[dict]:
        return [f.model_dump(mode="json") for f in services.rt.memory.list_facts(
            services.pool(pool), status=parse_status(FactStatus, status), search=search)]

    @r.post("/facts", status_code=201, summary="Teach a fact")
    def teach(body: TeachRequest) -> dict[str, Any]:
        """Like saying "remember that ..." in chat: a contradicting fact is superseded, misses it answers are
        resolved, and it is retrievable at once; consolidation trains it later."""
        reply = services.teach(body.text, body.pool)
        fact = services.rt.memory.get_fact(reply.pool, reply.fact_id) if reply.fact_id else None
        return reply.to_dict() | {"fact": fact.model_dump(mode="json") if fact else None}

    @r.get("/misses", summary="Questions the agent could not answer")
    def misses(pool: str | None = None, status: str | None = None) -> list[dict]:
        return [
            m.model_dump(mode="json")
            for m in services.rt.memory.list_misses(services.pool(pool), parse_status(MissStatus, status))
        ]

    @r.post("/consolidate", status_code=202, summary="Start a consolidation run")
    def consolidate(body: PoolRequest) -> dict[str, Any]:
        """Runs in the server in the background; 409 while the pool already has a run. Poll
        GET /api/consolidate/{run_id}."""
        return services.jobs.start(services.pool(body.pool), trigger="api").to_dict()

    @r.get("/consolidate/{run_id}", summary="A consolidation run: status, stage, progress, gate, metrics")
    def consolidate_status(run_id: str, pool: str | None = None) -> dict[str, Any]:
        return services.run_status(run_id, pool)

    @r.post("/consolidate/cancel", summary="Cancel the pool's active run")
    def consolidate_cancel(body: PoolRequest) -> dict[str, Any]:
        pool = services.pool(body.pool)
        return {"pool": pool, "cancelled": services.jobs.cancel(pool)}

    @r.get("/runs", summary="Consolidation runs of a pool, newest first")
    def runs(pool: str | None = None, limit: int = Query(20, ge=1, le=500)) -> list[dict]:
        out = []
        for run in services.rt.memory.list_runs(services.pool(pool), limit=limit):
            row = run.model_dump(mode="json", exclude={"metrics", "config"})
            out.append(row)
        return out

    @r.get("/adapters", summary="Adapter versions of a pool with their metrics")
    def adapters(pool: str | None = None) -> list[dict[str, Any]]:
        return services.adapters(pool)

    @r.post("/adapters/activate", summary="Serve a given version")
    def activate(body: ActivateRequest) -> dict[str, Any]:
        return services.activate(body.pool, body.version)

    @r.post("/adapters/rollback", summary="Serve the previously active version again")
    def rollback(body: PoolRequest) -> dict[str, Any]:
        return services.rollback(body.pool)

    @r.get("/status", summary="Models, backend, vector store, data folder, device and pools")
    def status() -> dict[str, Any]:
        return services.status()

    return r
