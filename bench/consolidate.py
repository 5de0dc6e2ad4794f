"""Consolidation benchmark: teach facts, consolidate, ask closed-book. Prints a markdown table.

For the same facts it reports: base closed-book accuracy, RAG accuracy (the agent with the taught fact in memory),
closed-book accuracy after consolidation on trained phrasings (read from the adapter's data card) and on held-out
paraphrases (the dataset's own paraphrase, never trained, plus the pipeline's held-out templates), facts answered
with another fact's answer, retention of the first run's facts after the second run, ARC-Easy accuracy before and
after, and wall time and tokens/s of each run. Facts come from --dataset, read from --eval-dir (default
../shared/eval): `fictional` (default) is the published fictional_knowledge set (fictional paragraphs: nothing a
model could know); `wiki-bio` and `wiki-film` are Wikipedia pages created in 2023 (after most models' training
data), one fact per page: its first sentence, probed with the set's own questions whose answer that sentence holds.
Runs in a fresh temporary data folder with the product's defaults, except that by default every run is promoted so
that its adapter can be measured; what the product's gate would have decided is reported beside it (`--gate
product` lets it decide). Not a test.

    .venv/bin/python bench/consolidate.py [--dataset fictional|wiki-bio|wiki-film] [--facts 24] [--runs 2]
                                          [--arc 200] [--gate open|product]
    .venv/bin/python bench/consolidate.py --facts 100 --runs 1 --arc 0     # the 100-facts time target
    .venv/bin/python bench/consolidate.py --dataset wiki-bio --facts 24    # real biographies, pages new in 2023
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from agentmem.normalize import contains_answer, is_unanswerable

ROOT = Path(__file__).resolve().parents[1]


DATASETS = {"fictional": "fictional_knowledge/fictional_knowledge.json",
            "wiki-bio": "wiki_newpages_2023/1138_num_qa_6136bio_pit_train.json",
            "wiki-film": "wiki_newpages_2023/wiki_2023_9_10_film_len_955_open_book_test.json"}
TITLES = {"fictional": "fictional_knowledge", "wiki-bio": "wiki_newpages_2023 bio",
          "wiki-film": "wiki_newpages_2023 film"}  # the table's title
MIN_WORDS, MAX_WORDS = 5, 60  # a taught fact is one plain sentence: not a fragment, not a run-on list

# Words whose period does not end a sentence before a capital ("Dr. Smith", "St. Louis", "Md. Golam"); single
# letters (initials, "J. R. R. Tolkien") and dotted words ("U.S.", "e.g.") are handled apart. A period before a
# number or a lowercase word ("No. 41", "Sept. 5") never ends one.
_ABBREVIATIONS = frozenset("mr mrs ms dr prof rev fr sr jr st mt ft gen col lt capt sgt maj adm gov sen rep hon "
                           "pres md mohd vs approx".split())
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)]*\s+")
_TAG = re.compile(r"^\s*<[^>]*>\s*")  # "<Title - Wikipedia id>" before each wiki passage


def load_facts(eval_dir: Path, n: int, dataset: str = "fictional") -> list[dict]:
    """The first n facts of the dataset as [{text, answer, cloze, paraphrase}]: `text` is taught, `cloze` and
    `paraphrase` are closed-book probes whose answer is `answer`, or `cloze_answer` where a row has one."""
    path = eval_dir / DATASETS[dataset]
    if not path.is_file():
        sys.exit(f"missing {path}: pass --eval-dir pointing at the shared eval folder (see ../shared/eval/SOURCES.md)")
    data = json.loads(path.read_text())
    if dataset == "fictional":
        rows = fictional_rows(data)
    else:
        passages = bio_passages(data) if dataset == "wiki-bio" else film_passages(data)
        rows = [row for row in (passage_fact(text, qas) for text, qas in passages) if row]
    if n > len(rows):
        sys.exit(f"{dataset}: only {len(rows)} facts qualify in {path}; ask for at most that many facts")
    return rows[:n]


def fictional_rows(items: list[dict]) -> list[dict]:
    """One fact per paragraph (facts of one paragraph share a subject). cloze: the fact's own sentence cut before
    its answer; paraphrase: the dataset's reworded cloze (never trained)."""
    rows = []
    for item in items:
        mi, mt, gi = item["mem_input"][0], item["mem_target"][0], item["gen_input"][0]
        rows.append({"text": f"{mi} {mt}.", "answer": mt, "cloze": f"Complete this sentence: {mi}",
                     "paraphrase": f"Complete this sentence: {gi}"})
    return rows


def bio_passages(items: list[dict]) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(passage, [(question, short answer)])]; an answer is written "answer.\\nRef: <page>"."""
    return [(item["evidence_text"], [(qa["text"], short_answer(qa["output"].split("\nRef:")[0]))
                                     for qa in item["qa_pairs"]]) for item in items]


def film_passages(data: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(passage, [(question, short answer)])]: the set lists questions, each with its passage; group them."""
    by_passage: dict[str, list[tuple[str, str]]] = {}
    for inst in data["instances"]:
        question = inst["text"].removeprefix("Question:").removesuffix("Answer:").strip()
        by_passage.setdefault(inst["knowledge"], []).append((question, short_answer(inst["output"])))
    return list(by_passage.items())


