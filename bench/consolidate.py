"""Consolidation benchmark: teach facts, consolidate, ask closed-book. Prints a markdown table.

For the same facts it reports base closed-book accuracy, RAG accuracy (the fact retrieved from memory), closed-book
accuracy after consolidation on the trained phrasing and on held-out paraphrases, retention of the first run's facts
after a second run, ARC-Easy accuracy before and after, and wall time and tokens/s of each run. Facts come from the
published fictional_knowledge set (nothing a model could know) or the wiki_newpages film set; both are read from
--eval-dir (default ../shared/eval). Runs in a fresh temporary data folder. Not a test: it asserts nothing.

    .venv/bin/python bench/consolidate.py [--dataset fictional|wiki] [--facts 24] [--arc 200]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_facts(dataset: str, eval_dir: Path, n: int, seed: int) -> list[dict]:
    """[{text, answer, probe, paraphrase}] — probe: the trained-style prompt; paraphrase: never trained."""
    if dataset == "fictional":
        path = eval_dir / "fictional_knowledge" / "fictional_knowledge.json"
        if not path.is_file():
            sys.exit(f"missing {path}: pass --eval-dir pointing at the shared eval folder")
        rows = []
        for item in json.loads(path.read_text()):
            for mi, mt, gi in zip(item["mem_input"], item["mem_target"], item["gen_input"]):
                rows.append({"text": f"{mi} {mt}.", "answer": mt, "probe": f"Complete this sentence: {mi}",
                             "paraphrase": f"Complete this sentence: {gi}"})
                break  # one fact per paragraph: facts about the same entity would share a subject
        return rows[:n]
    path = eval_dir / "wiki_newpages_2023" / "wiki_2023_9_10_film_len_955_open_book_test.json"
    if not path.is_file():
        sys.exit(f"missing {path}: pass --eval-dir pointing at the shared eval folder")
    rng = random.Random(seed)
    rows, seen = [], set()
    for inst in json.loads(path.read_text())["instances"]:
        q = re.sub(r"^Question:\s*", "", inst["text"]).split("\nAnswer:")[0].strip()
        a = inst["output"].strip().rstrip(".")
        if inst["knowledge"] in seen or "not provided" in a.lower() or len(a.split()) > 6:
            continue
        seen.add(inst["knowledge"])
        rows.append({"text": f"{q} {a}.", "answer": a, "probe": q, "paraphrase": q, "question": q})
    rng.shuffle(rows)
    return rows[:n]


def arc_items(eval_dir: Path, n: int) -> list[dict]:
    path = eval_dir / "general" / "arc_easy.jsonl"
    if not path.is_file():
        return []
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    step = max(1, len(items) // n)
    return items[::step][:n]


def arc_accuracy(backend, items: list[dict], adapter: str | None) -> float:
    correct = 0
    for it in items:
        prompt = it["query"] + "\nAnswer:"
        scores = backend.score_continuations(prompt, [" " + c for c in it["choices"]], adapter=adapter)
        pick = max(range(len(scores)), key=lambda i: scores[i][0] / max(1, scores[i][1]))
        correct += pick == it["gold"]
    return correct / len(items) if items else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["fictional", "wiki"], default="fictional")
    ap.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    ap.add_argument("--facts", type=int, default=24, help="split in two runs of half each")
    ap.add_argument("--arc", type=int, default=200, help="ARC-Easy items (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args()

    from agentmem.bootstrap import base_model_path
    from agentmem.chat_format import system_prompt
    from agentmem.consolidate import Consolidation
    from agentmem.llm.base import GenerationConfig
    from agentmem.normalize import contains_answer
    from agentmem.settings import load_settings
    from graphs.runtime import AgentRuntime

    facts = load_facts(args.dataset, args.eval_dir, args.facts, args.seed)
    home = args.home or Path(tempfile.mkdtemp(prefix="agentmem-bench-"))
    settings = load_settings(home=home)
    rt = AgentRuntime(settings)
    pool = "bench"
    sys_msg = [{"role": "system", "content": system_prompt()}]
    cfg = GenerationConfig(max_new_tokens=48)

    def closed_book(questions: list[str], adapter: str | None) -> list[str]:
        return [g.text for g in rt.backend.generate_batch([sys_msg + [{"role": "user", "content": q}]
                                                            for q in questions], cfg, adapter)]

    def acc(answers, rows) -> float:
        return sum(contains_answer(a, [r["answer"]]) for a, r in zip(answers, rows)) / len(rows)

    half = len(facts) // 2
    first, second = facts[:half], facts[half:]
    arc = arc_items(args.eval_dir, args.arc) if args.arc else []
    results: dict[str, object] = {"facts": len(facts)}
    results["base_closed_book"] = acc(closed_book([f["probe"] for f in facts], None), facts)
    results["arc_base"] = arc_accuracy(rt.backend, arc, None) if arc else None

    runs = []
    for batch in (first, second):
        for f in batch:
            rt.agent.ask(f"Remember that {f['text']}", pool=pool)
        t = time.perf_counter()
        job = Consolidation(settings, rt.memory, rt.registry, rt.backend, base_model_dir=base_model_path(settings),
                            on_publish=rt.serving.refresh)
        outcome = job.execute(pool)
        runs.append({"status": outcome.status, "seconds": round(time.perf_counter() - t, 1),
                     "train_s": outcome.metrics.get("training", {}).get("seconds"),
                     "tokens_per_s": outcome.metrics.get("training", {}).get("tokens_per_s"),
                     "gate": outcome.gate.get("reason"), "eval": {k: v for k, v in outcome.metrics.get("eval", {}).items()
                                                                   if k != "examples"}})
        if batch is first:
            rag = [rt.agent.ask(f["probe"], pool=pool).answer for f in first]
            results["rag_first_half"] = acc(rag, first)
            adapter = rt.serving.adapter_for(pool)
            results["after_run1_trained"] = acc(closed_book([f["probe"] for f in first], adapter), first)
            results["after_run1_paraphrase"] = acc(closed_book([f["paraphrase"] for f in first], adapter), first)
    adapter = rt.serving.adapter_for(pool)
    results["adapter"] = adapter
    results["rag_all"] = acc([rt.agent.ask(f["probe"], pool=pool).answer for f in facts], facts)
    results["after_run2_new_trained"] = acc(closed_book([f["probe"] for f in second], adapter), second)
    results["after_run2_new_paraphrase"] = acc(closed_book([f["paraphrase"] for f in second], adapter), second)
    results["retention_run1_after_run2"] = acc(closed_book([f["probe"] for f in first], adapter), first)
    results["arc_after"] = arc_accuracy(rt.backend, arc, adapter) if arc else None
    results["runs"] = runs

    print(f"| {args.dataset}: {len(facts)} facts, 2 runs of {half} | value |\n|---|---|")
    for key in ("base_closed_book", "rag_first_half", "rag_all", "after_run1_trained", "after_run1_paraphrase",
                "after_run2_new_trained", "after_run2_new_paraphrase", "retention_run1_after_run2",
                "arc_base", "arc_after"):
        v = results.get(key)
        print(f"| {key} | {v:.3f} |" if isinstance(v, float) else f"| {key} | {v} |")
    for i, r in enumerate(runs, 1):
        print(f"| run {i} | {r['status']}, {r['seconds']} s wall, train {r['train_s']} s at {r['tokens_per_s']} tok/s; "
              f"gate: {r['gate']} |")
    out = home / "bench-consolidate.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nfull results: {out}")


if __name__ == "__main__":
    main()
