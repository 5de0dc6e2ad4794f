"""The agent's nodes, each doing one thing: State in, partial State out.

understand → (teach | correct) → memorize, or understand → retrieve → grade → answer → log_miss.
Dependencies come from `AgentDeps`, bound when the graph is built. Nodes never treat text found in a document as an
instruction: only the user's own message can teach or correct.
"""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.config import get_stream_writer

from agentmem.chat_format import system_prompt
from agentmem.crashpoints import crash_point
from agentmem.errors import NotFound
from agentmem.factkey import fact_slot
from agentmem.llm.base import ChatMessage, GenerationConfig
from agentmem.memory import Fact, FactStatus, Feedback, Miss, Provenance
from agentmem.normalize import is_refusal
from graphs.deps import AgentDeps
from graphs.misses import resolve_misses_with_fact
from graphs.prompts import intent_patterns, render
from graphs.state import AgentState, Source

HISTORY_TURNS = 2  # earlier exchanges shown to the model; a 135M model loses the question in longer prompts


class Nodes:
    def __init__(self, deps: AgentDeps):
        self.deps = deps
        self.s = deps.settings

    # -- understand ----------------------------------------------------------------------------------------
    def understand(self, state: AgentState) -> dict[str, Any]:
        """Classify the turn from the user's words (patterns in prompts/intents.toml) and reset turn scratch."""
        text = state["question"].strip()
        intent, statement = "question", ""
        for kind in ("correct", "teach"):
            for pattern in intent_patterns()[kind]:
                m = pattern.match(text)
                if m and m.group("fact").strip():
                    intent, statement = kind, _clean_statement(m.group("fact"))
                    break
            if intent != "question":
                break
        if intent == "correct" and not _last_assistant(state):
            intent = "teach"  # nothing to correct yet: it is plain teaching
        return {
            "intent": intent, "statement": statement, "hits": [], "sources": [], "answer": "", "missed": False,
            "miss_id": None, "fact_id": None, "superseded": [], "adapter": None,
            "messages": [{"role": "user", "content": text}],
        }

    def route(self, state: AgentState) -> str:
        return "memorize" if state["intent"] in ("teach", "correct") else "retrieve"

    # -- question path -------------------------------------------------------------------------------------
    def retrieve(self, state: AgentState) -> dict[str, Any]:
        if not state.get("retrieval", True):
            return {"hits": []}
        q, pool, k = state["question"], state["pool"], self.s.top_k
        hits = [doc_source(h) for h in self.deps.knowledge.search(q, pool, k=k)]
        hits += [_memory_hit(h) for h in self.deps.knowledge.search_memory(q, pool, k=k)]
        return {"hits": hits}

    def grade(self, state: AgentState) -> dict[str, Any]:
        """Keep what is relevant enough; taught facts only while still active in the memory log."""
        keep: list[Source] = []
        for hit in state["hits"]:
            if hit["score"] < self.s.relevance_threshold:
                continue
            if hit["kind"] == "memory":
                fact = self._fact(state["pool"], hit["fact_id"])
                if fact is None or not fact.active:
                    continue
            keep.append(hit)
        # memories first: a taught or corrected fact overrides what a document says
        keep.sort(key=lambda h: (h["kind"] != "memory", -h["score"]))
        return {"sources": keep[: self.s.top_k]}

    def answer(self, state: AgentState) -> dict[str, Any]:
        sources = state["sources"]
        messages = answer_messages(state["question"], sources, _history(state["messages"][:-1], HISTORY_TURNS))
        writer = get_stream_writer()
        parts: list[str] = []
        config = GenerationConfig(max_new_tokens=self.s.max_new_tokens)
        with self.deps.lease(state["pool"]) as adapter:
            for piece in self.deps.llm.stream(messages, config, adapter=adapter):
                parts.append(piece)
                writer({"token": piece})
        answer = "".join(parts).strip()
        return {
            "answer": answer, "adapter": adapter,
            "messages": [{"role": "assistant", "content": answer, "sources": sources, "adapter": adapter}],
        }

    def log_miss(self, state: AgentState) -> dict[str, Any]:
        """No relevant knowledge, or a refusal: remember the question so later knowledge can resolve it."""
        if not state.get("retrieval", True):
            return {"missed": False}
        missed = not state["sources"] or is_refusal(state["answer"])
        if not missed:
            return {"missed": False}
        best = max((h["score"] for h in state["hits"]), default=0.0)
        miss = self.deps.memory.add_miss(Miss(
            question=state["question"], pool=state["pool"], best_score=best, answer=state["answer"],
            thread_id=state.get("thread_id"),
        ))
        return {"missed": True, "miss_id": miss.id}

    # -- teach / correct path ------------------------------------------------------------------------------
    def memorize(self, state: AgentState) -> dict[str, Any]:
        pool, statement = state["pool"], state["statement"]
        mem = self.deps.memory
        slot = fact_slot(statement)
        subject, key = slot if slot else (None, None)
        correcting = state["intent"] == "correct"
        corrected = self._corrected_fact(state) if correcting else None
        provenance = Provenance(kind="correction" if correcting else "taught", who="user",
                                thread_id=state.get("thread_id"), corrects=corrected.id if corrected else None)
        new = Fact(text=statement, pool=pool, subject=subject, key=key, provenance=provenance)
        # Contradictions: the active fact in the same slot, and the fact a correction names. Both must go.
        holder = mem.find_active_fact(pool, subject, key) if slot else None
        replaced = [f for f in (holder, corrected) if f is not None]
        replaced = list({f.id: f for f in replaced}.values())
        if replaced:
            new = mem.supersede(pool, replaced[0].id, new)
            for extra in replaced[1:]:  # a second contradicted fact cannot point at the same successor
                mem.set_fact_status(pool, extra.id, FactStatus.REJECTED)
        else:
            new = mem.add_fact(new)
        crash_point("memory.fact")  # logged, not yet retrievable: sync_memory repairs this on the next start
        for fact in replaced:
            self.deps.knowledge.forget(pool, fact.id)
        self.deps.knowledge.remember(pool, new.id, statement, {"provenance": provenance.kind})
        if correcting:
            last = _last_assistant(state)
            mem.add_feedback(Feedback(pool=pool, thread_id=state.get("thread_id"), question=_last_user(state),
                                      answer=last["content"] if last else "", rating="down", correction=statement))
        resolved = resolve_misses_with_fact(self.deps.memory, self.deps.knowledge, self.s, pool, new.id)
        reply = f"{'Corrected' if correcting else 'Got it'}: I will remember that {statement}"
        if resolved:
            reply += f" (this answers {len(resolved)} earlier question{'s' if len(resolved) > 1 else ''})"
        return {
            "fact_id": new.id, "superseded": [f.id for f in replaced], "answer": reply,
            "messages": [{"role": "assistant", "content": reply, "fact_id": new.id}],
        }

    def _fact(self, pool: str, fact_id: str) -> Fact | None:
        try:
            return self.deps.memory.get_fact(pool, fact_id)
        except NotFound:
            return None

    def _corrected_fact(self, state: AgentState) -> Fact | None:
        """The fact a correction replaces: one the last answer cited, else a very similar active memory."""
        pool = state["pool"]
        last = _last_assistant(state)
        for source in (last or {}).get("sources", []):
            if source.get("kind") == "memory":
                fact = self._fact(pool, source["fact_id"])
                if fact is not None and fact.active:
                    return fact
        for hit in self.deps.knowledge.search_memory(state["statement"], pool, k=1):
            fact = self._fact(pool, _memory_hit(hit)["fact_id"])
            if fact is not None and fact.active and hit.score >= max(0.6, self.s.relevance_threshold):
                return fact
        return None


