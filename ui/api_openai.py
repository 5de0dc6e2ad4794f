"""OpenAI-compatible routes: `POST /v1/chat/completions` (plain and SSE streaming) and `GET /v1/models`.

`model` names a pool. Only the last user message is asked: the agent keeps its own conversation per thread
(from the `X-Agentmem-Thread` header, else the `user` field, else a new thread each request), so earlier
messages a client resends are not replayed. The adapter that answered is reported as `system_fingerprint` (its
serving name, or "base") and, with the sources and thread, in an extra `agentmem` object. Sampling options are
accepted and ignored: the agent decodes greedily.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agentmem.errors import AgentmemError
from ui.api import without_surrogates
from ui.security import require_key
from ui.services import Services

log = logging.getLogger(__name__)
THREAD_HEADER = "X-Agentmem-Thread"
MAX_THREAD_CHARS = 128
_HEADER_SAFE = re.compile(r"[\x20-\x7e]+")  # printable ASCII: what every client reads back from a header


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text is understood
            return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, ... are accepted and ignored

    model: str | None = Field(None, description="The pool to ask (default: settings.default_pool).")
    messages: list[MessageIn] = Field(min_length=1)
    stream: bool = False
    user: str | None = Field(
        None, description="Used as the conversation thread when no X-Agentmem-Thread header."
    )
    stream_options: dict[str, Any] | None = None
    retrieval: bool = Field(True, description="agentmem extension: false answers closed-book (weights only).")


def _question(body: ChatCompletionRequest) -> str:
    for m in reversed(body.messages):
        if m.role == "user" and m.text().strip():
            return without_surrogates(m.text().strip())
    raise AgentmemError("no user message with text", 'send messages=[{"role": "user", "content": "..."}]')


def _thread(request: Request, body: ChatCompletionRequest) -> str:
    thread = (request.headers.get(THREAD_HEADER) or body.user or "").strip()
    if len(thread) > MAX_THREAD_CHARS:
        raise AgentmemError(f"thread id longer than {MAX_THREAD_CHARS} characters", "use a shorter id")
    if thread and not _HEADER_SAFE.fullmatch(thread):
        # It goes back in a response header: a `user` such as "Zoë" or "李" (or one with a control character or
        # a lone surrogate escape) gets a stable ASCII thread id instead of a 500.
        thread = "user-" + hashlib.sha256(thread.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return thread or uuid.uuid4().hex[:12]


def _extra(reply) -> dict[str, Any]:
    return {"adapter": reply.adapter, "thread": reply.thread, "pool": reply.pool, "intent": reply.intent,
            "sources": reply.sources, "missed": reply.missed, "fact_id": reply.fact_id}


def router(services: Services) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_key(services.settings))])

    @r.get("/models", summary="The pools, as models")
    def models() -> dict[str, Any]:
        data = []
        for pool in services.pools():
            active = services.rt.registry.active(pool)
            data.append({"id": pool, "object": "model", "created": 0, "owned_by": "agentmem",
                         "adapter": active.serving_name if active else None})
        return {"object": "list", "data": data}

    @r.post("/chat/completions", summary="Ask the agent (OpenAI chat completions format)")
    def chat_completions(body: ChatCompletionRequest, request: Request):
        pool = services.pool(body.model)
        question, thread = _question(body), _thread(request, body)
        agent = services.agent  # load (or fail) before a stream starts: errors get a proper status code
        events = agent.stream(question, pool=pool, thread=thread, retrieval=body.retrieval)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        headers = {THREAD_HEADER: thread}
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(
                _sse(services, events, cid, created, pool, question, include_usage),
                media_type="text/event-stream",
                headers=headers | {"Cache-Control": "no-cache"},
            )
        reply = next(e["reply"] for e in events if "reply" in e)
        usage = _usage(services, question, reply.answer)
        return JSONResponse({
            "id": cid, "object": "chat.completion", "created": created, "model": pool,
            "system_fingerprint": reply.adapter or "base",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.answer},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage, "agentmem": _extra(reply),
        }, headers=headers)

    return r


def _usage(services: Services, question: str, answer: str) -> dict[str, int]:
    count = services.rt.backend.count_tokens
    p, c = count(question), count(answer)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _sse(services: Services, events: Iterator[dict], cid: str, created: int, pool: str, question: str,
         include_usage: bool) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": pool,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    streamed, reply = False, None
    try:
        for event in events:
            if "token" in event:
                streamed = True
                yield chunk({"content": event["token"]})
            elif "reply" in event:
                reply = event["reply"]
    except Exception as exc:  # the status line is sent already: report in-band, as OpenAI does
        log.exception("chat stream failed")
        message = exc.message if isinstance(exc, AgentmemError) else f"{type(exc).__name__}: {exc}"
        yield f"data: {json.dumps({'error': {'message': message, 'type': type(exc).__name__}})}\n\n"
        yield "data: [DONE]\n\n"
        return
    if reply is None:
        yield "data: [DONE]\n\n"
        return
    if not streamed and reply.answer:  # teach/correct turns answer without decoding tokens
        yield chunk({"content": reply.answer})
    yield chunk({}, "stop", system_fingerprint=reply.adapter or "base", agentmem=_extra(reply))
    if include_usage:
        usage = _usage(services, question, reply.answer)
        last = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": pool,
            "choices": [],
            "usage": usage,
        }
        yield f"data: {json.dumps(last)}\n\n"
    yield "data: [DONE]\n\n"
