"""Prompt templates and turn patterns, loaded from the data files in `graphs/prompts/`.

Only loading and filling happen here; the wording lives in the .txt/.toml files so it can be read and changed
without touching code.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources


@cache
def template(name: str) -> str:
    return resources.files("graphs").joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8").strip()


@cache
def intent_patterns() -> dict[str, list[re.Pattern[str]]]:
    raw = tomllib.loads(resources.files("graphs").joinpath("prompts", "intents.toml").read_text(encoding="utf-8"))
    return {kind: [re.compile(p, re.IGNORECASE | re.DOTALL) for p in pats] for kind, pats in raw.items()}


def render(name: str, **values: str) -> str:
    return template(name).format(**values)
