"""Property tests of the HTTP API with fakes: arbitrary JSON bodies, strings and uploads never give a 500.

Every answer is either a valid one (a chat completion, a stream ending in [DONE] without an in-band error, a
JSON list or object) or a 4xx whose body says what was wrong: `{"error": {"message", "hint", "type"}}` for
agentmem's own errors, or FastAPI's `{"detail": [...]}` for a body that does not fit the schema. Bodies are sent
as raw bytes, so they can also carry what a Python client would refuse to encode: lone UTF-16 surrogate escapes,
NUL characters, invalid UTF-8 and malformed JSON.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_api import make_services
from ui.api import without_surrogates
from ui.app import create_app

PROPERTY = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

odd = st.sampled_from(["\ud800", "\udfff", "\x00", "\u202e", "\U0001F600", "\n", "'", '"', "/", "\\", " "])
text = st.text(alphabet=st.characters() | odd, max_size=40)
scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(text, inner, max_size=3), max_leaves=8)
pools = st.sampled_from([None, "default", "other", "", " ", "../etc", "a" * 64, "bad pool", "-x"]) | text
parts = st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]) | text},
                                       optional={"text": text | json_values}), max_size=3)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]) | text | json_values},
    optional={"content": text | st.none() | parts | json_values, "name": text})
chat_body = st.fixed_dictionaries({}, optional={
    "model": pools | json_values,
    "messages": st.lists(message, max_size=3) | json_values,
    "stream": st.booleans() | json_values,
    "user": st.none() | text | st.just("t" * 200) | json_values,
    "retrieval": st.booleans() | json_values,
    "stream_options": st.none() | st.fixed_dictionaries({"include_usage": st.booleans()}) | json_values,
    "temperature": json_values,
}) | json_values


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from agentmem.settings import load_settings

    services, runner = make_services(load_settings(home=tmp_path_factory.mktemp("api-props")))
    runner.release.set()  # consolidation runs started by the fuzzing finish at once
    with TestClient(create_app(services.settings, services=services, with_ui=False),
                    raise_server_exceptions=False) as client:
        client.post("/api/ingest", files={"files": ("kelp.md", b"# Kelp\n\nKelp grows fast in cold water.\n")})
        yield client


def raw(value) -> bytes:
    """JSON with every non-ASCII character escaped, so lone surrogates travel as \\ud800 escapes."""
    return json.dumps(value, ensure_ascii=True).encode()


def check(response) -> None:
    """A valid answer or a 4xx that says what was wrong; never a 5xx."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        if "error" in body:
            assert body["error"]["message"] and "type" in body["error"], body
        else:
            assert body["detail"], body
        return
    if response.headers["content-type"].startswith("text/event-stream"):
        events = [line.removeprefix("data: ") for line in response.text.splitlines() if line]
        assert events and events[-1] == "[DONE]", events[-3:]
        for event in events[:-1]:
            assert "error" not in json.loads(event), event  # an exception while streaming
    else:
        response.json()


def check_completion(response) -> None:
    check(response)
    if response.status_code == 200 and response.headers["content-type"].startswith("application/json"):
        body = response.json()
        assert body["object"] == "chat.completion" and isinstance(body["choices"][0]["message"]["content"], str)


@PROPERTY
@given(chat_body)
def test_chat_completions_never_fail_with_a_500(api, body):
    check_completion(api.post("/v1/chat/completions", content=raw(body),
                              headers={"content-type": "application/json"}))


@PROPERTY
@given(st.binary(max_size=80) | st.sampled_from([b"", b"{", b'{"messages": [', b"\xff\xfe{}", b"null", b"[]",
                                                    b'{"messages": [{"role": "user", "content": "\xed\xa0\x80"}]}']))
def test_chat_completions_with_bytes_that_are_not_json(api, body):
    check(api.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"}))


@PROPERTY
@given(question=text.filter(str.strip), pool=pools, stream=st.booleans(), user=st.none() | text,
       thread=st.none() | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=140))
def test_chat_questions_with_arbitrary_text(api, question, pool, stream, user, thread):
    headers = {"content-type": "application/json"} | ({"X-Agentmem-Thread": thread} if thread is not None else {})
    body = {"model": pool, "stream": stream, "user": user, "messages": [{"role": "user", "content": question}]}
    response = api.post("/v1/chat/completions", content=raw(body), headers=headers)
    check_completion(response)
    if pool in (None, "default") and len((thread or user or "").strip()) <= 128:
        assert response.status_code == 200, response.text[:500]


@PROPERTY
@given(st.fixed_dictionaries({}, optional={"text": text | json_values, "pool": pools | json_values}) | json_values)
def test_teaching_arbitrary_bodies(api, body):
    check(api.post("/api/facts", content=raw(body), headers={"content-type": "application/json"}))


