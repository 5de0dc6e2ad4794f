"""The real server (`agentmem ui` in a subprocess, real model, real Chroma) reached the way clients reach it:
the `openai` SDK on /v1 (streamed answer, the pool's adapter reported) and `gradio_client` on the app's chat
endpoint, with an API key set so the auth path is the real one."""

import json
import urllib.error
import urllib.request

import pytest

from tests import app_server

pytestmark = pytest.mark.integration
KEY = "integration-key-0001"
POOL = "default"


@pytest.fixture(scope="module")
def server(tmp_path_factory, base_model_dir):
    home = tmp_path_factory.mktemp("app-server") / "home"
    srv = app_server.start(home, base_model_dir, env={"AGENTMEM_API_KEY": KEY, "AGENTMEM_MAX_NEW_TOKENS": "24"})
    try:
        version = app_server.publish_untrained_adapter(home, base_model_dir, tmp_path_factory.mktemp("adapter"),
                                                       metrics={"recall": 1.0})
        srv.version = version
        yield srv
    finally:
        app_server.stop(srv)


def test_openai_sdk_streams_an_answer_and_reports_the_adapter(server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, timeout=120)
    assert POOL in [m.id for m in client.models.list().data]
    stream = client.chat.completions.create(
        model=POOL, stream=True, user="sdk-thread",
        messages=[{"role": "user", "content": "Name a color of the sky."}])
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1 and "".join(pieces).strip(), server.tail()
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    assert final.system_fingerprint == server.version.serving_name
    assert final.model_extra["agentmem"]["adapter"] == server.version.serving_name
    assert final.model_extra["agentmem"]["thread"] == "sdk-thread"


def test_openai_sdk_plain_completion_and_wrong_key(server):
    from openai import AuthenticationError, OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, timeout=120)
    reply = client.chat.completions.create(model=POOL, messages=[{"role": "user", "content": "Say hello."}])
    assert reply.choices[0].message.content.strip() and reply.system_fingerprint == server.version.serving_name
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{server.url}/v1", api_key="wrong-key-00000", max_retries=0).models.list()


def test_json_api_needs_the_key(server):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{server.url}/api/status", timeout=10)
    assert err.value.code == 401
    req = urllib.request.Request(f"{server.url}/api/status", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        status = json.load(r)
    assert status["loaded"] and status["device"].startswith(("CPU", "GPU"))
    assert status["backend_info"]["model"] == status["base_model"]


def test_gradio_client_chat_endpoint(server):
    from gradio_client import Client

    client = Client(f"{server.url}/", auth=("agentmem", KEY), verbose=False)
    result = client.predict("Remember that the office wifi is called Tern.", POOL, True, api_name="/chat")
    messages = result[0]
    contents = json.dumps(messages)
    assert "Got it" in contents and "Saved to memory" in contents
    facts_req = urllib.request.Request(f"{server.url}/api/facts?pool={POOL}",
                                       headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(facts_req, timeout=30) as r:
        assert "the office wifi is called Tern." in [f["text"] for f in json.load(r)]
