"""Talking to the agent: `agentmem ask`, `agentmem chat`, `agentmem teach`.

Every turn goes through the LangGraph agent (retrieval, the pool's active adapter, fast memory, misses), in a
thread persisted under the data folder. This module parses, streams and prints; it holds no agent logic.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Optional

import typer

from ui.cli import app, console, get_settings

PoolOption = Annotated[Optional[str], typer.Option("--pool", "-p", help="Pool to use (default: settings.default_pool).")]
ThreadOption = Annotated[Optional[str], typer.Option("--thread", "-t", help="Conversation thread to continue (default: a new one).")]


def _runtime():
    from graphs.runtime import AgentRuntime

    return AgentRuntime(get_settings())


def _print_sources(sources: list[dict]) -> None:
    for i, s in enumerate(sources, 1):
        where = s["source"] + (f" — {s['section']}" if s.get("section") else "")
        if s.get("page"):
            where += f" (page {s['page']})"
        elif s.get("line_start"):
            where += f" (lines {s['line_start']}-{s.get('line_end', s['line_start'])})"
        console.print(f"  [{i}] {where}  score {s['score']:.2f}", highlight=False)


def _turn(rt, text: str, *, pool, thread, retrieval: bool, json_out: bool) -> dict:
    start = time.perf_counter()
    reply = None
    for event in rt.agent.stream(text, pool=pool, thread=thread, retrieval=retrieval):
        if "token" in event and not json_out:
            sys.stdout.write(event["token"])
            sys.stdout.flush()
        elif "reply" in event:
            reply = event["reply"]
    out = reply.to_dict()
    out["seconds"] = round(time.perf_counter() - start, 3)
    out["tokens"] = rt.backend.count_tokens(reply.answer)
    if json_out:
        print(json.dumps(out))
    else:
        if reply.intent != "question":
            sys.stdout.write(reply.answer)
        sys.stdout.write("\n")
        _print_sources(reply.sources)
        if reply.missed:
            console.print("  (logged as a miss: teach me or ingest a document that answers it)", highlight=False)
    return out


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question (or 'remember that ...' to teach a fact).")],
    pool: PoolOption = None,
    thread: ThreadOption = None,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="Closed-book: what the weights alone know.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help='Print {"answer", "sources", "missed", "adapter", "thread", ...}.')] = False,
) -> None:
    """Ask the agent one question: it retrieves, answers with sources, and logs a miss if it cannot."""
    rt = _runtime()
    with console.status("Loading..."):
        rt.agent  # noqa: B018 - load the parts before streaming
    _turn(rt, question, pool=pool, thread=thread, retrieval=not no_retrieval, json_out=json_out)


@app.command()
def teach(
    fact: Annotated[str, typer.Argument(help='A fact in one sentence, e.g. "The office wifi is called Tern".')],
    pool: PoolOption = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Teach a fact: stored in the memory log and retrievable at once; consolidation trains it later."""
    rt = _runtime()
    text = fact.strip()
    reply = rt.agent.ask(f"Remember that {text}", pool=pool)
    if json_out:
        print(json.dumps(reply.to_dict()))
    else:
        console.print(reply.answer, highlight=False)
        if reply.superseded:
            console.print(f"  superseded: {', '.join(reply.superseded)}", highlight=False)


@app.command()
def chat(
    pool: PoolOption = None,
    thread: ThreadOption = None,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="Closed-book answers.")] = False,
) -> None:
    """Chat in the terminal with streamed answers. /new starts a new thread, /exit leaves."""
    from graphs.nodes import new_thread_id

    rt = _runtime()
    with console.status("Loading the model and the knowledge base..."):
        rt.agent  # noqa: B018
    thread = thread or new_thread_id()
    settings = rt.settings
    console.print(f"agentmem chat — pool {pool or settings.default_pool}, thread {thread}. "
                  "Teach with 'remember that ...', correct with 'no, ...'. /new, /exit.", highlight=False)
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            break
        if not line:
            continue
        if line in ("/exit", "/quit"):
            break
        if line == "/new":
            thread = new_thread_id()
            console.print(f"new thread {thread}", highlight=False)
            continue
        sys.stdout.write("agent> ")
        _turn(rt, line, pool=pool, thread=thread, retrieval=not no_retrieval, json_out=False)
