"""The agentmem server: one FastAPI app holding the HTTP API (/v1 OpenAI-compatible, /api JSON, docs at /docs)
with the Gradio app mounted at /, served by uvicorn (`agentmem ui`).

`create_app(settings)` wires one `Services` (one AgentRuntime) per server process; its parts load at startup
in the background. `serve()` refuses a keyless bind to a non-loopback address (ui.security). The tabs live in
ui.app_<tab>; this module only assembles them.
"""

from __future__ import annotations

import os

# No phoning home: these machines reach package registries only.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import logging
from contextlib import asynccontextmanager
from importlib.resources import files

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from agentmem.errors import AgentmemError
from agentmem.settings import Settings
from graphs.runtime import AgentRuntime
from ui import api, api_openai, app_chat, app_consolidation, app_knowledge, app_memory, app_status
from ui.jobs import Runner
from ui.security import app_login, check_bind
from ui.services import Services

log = logging.getLogger(__name__)
API_DESCRIPTION = """An agent that learns. `POST /v1/chat/completions` speaks the OpenAI chat format
(`model` names a pool; the adapter that answered is in `system_fingerprint` and `agentmem.adapter`). The
`/api` routes ingest, teach, consolidate and manage adapters. When AGENTMEM_API_KEY is set, send
`Authorization: Bearer KEY`."""


def theme() -> gr.themes.Base:
    # System fonts only: the default theme fetches Google Fonts, and these machines have no internet.
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                          font=["Inter", "ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "monospace"])


def css() -> str:
    return files("ui").joinpath("static/app.css").read_text(encoding="utf-8")


def build_blocks(services: Services) -> gr.Blocks:
    with gr.Blocks(title="agentmem", fill_width=True) as blocks:
        with gr.Row(elem_id="am-header"):
            with gr.Column(scale=4):
                gr.HTML(
                    "<h1>🧠 agentmem</h1><div class='am-tagline'>An agent that learns: it answers from your "
                    "documents, remembers what you teach it, and consolidates it into its own weights. "
                    "<a href='/docs' target='_blank'>HTTP API</a></div>"
                )
            pool_dd = gr.Dropdown(
                choices=[services.settings.default_pool],
                value=services.settings.default_pool,
                label="Pool",
                allow_custom_value=True,
                scale=1,
                min_width=220,
                elem_id="am-pool",
                info="type a new name to start a pool",
            )
        with gr.Tabs():
            loaders = [
                app_chat.build(services, pool_dd),
                app_knowledge.build(services, pool_dd),
                app_memory.build(services, pool_dd),
                app_consolidation.build(services, pool_dd),
                app_status.build(services, pool_dd),
            ]

        def pools(current: str | None):
            names = services.pools()
            if current and current not in names:
                names.append(current)
            return gr.update(choices=names)

        blocks.load(pools, [pool_dd], pool_dd, api_visibility="private")
        for fn, outputs in loaders:
            blocks.load(fn, [pool_dd], outputs, api_visibility="private")
    return blocks


def create_app(settings: Settings, runtime: AgentRuntime | None = None, *, runner: Runner | None = None,
               services: Services | None = None, with_ui: bool = True) -> FastAPI:
    services = services or Services(settings, runtime, runner=runner)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        services.start()
        try:
            yield
        finally:
            services.close()

    app = FastAPI(title="agentmem", version="0.1.0", description=API_DESCRIPTION, lifespan=lifespan)
    app.state.services = services

    @app.exception_handler(AgentmemError)
    async def agentmem_error(_request: Request, exc: AgentmemError):
        return api.error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError):
        return api.validation_error_response(exc)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"ok": True, "ready": services.ready.is_set()}

    app.include_router(api_openai.router(services))
    app.include_router(api.router(services))
    if with_ui:
        gr.mount_gradio_app(
            app, build_blocks(services), path="/", auth=app_login(settings),
            auth_message="Log in with any user name and the API key (AGENTMEM_API_KEY) as password.",
            max_file_size=settings.max_upload_bytes, footer_links=["api"], theme=theme(), css=css(),
            server_name=settings.host, server_port=settings.port, show_error=True, ssr_mode=False,
        )
    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    host, port = host or settings.host, port or settings.port
    check_bind(host, settings)
    # Gradio keeps uploads in its temp folder until they are ingested; keep it under the data folder too.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(settings.home / "tmp" / "gradio"))
    settings = settings.model_copy(update={"host": host, "port": port})
    app = create_app(settings)
    log.info("agentmem ui on http://%s:%s (API docs at /docs)", host, port)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