def short_answer(answer: str) -> str:
    """The answer without the trailing period the sets write ("August 5, 1955.")."""
    answer = answer.strip()
    return answer[:-1].rstrip() if answer.endswith(".") else answer


def passage_fact(passage: str, qas: list[tuple[str, str]]) -> dict | None:
    """The passage's first sentence as a fact, probed by the passage's questions whose answer it holds; None when
    the sentence is too short or long or answers none of them (the fact taught must hold what is asked)."""
    sentence = first_sentence(_TAG.sub("", passage))
    if not MIN_WORDS <= len(sentence.split()) <= MAX_WORDS:
        return None
    hits = [(q, a) for q, a in qas if not is_unanswerable(a) and contains_answer(sentence, [a])]
    if not hits:
        return None
    question, answer = hits[0]
    text = sentence if sentence[-1] in ".!?\"\u201d" else sentence + "."
    cloze, cloze_answer = hits[1] if len(hits) > 1 else hits[0]  # a second fact of the sentence, when it has one
    return {"text": text, "answer": answer, "cloze": cloze, "cloze_answer": cloze_answer, "paraphrase": question}


def first_sentence(text: str) -> str:
    """Text up to the first sentence end: a . ! or ? followed by space and a capital, outside parentheses, and not
    the period of an initial ("J. R."), a dotted word ("U.S.") or a listed abbreviation ("Dr.")."""
    text = text.strip().split("\n")[0]
    for m in _SENTENCE_END.finditer(text):
        head, rest = text[:m.start() + 1], text[m.end():]
        word = head.split()[-1].lstrip("(\"'").rstrip(".").lower()
        if not rest or not (rest[0].isupper() or rest[0] in "\"'\u201c\u2018"):
            continue
        if head.count("(") > head.count(")") or len(word) == 1 or "." in word or word in _ABBREVIATIONS:
            continue
        return text[:m.end()].strip()
    return text.strip()


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
    ap.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    ap.add_argument("--dataset", choices=list(DATASETS), default="fictional",
                    help="fictional (default): fictional_knowledge; wiki-bio, wiki-film: 2023 Wikipedia pages")
    ap.add_argument("--facts", type=int, default=24)
    ap.add_argument("--runs", type=int, default=2, help="consolidation runs; the facts are split evenly")
    ap.add_argument("--arc", type=int, default=200, help="ARC-Easy items, spread over the set (0: skip)")
    ap.add_argument("--home", type=Path, default=None, help="data folder (default: a fresh temporary one)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--gate", choices=["open", "product"], default="open",
                    help="open (default): promote every run so the adapter can be measured, and report what the "
                         "product's gate would have decided; product: the product's gate decides")
    args = ap.parse_args()

    from agentmem.bootstrap import base_model_path
    from agentmem.chat_format import system_prompt
    from agentmem.consolidate import Consolidation
    from agentmem.gate import decide
    from agentmem.llm.base import GenerationConfig
    from agentmem.settings import load_settings
    from agentmem.synthesize import FactSpec, answer_text
    from graphs.misses import document_answerer
    from graphs.runtime import AgentRuntime

    facts = load_facts(args.eval_dir, args.facts, args.dataset)
    arc = arc_items(args.eval_dir, args.arc) if args.arc else []
    if args.arc and not arc:
        print(f"note: {args.eval_dir / 'general' / 'arc_easy.jsonl'} is missing: ARC-Easy skipped", file=sys.stderr)
    home = args.home or Path(tempfile.mkdtemp(prefix="agentmem-bench-"))
    product = load_settings(home=home)
    settings = product if args.gate == "product" else product.model_copy(update={
        "gate_canaries": False, "gate_min_general_agreement": 0.0, "gate_max_mc_drop": 1.0, "gate_min_recall": 0.0,
        "gate_min_retention": 0.0})
    rt = AgentRuntime(settings)
    pool = "bench"
    sys_msg = [{"role": "system", "content": system_prompt()}]
    cfg = GenerationConfig(max_new_tokens=96)  # room for the fact's whole (long) sentence

    def closed_book(questions: list[str], adapter: str | None, drafts: list[str]) -> list[str]:
        # drafts (the taught statements) only spare decoding steps: the answers are greedy decoding's either way
        return [g.text for g in rt.backend.generate_batch([sys_msg + [{"role": "user", "content": q}]
                                                            for q in questions], cfg, adapter, drafts=drafts)]

    def acc(questions: list[str], answers: list[str], adapter: str | None, drafts: list[str]) -> float:
        got = closed_book(questions, adapter, drafts)
        return sum(contains_answer(g, [a]) for g, a in zip(got, answers)) / max(1, len(questions))

    def on(rows: list[dict], key: str, adapter: str | None) -> float:
        return acc([r[key] for r in rows], [r.get(f"{key}_answer", r["answer"]) for r in rows], adapter,
                   [answer_text(FactSpec(r["text"])) for r in rows])

    def trained_phrasings(rows: list[dict]) -> tuple[list[str], list[str], list[str]]:
        """Every trained question of these facts, from the active adapter's data card (and what it was taught)."""
        version = rt.registry.active(pool)
        if version is None:
            return [], [], []
        by_text = {r["text"]: r["answer"] for r in rows}
        fact_text = {f.id: f.text for f in rt.memory.list_facts(pool)}
        qs, ans, taught = [], [], []
        for ex in version.manifest().data_card:
            text = fact_text.get(ex.fact_id or "")
            if text in by_text:
                qs.append(ex.prompt)
                ans.append(by_text[text])
                taught.append(ex.completion)
        return qs, ans, taught

    size = -(-len(facts) // args.runs)
    batches = [facts[i:i + size] for i in range(0, len(facts), size)]
    r: dict[str, object] = {"facts": len(facts), "runs": []}
    r["base_cloze"] = on(facts, "cloze", None)
    r["base_paraphrase"] = on(facts, "paraphrase", None)
    r["arc_base"] = arc_accuracy(rt.backend, arc, None) if arc else None
    for i, batch in enumerate(batches):
        for f in batch:
            rt.agent.ask(f"Remember that {f['text']}", pool=pool)
        if i == 0:  # RAG: the taught fact sits in the pool's memory collection, retrieval puts it in the prompt
            rag = [rt.agent.ask(f["paraphrase"], pool=pool).answer for f in batch]
            r["rag_paraphrase"] = sum(contains_answer(g, [f["answer"]]) for g, f in zip(rag, batch)) / len(batch)
        before = rt.registry.active(pool)
        before_metrics = before.manifest().metrics if before else None
        t = time.perf_counter()
        job = Consolidation(settings, rt.memory, rt.registry, rt.backend, base_model_dir=base_model_path(settings),
                            on_publish=rt.serving.refresh, document_answer=document_answerer(rt.agent.deps))
        outcome = job.execute(pool)
        wall = time.perf_counter() - t
        training = outcome.metrics.get("training") or {}
        ev = outcome.metrics.get("eval") or {}
        adapter = rt.serving.adapter_for(pool)
        qs, ans, taught = trained_phrasings(batch)
        run = {"facts": len(batch), "status": outcome.status, "promoted": bool(outcome.adapter_version),
               "wall_s": round(wall, 1), "stage_s": outcome.metrics.get("timings"),
               "train_s": training.get("seconds"), "tokens_per_s": training.get("tokens_per_s"),
               "train_tokens": training.get("tokens"), "train_dtype": training.get("dtype"),
               "examples": training.get("examples"), "epochs": training.get("epochs"),
               "gate": outcome.gate.get("reason") or outcome.error,
               "product_gate": decide(product, ev, before_metrics).reason if ev else None,
               "canaries": f"{ev.get('canaries_passed')}/{ev.get('canaries_total')}",
               "canary_failures": ev.get("canary_failures"), "canary_failure_answers": ev.get("canary_failure_answers"),
               "general_agreement": ev.get("general_agreement"),
               "mc_accuracy": ev.get("mc_accuracy"), "mc_accuracy_base": ev.get("mc_accuracy_base"),
               "pipeline_recall": ev.get("recall"), "pipeline_heldout_recall": ev.get("heldout_recall"),
               "pipeline_retention": ev.get("retention"), "bleed": ev.get("bleed"),
               "trained_phrasings": acc(qs, ans, adapter, taught) if qs else None, "n_trained_phrasings": len(qs),
               "cloze": on(batch, "cloze", adapter), "paraphrase": on(batch, "paraphrase", adapter)}
        if i > 0:
            first_q, first_a, first_taught = trained_phrasings(batches[0])
            run["retention_first_run_trained"] = acc(first_q, first_a, adapter, first_taught) if first_q else None
            run["retention_first_run_cloze"] = on(batches[0], "cloze", adapter)
        r["runs"].append(run)
        print(json.dumps(run), file=sys.stderr, flush=True)
    r["adapter"] = rt.serving.adapter_for(pool)
    r["arc_after"] = arc_accuracy(rt.backend, arc, r["adapter"]) if arc else None

    print(f"\n| {TITLES[args.dataset]}: {len(facts)} facts in {len(batches)} run(s) | value |\n|---|---|")
    for key in ("base_cloze", "base_paraphrase", "rag_paraphrase", "arc_base", "arc_after"):
        v = r.get(key)
        print(f"| {key} | {v:.3f} |" if isinstance(v, float) else f"| {key} | {v} |")
    for i, run in enumerate(r["runs"], 1):
        for key, v in run.items():
            print(f"| run {i}: {key} | {v:.3f} |" if isinstance(v, float) else f"| run {i}: {key} | {v} |")
    out = args.json or home / "bench-consolidate.json"
    out.write_text(json.dumps(r, indent=2, default=str))
    print(f"\nfull results: {out}")


if __name__ == "__main__":
    main()
