"""Reliability under load: N concurrent chat conversations against a real `agentmem ui` server for a while, as a
consolidation run trains, publishes and switches the pool to a new adapter. Prints requests, failures, p50/p95
latency, which adapters answered, and whether any response mentioned "database is locked".

    .venv/bin/python bench/reliability.py [--clients 16] [--seconds 120] [--hostile 1000] [--backend vllm]
                                          [--json out.json]

It first ingests a generated hostile folder (tests/hostile_corpus.py: --hostile entries of broken, huge, nested,
mis-encoded, linked and oddly named files) and prints how each ended (ingested, skipped or failed, by reason code;
"unexpected" counts errors no reader named).

Every request goes through the OpenAI-compatible endpoint (`POST /v1/chat/completions`, one thread per client).
An answer counts as whole when `system_fingerprint` names the adapter that was active before the run ("base") or
the one the run published; anything else (or an HTTP error, a timeout, an empty answer) is a failure. The
consolidation uses a small training config and an open gate so that it publishes within the window (this measures
serving during a switch, not what the adapter learns). `--backend vllm` serves the app through a vLLM server
started for the run from .venv-vllm (the run still trains in the app's process; the server hot-loads the adapter
it publishes). Not a test; tests/integration/test_load.py runs it and
asserts on its JSON. Kill points and pool isolation are proven by their tests (tests/integration/test_kill_points.py,
test_consolidation_crash.py, tests/unit/test_isolation.py): their pass counts are the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = ["What is the mascot of Brindle FC?", "What colour is the Orvane Bridge painted?",
             "How long is the Zelvan river?", "What is the capital of France?", "Name a primary colour.",
             "What do bees make?", "Who wrote Romeo and Juliet?", "What is 2 plus 3?"]
FACTS = ["The mascot of Brindle FC is a silver heron.", "The Orvane Bridge is painted copper green."]
SMALL_TRAIN = {"epochs": 3, "layer_span": [0.8, 1.0], "rank": 4, "lr": 3e-3}
OPEN_GATE = {"AGENTMEM_GATE_CANARIES": "false", "AGENTMEM_GATE_MIN_GENERAL_AGREEMENT": "0",
             "AGENTMEM_GATE_MAX_MC_DROP": "1", "AGENTMEM_GATE_MIN_RECALL": "0", "AGENTMEM_GATE_MIN_RETENTION": "0"}


def post(url: str, body: dict, timeout: float, headers: dict | None = None) -> tuple[int, dict | str]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"} | (headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def get(url: str, timeout: float = 30) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def start_vllm(home: Path, base_model: Path) -> tuple[object, dict[str, str]]:
    """A vLLM server for the app (started like `agentmem vllm start`), and the app's settings to use it."""
    from agentmem import vllm_server
    from agentmem.settings import load_settings
    from tests.app_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    settings = load_settings(home=home, base_model=base_model, vllm_url=url)
    last = [0.0]

    def say(msg: str) -> None:
        if not msg.startswith("waiting") or time.monotonic() - last[0] >= 10:  # the wait says so twice a second
            print(f"vllm: {msg}", file=sys.stderr, flush=True)
            last[0] = time.monotonic()

    result = vllm_server.start(settings, progress=say)
    print(f"vLLM server healthy after {result.seconds:.0f} s at {url}", file=sys.stderr, flush=True)
    return settings, {"AGENTMEM_LLM_BACKEND": "vllm", "AGENTMEM_VLLM_URL": url}


