"""Decode speed of the in-process backend beside the machine's memory-bandwidth bound.

For a 135M-parameter model, each decoded token reads every weight once, so tokens/s can be no higher than
(memory bandwidth) / (weight bytes). The bandwidth is measured in the same run by copying a large array, so the
ratio is comparable across noisy, shared machines. Prints a markdown table. Not a test: nothing is asserted.

    .venv/bin/python bench/generate.py [--runs 5] [--tokens 128] [--threads N]
    .venv/bin/python bench/generate.py --batch-sizes 16,32,64 --tokens 48 --runs 2   # batched decoding

With --batch-sizes it times `generate_batch` on 64 general prompts (greedy, no drafts) in batches of each size
instead, the sizes alternating within each run; it reports the median seconds and the speed-up over the first size.
"""

from __future__ import annotations

import argparse
import statistics
import time

PROMPT = [{"role": "user", "content": "Write a long, detailed story about a lighthouse keeper and a storm."}]


def copy_bandwidth_gbs(n_bytes: int = 1 << 30, repeats: int = 5) -> float:
    """Median GB/s of a large tensor copy (read + write counted)."""
    import torch

    src = torch.ones(n_bytes // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - t)
    return 2 * n_bytes / statistics.median(times) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-sizes", default="", help="e.g. 16,32,64: time batched decoding instead")
    args = ap.parse_args()

    import torch

    from agentmem.llm.base import GenerationConfig
    from agentmem.llm.transformers_backend import TransformersBackend
    from agentmem.settings import load_settings

    settings = load_settings(threads=args.threads)
    backend = TransformersBackend.from_settings(settings)
    model = backend._base
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    config = GenerationConfig(max_new_tokens=args.tokens)
    if args.batch_sizes:
        batched(backend, config, [int(x) for x in args.batch_sizes.split(",")], args.runs)
        return

    backend.generate(PROMPT, GenerationConfig(max_new_tokens=16))  # warm-up
    rates, lengths = [], []
    for _ in range(args.runs):
        g = backend.generate(PROMPT, config)
        rates.append(g.completion_tokens / g.seconds)
        lengths.append(g.completion_tokens)
    bw = copy_bandwidth_gbs()
    bound = bw * 1e9 / weight_bytes
    tps = statistics.median(rates)
    print("| metric | value |\n|---|---|")
    print(f"| device / dtype / threads | {backend.device} / {str(backend.dtype).removeprefix('torch.')} / {torch.get_num_threads()} |")
    print(f"| weights | {weight_bytes / 1e6:.0f} MB |")
    print(f"| completion length (tokens, median) | {statistics.median(lengths):.0f} |")
    print(f"| decode tokens/s (median of {args.runs}) | {tps:.1f} |")
    print(f"| memory copy bandwidth | {bw:.1f} GB/s |")
    print(f"| bandwidth bound (bandwidth / weight bytes) | {bound:.1f} tokens/s |")
    print(f"| ratio measured / bound | {tps / bound:.2f} |")


def batched(backend, config, sizes: list[int], runs: int, n_prompts: int = 64) -> None:
    from agentmem.synthesize import load_general_prompts

    prompts = [[{"role": "user", "content": p}] for p in load_general_prompts()[:n_prompts]]
    backend.generate_batch(prompts[:4], config, batch_size=4)  # warm-up
    times: dict[int, list[float]] = {b: [] for b in sizes}
    for _ in range(runs):
        for b in sizes:
            t = time.perf_counter()
            backend.generate_batch(prompts, config, batch_size=b)
            times[b].append(time.perf_counter() - t)
    first = statistics.median(times[sizes[0]])
    print(f"| {len(prompts)} prompts x {config.max_new_tokens} tokens, batch size | seconds (median of {runs}) | "
          f"speed-up over {sizes[0]} |\n|---|---|---|")
    for b in sizes:
        print(f"| {b} | {statistics.median(times[b]):.1f} | {first / statistics.median(times[b]):.2f}x |")


if __name__ == "__main__":
    main()
