"""`agentmem ui`: serve the Gradio app and the HTTP API (OpenAI-compatible /v1, JSON /api, docs at /docs).

Listens on 127.0.0.1 by default; any other address needs AGENTMEM_API_KEY (the server refuses to start without
one). The server itself is ui.app; this module only parses flags.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ui.cli import app, console, get_settings


@app.command("ui")
def ui(
    host: Annotated[str | None, typer.Option("--host", help="Address (default: settings.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: settings.port, 7860).")] = None,
) -> None:
    """Serve the app (chat, knowledge, memory, consolidation, status) and the HTTP API."""
    from ui.app import serve
    from ui.security import check_bind

    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    check_bind(host, settings)  # before loading anything: a refused start should be instant
    console.print(f"agentmem: http://{host}:{port}  (API docs: http://{host}:{port}/docs)"
                  + ("  — login with the API key" if settings.api_key else ""), highlight=False)
    serve(settings, host, port)