@PROPERTY
@given(route=st.sampled_from(["/api/consolidate", "/api/consolidate/cancel", "/api/adapters/activate",
                              "/api/adapters/rollback"]),
       body=st.fixed_dictionaries({}, optional={"pool": pools | json_values, "version": text | json_values})
       | json_values)
def test_pool_routes_with_arbitrary_bodies(api, route, body):
    check(api.post(route, content=raw(body), headers={"content-type": "application/json"}))


@PROPERTY
@given(route=st.sampled_from(["/api/search", "/api/facts", "/api/misses", "/api/sources", "/api/runs",
                              "/api/adapters", "/api/status", "/v1/models"]),
       params=st.dictionaries(st.sampled_from(["q", "pool", "k", "status", "search", "limit"]),
                              st.text(max_size=30) | st.sampled_from(["0", "-1", "51", "999999999999", "nan",
                                                                      "pending", "resolved", "default"]),
                              max_size=5))
def test_get_routes_with_arbitrary_query_strings(api, route, params):
    check(api.get(route, params=params))


@PROPERTY
@given(run_id=st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs"], exclude_characters="/?#%"),
                      min_size=1, max_size=40), pool=pools.filter(lambda p: p is None or p == without_surrogates(p)))
def test_run_status_of_arbitrary_ids(api, run_id, pool):
    check(api.get(f"/api/consolidate/{run_id}", params={} if pool is None else {"pool": pool}))


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=st.lists(st.tuples(st.text(max_size=40), st.binary(max_size=300)
                                | st.sampled_from([b"", b"%PDF-1.4\n", b"{\"a\": [", b"\xff\xfe\x00x"])),
                      min_size=1, max_size=3),
       pool=st.none() | st.sampled_from(["default", "uploads-2", "../x", ""]))
def test_uploads_with_arbitrary_names_and_bytes(api, files, pool):
    response = api.post("/api/ingest", data={} if pool is None else {"pool": pool},
                        files=[("files", (name, data)) for name, data in files])
    check(response)
    if response.status_code == 200:
        out = response.json()
        assert len(out["saved"]) == len(files) and all(not p.startswith(("/", "..")) for p in out["saved"])
        assert all(issue["reason"] and issue["code"] for issue in out["skipped"] + out["failed"])


# -- what the properties found, as plain regression tests -------------------------------------------------------

def test_found_unknown_status_filters_are_a_400(api):
    for route in ("/api/facts", "/api/misses"):
        r = api.get(route, params={"status": "bogus"})
        assert r.status_code == 400 and "unknown status" in r.json()["error"]["message"], r.text
        assert api.get(route, params={"status": ""}).status_code == 200


def test_found_validation_errors_that_echo_unencodable_input_are_still_a_422(api):
    for body in (b"Infinity", b'{"text": "\\ud800"}', b'{"": [{"": "\xed\xa0\x80"}]}'):
        r = api.post("/api/facts", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"], (body, r.status_code, r.text[:200])


def test_found_a_question_with_a_lone_surrogate_is_answered(api):
    body = b'{"messages": [{"role": "user", "content": "what about \\ud800?"}], "user": "t\\udfff"}'
    r = api.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["agentmem"]["thread"].startswith("user-"), r.text[:300]


@pytest.mark.parametrize("stream", [False, True])
def test_found_a_user_that_is_not_ascii_keeps_one_thread(api, stream):
    ask = {"stream": stream, "user": "\u674e \U0001F600", "messages": [{"role": "user", "content": "hello"}]}
    first, second = (api.post("/v1/chat/completions", json=ask) for _ in range(2))
    assert first.status_code == second.status_code == 200, first.text[:300]
    thread = first.headers["X-Agentmem-Thread"]
    assert thread.startswith("user-") and second.headers["X-Agentmem-Thread"] == thread
    plain = api.post("/v1/chat/completions", json=ask | {"user": "zoe-42"})  # printable ASCII is kept as it is
    assert plain.status_code == 200 and plain.headers["X-Agentmem-Thread"] == "zoe-42"


def test_found_an_upload_cannot_be_a_file_and_a_folder_at_once(api):
    assert api.post("/api/ingest", files={"files": ("clash/a.md", b"# A\n\nAlpha.\n")}).status_code == 200
    r = api.post("/api/ingest", files={"files": ("clash", b"Beta.\n")})
    assert r.status_code == 409 and "already a folder" in r.json()["error"]["message"]
    r = api.post("/api/ingest", files={"files": ("clash/a.md/b.md", b"Gamma.\n")})
    assert r.status_code == 409 and "already a file" in r.json()["error"]["message"]