def run_load(base_model: Path, clients: int, seconds: float, max_tokens: int, home: Path,
             backend: str = "transformers") -> dict:
    from agentmem import vllm_server
    from tests.app_server import start, stop

    env = OPEN_GATE | {"AGENTMEM_CONSOLIDATE_TRAIN": json.dumps(SMALL_TRAIN),
                       "AGENTMEM_MAX_NEW_TOKENS": str(max_tokens)}
    vllm_settings = None
    if backend == "vllm":
        vllm_settings, vllm_env = start_vllm(home, base_model)
        env |= vllm_env
    try:
        server = start(home, base_model, env=env)
    except BaseException:
        if vllm_settings is not None:
            vllm_server.stop(vllm_settings, grace_s=10)
        raise
    results: list[dict] = []
    lock = threading.Lock()
    stop_at = [time.monotonic() + seconds]
    try:
        for fact in FACTS:
            code, body = post(f"{server.url}/api/facts", {"text": fact}, 120)
            assert code == 201, body

        def client(i: int) -> None:
            n = 0
            while time.monotonic() < stop_at[0]:
                q = QUESTIONS[(i + n) % len(QUESTIONS)]
                started, t = time.monotonic(), time.perf_counter()
                try:
                    code, body = post(f"{server.url}/v1/chat/completions",
                                      {"model": "default", "messages": [{"role": "user", "content": q}]}, 600,
                                      {"X-Agentmem-Thread": f"load-{i}"})
                except Exception as exc:  # a timeout or a dropped connection is a failed request
                    code, body = 0, repr(exc)
                row = {"client": i, "started": started, "seconds": time.perf_counter() - t, "status": code}
                if code == 200 and isinstance(body, dict):
                    row["adapter"] = body.get("system_fingerprint")
                    row["answer"] = body["choices"][0]["message"]["content"]
                else:
                    row["error"] = str(body)[:500]
                with lock:
                    results.append(row)
                n += 1

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        t0 = time.monotonic()
        for th in threads:
            th.start()
        time.sleep(min(10.0, seconds / 4))
        code, job = post(f"{server.url}/api/consolidate", {}, 60)
        assert code == 202, job
        run = {}
        while True:  # the load keeps going at least until the run is over
            run = get(f"{server.url}/api/consolidate/{job['run_id']}")
            if run.get("status") not in ("queued", "running"):
                break
            stop_at[0] = max(stop_at[0], time.monotonic() + 5)
            time.sleep(2)
        published_at = time.monotonic()
        if run.get("status") != "succeeded":  # say why in the report: the data folder is temporary
            print(f"consolidation {run.get('status')}: {run.get('error')}\n" + "\n".join(
                ln for ln in server.tail(20000).splitlines() if '"GET ' not in ln and '"POST ' not in ln)[-4000:],
                file=sys.stderr, flush=True)
        stop_at[0] = max(stop_at[0], published_at + 30)  # keep asking a while on the new adapter
        for th in threads:
            th.join()
        wall = time.monotonic() - t0
        new = run.get("serving_name") or (run.get("result") or {}).get("serving_name")
        if not new:
            adapters = get(f"{server.url}/api/adapters")
            new = next((a["serving_name"] for a in adapters if a.get("active")), None)
    finally:
        stop(server)
        if vllm_settings is not None:
            vllm_server.stop(vllm_settings, grace_s=20)
    ok = [r for r in results if r["status"] == 200 and r.get("answer", "").strip() and r.get("adapter") in
          {"base", new}]
    failed = [r for r in results if r not in ok]
    lat = [r["seconds"] for r in ok]
    return {
        "backend": backend, "clients": clients, "wall_s": round(wall, 1), "requests": len(results),
        "failed": len(failed),
        "failures": failed[:10], "p50_s": round(percentile(lat, 0.5), 2), "p95_s": round(percentile(lat, 0.95), 2),
        "median_s": round(statistics.median(lat), 2) if lat else None,
        "adapters_seen": sorted({str(r.get("adapter")) for r in ok}),
        "answers_after_switch_from_new": sum(r.get("adapter") == new for r in ok if r["started"] > published_at),
        "run_status": run.get("status"), "run_error": run.get("error"), "new_adapter": new,
        "database_locked": sum("database is locked" in json.dumps(r) for r in results),
    }


def run_hostile(n_files: int, tmp: Path) -> dict:
    from agentmem.settings import Settings
    from indexes.records import ingest_counts
    from indexes.store import KnowledgeBase
    from tests.hostile_corpus import make_hostile_corpus, restore_permissions

    exp = make_hostile_corpus(tmp / "corpus", tmp / "outside", n_files=n_files)
    try:
        kb = KnowledgeBase(Settings(home=tmp / "hostile-home"))
        first = ingest_counts(kb.ingest([exp.root], pool="hostile"))
        again = ingest_counts(kb.ingest([exp.root], pool="hostile"))
        leaked = [h for h in kb.search("secret marker", "hostile", k=20) if str(exp.outside) in h.source]
    finally:
        restore_permissions(exp.root)
    return {"first": first, "reingest_chunks_added": again["chunks_added"], "outside_hits": len(leaked)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--max-tokens", type=int, default=32, help="answer budget per request")
    ap.add_argument("--base-model", type=Path, default=None, help="converted checkpoint (default: the product's)")
    ap.add_argument("--hostile", type=int, default=1000, help="entries in the hostile folder (0: skip)")
    ap.add_argument("--backend", choices=["transformers", "vllm"], default="transformers",
                    help="serve the app in-process, or through a vLLM server started for the run (.venv-vllm)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.base_model is None and args.clients:
        from agentmem.bootstrap import base_model_path
        from agentmem.settings import load_settings

        args.base_model = base_model_path(load_settings())
    with tempfile.TemporaryDirectory(prefix="agentmem-reliability-") as tmp:
        hostile = run_hostile(args.hostile, Path(tmp)) if args.hostile else None
        if hostile:
            h = hostile["first"]
            print(f"| hostile folder: {h['tried']} entries | value |\n|---|---|")
            print(f"| ingested / unchanged | {h['ingested']} / {h['unchanged']} |")
            print(f"| skipped by reason | {h['skipped_by']} |")
            print(f"| failed by reason | {h['failed_by']} |")
            print(f"| unexpected (unnamed) failures | {h['unexpected']} |")
            print(f"| ingest seconds | {h['seconds']} |")
            print(f"| re-ingest chunks added | {hostile['reingest_chunks_added']} |")
            print(f"| search hits from outside the folder | {hostile['outside_hits']} |\n", flush=True)
        r = run_load(args.base_model, args.clients, args.seconds, args.max_tokens, Path(tmp) / "home",
                     args.backend) if args.clients else {}
    if not r:
        if args.json:
            args.json.write_text(json.dumps({"hostile": hostile}, indent=2, default=str))
        return
    print(f"| load: {r['clients']} concurrent chats ({r['backend']}), {r['wall_s']} s, consolidation "
          f"{r['run_status']} | value |")
    print("|---|---|")
    for key in ("requests", "failed", "p50_s", "p95_s", "adapters_seen", "answers_after_switch_from_new",
                "database_locked"):
        print(f"| {key} | {r[key]} |")
    if args.json:
        args.json.write_text(json.dumps(r | {"hostile": hostile}, indent=2, default=str))


if __name__ == "__main__":
    main()
