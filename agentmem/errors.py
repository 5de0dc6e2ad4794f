"""Errors a user can act on.

Every error the product raises on purpose carries a one-line message and a hint saying how to fix it; the CLI
prints exactly that line and exits non-zero. Library bugs stay ordinary exceptions with tracebacks.
"""

from __future__ import annotations


class AgentmemError(Exception):
    """An expected failure with a short message and a fix hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ModelError(AgentmemError):
    """The base or embedding model is missing or cannot be loaded."""

    exit_code = 3


class ConfigError(AgentmemError):
    """A setting has an invalid value."""

    exit_code = 2


class NotFound(AgentmemError):
    """A named thing (fact, adapter version, pool, source) does not exist."""

    exit_code = 4


class Busy(AgentmemError):
    """The thing asked for is already running (e.g. a consolidation run for the pool)."""

    exit_code = 5


class Conflict(AgentmemError):
    """The change contradicts what is stored (e.g. an active fact on the same subject/key, a superseded fact)."""

    exit_code = 6
