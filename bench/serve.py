"""Serving speed of both backends on the same prompts: in-process transformers + PEFT, and a vLLM server.

Per backend: decode tokens/s of one stream and time to first token; aggregate tokens/s and time to first token
of N concurrent streams (vLLM batches them, the in-process backend takes them in turn); adapter load latency;
tokens/s with a LoRA adapter against the base model. The backends run one after the other, never both at once:
the in-process model is freed before the vLLM server is started (the same code as `agentmem vllm start`, in a
temporary data folder) and the server is stopped at the end. Prints a markdown table; asserts nothing.

    .venv/bin/python bench/serve.py [--tokens 64] [--streams 8] [--repeats 3] [--adapter DIR] [--url URL]

Without --adapter, a rank-8 LoRA on every linear layer is made on the spot (untrained: same cost as a trained one).
With --url, an already running vLLM server is measured instead of starting one.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import threading
import time
from pathlib import Path

PROMPTS = [
    "Write a long, detailed story about a lighthouse keeper and a storm.",
    "Explain in detail how a steam engine works, step by step.",
    "Describe a busy market in a coastal town at dawn, in many sentences.",
    "Write a long letter from a traveller to a friend about crossing the mountains.",
]


def messages(i: int) -> list[dict]:
    return [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]


def make_adapter(base_model: Path, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from agentmem.training import ALL_LINEAR

    model = AutoModelForCausalLM.from_pretrained(base_model)
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=list(ALL_LINEAR),
                                            init_lora_weights="gaussian"))
    peft.save_pretrained(out)
    return out


def one_stream(backend, config, adapter: str | None, i: int = 0) -> tuple[float, float, int]:
    """(time to first piece, total seconds, tokens) of one streamed answer."""
    start = time.perf_counter()
    first = None
    text = []
    for piece in backend.stream(messages(i), config, adapter):
        if first is None:
            first = time.perf_counter() - start
        text.append(piece)
    total = time.perf_counter() - start
    return first or total, total, backend.count_tokens("".join(text))


def concurrent_streams(backend, config, n: int) -> tuple[float, float]:
    """(aggregate tokens/s, median time to first piece) of n streams started together."""
    results: list[tuple[float, float, int]] = [None] * n  # type: ignore[list-item]
    go = threading.Event()

    def run(i: int) -> None:
        go.wait()
        results[i] = one_stream(backend, config, None, i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return sum(r[2] for r in results) / wall, statistics.median(r[0] for r in results)


def measure(backend, adapter_dir: Path, tokens: int, streams: int, repeats: int) -> dict[str, float]:
    from agentmem.llm.base import GenerationConfig

    config = GenerationConfig(max_new_tokens=tokens)
    backend.generate(messages(0), GenerationConfig(max_new_tokens=8))  # warm-up
    singles = [one_stream(backend, config, None, i) for i in range(repeats)]
    out = {
        "ttft_1": statistics.median(s[0] for s in singles),
        "tps_1": statistics.median(s[2] / s[1] for s in singles),
    }
    out["tps_n"], out["ttft_n"] = concurrent_streams(backend, config, streams)
    loads = []
    for k in range(repeats):
        name = f"bench-{k}-{time.time_ns()}"
        start = time.perf_counter()
        backend.load_adapter(name, str(adapter_dir))
        loads.append(time.perf_counter() - start)
        if k < repeats - 1:
            backend.unload_adapter(name)
    out["load_ms"] = statistics.median(loads) * 1000
    backend.generate(messages(0), GenerationConfig(max_new_tokens=8), adapter=name)  # warm-up
    adapted = [one_stream(backend, config, name, i) for i in range(repeats)]
    out["tps_adapter"] = statistics.median(s[2] / s[1] for s in adapted)
    backend.unload_adapter(name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64, help="max new tokens per answer")
    ap.add_argument("--streams", type=int, default=8, help="concurrent streams")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--adapter", type=Path, default=None, help="a PEFT adapter folder for this base model")
    ap.add_argument("--url", default=None, help="measure this running vLLM server instead of starting one")
    ap.add_argument("--skip-transformers", action="store_true")
    args = ap.parse_args()

    from agentmem import vllm_server
    from agentmem.bootstrap import base_model_path
    from agentmem.llm.transformers_backend import TransformersBackend
    from agentmem.llm.vllm_backend import VLLMBackend
    from agentmem.settings import load_settings

    settings = load_settings()
    base = base_model_path(settings)
    scratch = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    adapter = args.adapter or make_adapter(base, scratch / "adapter")
    results: dict[str, dict[str, float]] = {}

    if not args.skip_transformers:
        local = TransformersBackend(base, device=settings.device, dtype=settings.dtype, threads=settings.threads)
        results["transformers (in-process)"] = measure(local, adapter, args.tokens, args.streams, args.repeats)
        del local
        gc.collect()

    started = None
    vsettings = settings.model_copy(update={"home": scratch / "home", "base_model": base})
    if args.url:
        vsettings = vsettings.model_copy(update={"vllm_url": args.url})
    else:
        started = vllm_server.start(vsettings)
    try:
        remote = VLLMBackend(vsettings.vllm_url, timeout_s=vsettings.vllm_timeout_s)
        results["vLLM (server)"] = measure(remote, adapter, args.tokens, args.streams, args.repeats)
        remote.close()
    finally:
        if started is not None:
            vllm_server.stop(vsettings)

    rows = [
        ("decode tokens/s, 1 stream", "tps_1", "{:.1f}"),
        ("time to first token, 1 stream (s)", "ttft_1", "{:.2f}"),
        (f"aggregate tokens/s, {args.streams} concurrent streams", "tps_n", "{:.1f}"),
        (f"time to first token, {args.streams} concurrent (median, s)", "ttft_n", "{:.2f}"),
        ("adapter load (ms, median)", "load_ms", "{:.0f}"),
        ("decode tokens/s, 1 stream with a rank-8 adapter", "tps_adapter", "{:.1f}"),
    ]
    names = list(results)
    print(f"| measure ({args.tokens} new tokens, greedy) | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, key, fmt in rows:
        print(f"| {label} | " + " | ".join(fmt.format(results[n][key]) for n in names) + " |")
    print("| adapter / base tokens/s | " + " | ".join(f"{results[n]['tps_adapter'] / results[n]['tps_1']:.2f}"
                                                      for n in names) + " |")
    print(f"| {args.streams} streams / 1 stream tokens/s | " + " | ".join(
        f"{results[n]['tps_n'] / results[n]['tps_1']:.2f}" for n in names) + " |")
    if started is not None:
        print(f"\nvLLM server start to /health: {started.seconds:.0f} s")


if __name__ == "__main__":
    main()
