"""The chat format shared by serving and training: the agent's system prompt.

Consolidation must train in exactly the format the agent asks in (closed-book: system prompt + the user's
question), or the adapter learns answers to prompts nobody sends. Both sides read it from here.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def system_prompt() -> str:
    return resources.files("agentmem").joinpath("data", "system_prompt.txt").read_text(encoding="utf-8").strip()
