"""Who may use the app and the API: the bind-address rule, the bearer-token check and the app's login check.

With `settings.api_key` unset the server is open, so it must listen on a loopback address only; with a key,
every API route needs `Authorization: Bearer KEY` and the app asks for the key as its password (any user
name). This module does not know about routes or tabs; it only answers "allowed?".
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import HTTPException, Request, status
from pydantic import SecretStr

from agentmem.errors import ConfigError
from agentmem.settings import Settings

APP_USER = "agentmem"  # the user name shown in docs; any name is accepted, only the password counts


def is_loopback(host: str) -> bool:
    if host.strip().lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def check_bind(host: str, settings: Settings) -> None:
    """Refuse to serve an open (keyless) app on an address other machines can reach."""
    if not is_loopback(host) and settings.api_key is None:
        raise ConfigError(
            f"refusing to listen on {host} without an API key: anyone who can reach it could read and change "
            "the agent's knowledge",
            "set AGENTMEM_API_KEY (8+ characters) or listen on 127.0.0.1",
        )


def api_key(settings: Settings) -> str | None:
    key = settings.api_key  # a SecretStr, or a plain str in settings made with model_copy(update=...)
    if key is None:
        return None
    return key.get_secret_value() if isinstance(key, SecretStr) else str(key)


def key_matches(settings: Settings, given: str | None) -> bool:
    key = api_key(settings)
    if key is None:
        return True
    if not given:
        return False
    return hmac.compare_digest(given.encode(), key.encode())


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_key(settings: Settings):
    """A FastAPI dependency: 401 unless the request carries the API key (when one is set)."""

    def dependency(request: Request) -> None:
        if not key_matches(settings, bearer_token(request)):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail={
                    "message": "missing or wrong API key",
                    "hint": "send Authorization: Bearer $AGENTMEM_API_KEY",
                    "type": "unauthorized",
                },
                headers={"WWW-Authenticate": "Bearer"},
            )

    return dependency


def app_login(settings: Settings):
    """The Gradio auth callable (None: no login), accepting any user name with the API key as password."""
    if settings.api_key is None:
        return None

    def check(username: str, password: str) -> bool:
        return key_matches(settings, password)

    return check