def _clean_statement(text: str) -> str:
    text = " ".join(text.split()).strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _last_assistant(state: AgentState) -> dict | None:
    return next((m for m in reversed(state.get("messages", [])) if m["role"] == "assistant"), None)


def _last_user(state: AgentState) -> str:
    users = [m for m in state.get("messages", []) if m["role"] == "user"]
    return users[-2]["content"] if len(users) >= 2 else ""


def _history(messages: list[dict], turns: int) -> list[ChatMessage]:
    tail = messages[-2 * turns :] if turns else []
    return [{"role": m["role"], "content": m["content"]} for m in tail if m["role"] in ("user", "assistant")]


def doc_source(hit) -> Source:
    """A retrieved document chunk as an answer source (shared by the agent and the miss resolver)."""
    out: Source = {"kind": "document", "source": hit.source, "title": hit.title, "section": hit.section,
                   "score": float(hit.score), "text": hit.text}
    for attr in ("page", "line_start", "line_end"):
        if getattr(hit, attr, None) is not None:
            out[attr] = getattr(hit, attr)
    return out


def _memory_hit(hit) -> Source:
    fact_id = str(hit.metadata.get("fact_id") or hit.chunk_id)
    return {"kind": "memory", "source": f"memory:{fact_id}", "title": "taught fact", "score": float(hit.score),
            "text": hit.text, "fact_id": fact_id}


def answer_messages(question: str, sources: list[Source], history: list[ChatMessage]) -> list[ChatMessage]:
    """The conversation the answer is decoded from: system prompt, recent turns, the question with its context."""
    if sources:
        context = "\n\n".join(_context_block(i, s) for i, s in enumerate(sources, 1))
        user = render("answer_with_context", context=context, question=question)
    else:
        user = question
    messages: list[ChatMessage] = [{"role": "system", "content": system_prompt()}, *history]
    messages.append({"role": "user", "content": user})
    return messages


def _context_block(i: int, s: Source) -> str:
    where = "taught fact" if s["kind"] == "memory" else " — ".join(x for x in (s.get("title"), s.get("section")) if x)
    return f"[{i}] ({where})\n{s['text']}"


def new_thread_id() -> str:
    return uuid.uuid4().hex[:12]
