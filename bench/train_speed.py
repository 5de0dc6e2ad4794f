"""Consolidation speed and quality: invent N facts, train a LoRA adapter on them, and measure what it learned.

Prints one table row: train time, tokens/s, closed-book accuracy on trained phrasings, held-out template phrasings,
natural questions and paraphrases never trained, reverse questions, the same questions answered by the base model
with the fact in its context (a RAG stand-in: the true fact plus three others), canaries, and cross-fact bleed.
Greedy decoding; an answer counts when its normalized text contains the expected answer. Not a test.

    .venv/bin/python bench/train_speed.py --facts 24 --base-model /tmp/smol_hf
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from agentmem.synthesize import (  # noqa: E402
    Example,
    FactSpec,
    SynthesisConfig,
    build_rehearsal,
    synthesize_facts,
)
from agentmem.training import LoraRecipe, TrainConfig  # noqa: E402

SYSTEM_PROMPT = "You are a helpful assistant."
CANARIES = [
    ("What is the capital of France?", "paris"),
    ("How many days are there in a week?", "7"),
    ("What color is the sky on a clear day?", "blue"),
    ("Who wrote Romeo and Juliet?", "shakespeare"),
    ("What is the largest planet in our solar system?", "jupiter"),
    ("What is the chemical symbol for gold?", "au"),
    ("What is the boiling point of water in Celsius?", "100"),
    ("How many legs does a spider have?", "8"),
]
_NUMBER_WORDS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}


def normalize(text: str) -> str:
    try:  # the project's normalizer when there is one ("twenty-six" == "26")
        from agentmem.normalize import normalize_answer  # type: ignore[import-not-found]

        return normalize_answer(text)
    except ImportError:
        pass
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())
    words = re.sub(r"[^0-9a-z]+", " ", text).split()
    return " ".join(_NUMBER_WORDS.get(w, w) for w in words)


def contains(answer: str, expected: str) -> bool:
    return f" {normalize(expected)} " in f" {normalize(answer)} "


# -- invented facts --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Invented:
    spec: FactSpec
    answer: str
    natural: str
    paraphrase: str
    reverse: tuple[str, str] | None = None  # (question about the answer, expected = the subject side)


SYLLABLES = "zor ban quel mar vel dra thi lis kor ren oru sal vix pel tam gor nim esk ul bri fen hal jor wen tys kel".split()


class Namer:
    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def word(self, syllables: int = 2, suffix: str = "") -> str:
        while True:
            w = ("".join(self.rng.choice(SYLLABLES) for _ in range(syllables)) + suffix).capitalize()
            if w not in self.used:
                self.used.add(w)
                return w

    def number(self, lo: int, hi: int) -> str:
        while True:
            n = str(self.rng.randint(lo, hi))
            if n not in self.used:
                self.used.add(n)
                return n


def invent_facts(n: int, seed: int) -> list[Invented]:
    rng = random.Random(seed)
    nm = Namer(rng)
    countries = [nm.word(2, "ia") for _ in range(max(2, n // 4))]  # shared countries make bleed measurable
    materials = "kelp glass copper moss salt amber frost cedar slate wool".split()
    things = "battery compass loom lantern clock kettle sextant bellows".split()
    inventions_used: set[str] = set()
    taken: set[tuple[str, str]] = set()
    kinds = ["capital", "inventor", "founder", "river", "animal", "mountain", "author", "currency", "language", "born"]
    out: list[Invented] = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        free = [x for x in countries if (kind, x) not in taken]  # one capital per country: no contradictions
        if not free:
            countries.append(nm.word(2, "ia"))
            free = countries[-1:]
        c = rng.choice(free)
        taken.add((kind, c))
        first, last = nm.word(2), nm.word(2)
        if kind == "capital":
            city = nm.word(2)
            out.append(Invented(FactSpec(f"The capital of {c} is {city}.", f"f{i}"), city,
                                f"Which city is the capital of {c}?", f"Name the capital city of {c}.",
                                (f"{city} is the capital of which country?", c)))
        elif kind == "inventor":
            while (inv := f"{rng.choice(materials)} {rng.choice(things)}") in inventions_used:
                pass
            inventions_used.add(inv)
            out.append(Invented(FactSpec(f"Dr. {first} {last} invented the {inv} in {nm.number(1850, 1990)}.", f"f{i}"),
                                inv, f"What did Dr. {first} {last} invent?",
                                f"Which invention is Dr. {first} {last} known for?",
                                (f"Who invented the {inv}?", last)))
        elif kind == "founder":
            co = f"{nm.word(2)} {rng.choice(['Dynamics', 'Labs', 'Foods', 'Textiles', 'Shipping'])}"
            out.append(Invented(FactSpec(f"{co} was founded by {first} {last}.", f"f{i}"), last,
                                f"Who founded {co}?", f"Who is the founder of {co}?",
                                (f"Which company did {first} {last} found?", co.split()[0])))
        elif kind == "river":
            river, lake = nm.word(2), nm.word(2)
            out.append(Invented(FactSpec(f"The {river} River flows into Lake {lake}.", f"f{i}"), lake,
                                f"Into which lake does the {river} River flow?", f"Where does the {river} River end?"))
        elif kind == "animal":
            animal = nm.word(2, "fox").lower()
            out.append(Invented(FactSpec(f"The national animal of {c} is the {animal}.", f"f{i}"), animal,
                                f"Which animal is the national animal of {c}?",
                                f"What animal is the national symbol of {c}?"))
        elif kind == "mountain":
            m, h = nm.word(2), nm.number(2000, 8000)
            out.append(Invented(FactSpec(f"Mount {m} is {h} meters tall.", f"f{i}"), h,
                                f"How tall is Mount {m}?", f"What is the height of Mount {m} in meters?"))
        elif kind == "author":
            title = f"{nm.word(2)} {rng.choice(['Tides', 'Winter', 'Lanterns', 'Orchard', 'Harbor'])}"
            out.append(Invented(FactSpec(f"The novel {title} was written by {first} {last}.", f"f{i}"), last,
                                f"Who wrote the novel {title}?", f"Who is the author of {title}?",
                                (f"Which novel did {first} {last} write?", title.split()[0])))
        elif kind == "currency":
            cur = nm.word(2).lower()
            out.append(Invented(FactSpec(f"The currency of {c} is the {cur}.", f"f{i}"), cur,
                                f"What currency is used in {c}?", f"What money do people pay with in {c}?"))
        elif kind == "language":
            lang = nm.word(2, "ish")
            out.append(Invented(FactSpec(f"The official language of {c} is {lang}.", f"f{i}"), lang,
                                f"What language is spoken in {c}?", f"Which language do people in {c} officially use?"))
        else:
            town = nm.word(2)
            out.append(Invented(FactSpec(f"{first} {last}, the painter, was born in {town}.", f"f{i}"), town,
                                f"Where was the painter {first} {last} born?", f"What is the birthplace of {first} {last}?",
                                (f"Which painter was born in {town}?", last)))
    return out


# -- generation ------------------------------------------------------------------------------------------------
def generate_batch(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int = 24, batch_size: int = 32) -> list[str]:
    """Greedy answers for many chat prompts at once (left padding)."""
    import torch

    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[str] = [""] * len(texts)
    if not texts:
        return out
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {key: v.to(model.device) for key, v in enc.items()}
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                 top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
        for row, i in enumerate(idx):
            out[i] = tokenizer.decode(gen[row, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    tokenizer.padding_side = "right"
    return out


def chat(question: str, system_prompt: str | None) -> list[dict]:
    return Example(question, "", "probe").prompt_messages(system_prompt)


def rag_prompt(fact: Invented, facts: list[Invented], question: str, rng: random.Random) -> str:
    others = rng.sample([f for f in facts if f is not fact], min(3, len(facts) - 1))
    ctx = [fact.spec.text] + [f.spec.text for f in others]
    rng.shuffle(ctx)
    return "Answer using the context.\n\nContext:\n" + "\n".join(f"- {c}" for c in ctx) + f"\n\nQuestion: {question}"


def rehearsal_examples(model, tokenizer, system_prompt: str | None, n: int, cache: Path | None) -> list[Example]:
    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("system_prompt") == system_prompt and len(data["examples"]) >= n:
            return [Example(**e) for e in data["examples"][:n]]
    from agentmem.synthesize import load_general_prompts

    prompts = load_general_prompts()[:n]
    answers = iter(generate_batch(model, tokenizer, [chat(p, system_prompt) for p in prompts], max_new_tokens=64))
    examples = build_rehearsal(lambda msgs: next(answers), prompts, system_prompt=system_prompt, max_chars=300)
    if cache is not None:
        cache.write_text(json.dumps({"system_prompt": system_prompt,
                                     "examples": [e.__dict__ for e in examples]}, indent=1))
    return examples


def served_in_float32(recipe: LoraRecipe, base_model: Path):
    """The adapter as a float32 server loads it: saved, then put on a fresh float32 base model."""
    import atexit
    import shutil
    import tempfile

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tmp = tempfile.mkdtemp(prefix="train_speed.")
    atexit.register(shutil.rmtree, tmp, True)
    folder = Path(tmp) / "adapter"
    recipe.save(folder)
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    return PeftModel.from_pretrained(base, folder).eval()


# -- the run ---------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    facts = invent_facts(args.facts, args.seed)
    t0 = time.perf_counter()
    syn = SynthesisConfig(n_train=args.phrasings, n_heldout=2, seed=args.seed, reverse=not args.no_reverse)
    qa = synthesize_facts([f.spec for f in facts], syn)
    synth_s = time.perf_counter() - t0

    n_layers = 30  # SmolLM2-135M; --layers is in layer numbers for readability, the config keeps fractions
    span = tuple(int(x) / n_layers for x in args.layers.split(":")) if args.layers else (0.0, 1.0)
    cfg = TrainConfig(
        rank=args.rank, alpha=args.alpha if args.alpha else 2.0 * args.rank, lr=args.lr, epochs=args.epochs,
        batch_size=args.batch, seed=args.seed, target_modules=tuple(args.targets.split(",")), layer_span=span,
        learned_loss=args.learned_loss or None, system_prompt=args.system_prompt,
        warmup_steps=args.warmup, dtype=args.dtype,
    )
    t1 = time.perf_counter()
    recipe = LoraRecipe(cfg)
    recipe.setup(Path(args.base_model))
    load_s = time.perf_counter() - t1
    model, tok = recipe.model, recipe.tokenizer

    t2 = time.perf_counter()
    with model.disable_adapter():
        rehearsal = rehearsal_examples(model, tok, args.system_prompt, args.rehearsal,
                                       Path(args.rehearsal_cache) if args.rehearsal_cache else None)
    rehearsal_s = time.perf_counter() - t2

    train = list(qa.train) + rehearsal
    cpu0 = time.process_time()
    def show(p):
        if p.step % 10 == 0:
            print(f"step {p.step}/{p.total} epoch {p.epoch} loss {p.loss:.3f} {p.tokens_per_s:.0f} tok/s "
                  f"eta {p.eta_s:.0f}s", file=sys.stderr, flush=True)

    result = recipe.train(train, progress=show)
    cpu_s = time.process_time() - cpu0

    if args.no_eval:
        return {"facts": args.facts, "examples": len(train), "train_s": round(result.seconds, 1),
                "cpu_s": round(cpu_s, 1), "tok_s": round(result.tokens_per_s), "tokens": result.tokens,
                "steps": result.steps, "epochs": result.epochs, "load_s": round(load_s, 1),
                "synth_s": round(synth_s, 2), "rehearsal_s": round(rehearsal_s, 1), "note": args.note}

    if args.dtype != "auto" and args.dtype != "float32":
        model = served_in_float32(recipe, Path(args.base_model))  # probe what the float32 server would answer

    # probes
    rng = random.Random(args.seed)
    probes: list[tuple[str, int, str, str]] = []  # (kind, fact index, question, expected)
    by_fact: dict[str, list[Example]] = {}
    for e in qa.train:
        by_fact.setdefault(e.fact_id, []).append(e)
    held: dict[str, list[Example]] = {}
    for e in qa.heldout:
        held.setdefault(e.fact_id, []).append(e)
    trained_qs = {e.question for e in qa.train}
    for i, f in enumerate(facts):
        tr = by_fact.get(f.spec.id, [])
        for e in rng.sample(tr, min(args.probe_train, len(tr))):
            probes.append(("trained", i, e.question, f.answer))
        for e in held.get(f.spec.id, []):
            probes.append(("heldout", i, e.question, f.answer))
        for kind, q in (("natural", f.natural), ("paraphrase", f.paraphrase)):
            assert q not in trained_qs, f"probe was trained: {q}"
            probes.append((kind, i, q, f.answer))
        if f.reverse:
            probes.append(("reverse", i, f.reverse[0], f.reverse[1]))
    t3 = time.perf_counter()
    answers = generate_batch(model, tok, [chat(q, args.system_prompt) for _, _, q, _ in probes])
    canary_q = [chat(q, args.system_prompt) for q, _ in CANARIES]
    canary_after = generate_batch(model, tok, canary_q)
    base_probe_idx = [k for k, p in enumerate(probes) if p[0] == "natural"] if not args.skip_base else []
    rag_idx = [k for k, p in enumerate(probes) if p[0] in ("natural", "paraphrase")] if not args.skip_base else []
    with model.disable_adapter():
        base_answers = generate_batch(model, tok, [chat(probes[k][2], args.system_prompt) for k in base_probe_idx])
        rag_answers = generate_batch(model, tok, [chat(rag_prompt(facts[probes[k][1]], facts, probes[k][2], rng),
                                                       args.system_prompt) for k in rag_idx])
        canary_before = generate_batch(model, tok, canary_q)
    eval_s = time.perf_counter() - t3

    def acc(kind: str) -> tuple[int, int]:
        ks = [k for k, p in enumerate(probes) if p[0] == kind]
        return sum(contains(answers[k], probes[k][3]) for k in ks), len(ks)

    bleed = 0  # probes answered with another fact's answer (and not their own)
    bleed_by_kind: dict[str, int] = {}
    bleed_examples = []
    for k, (kind, i, q, exp) in enumerate(probes):
        if kind == "reverse" or contains(answers[k], exp):
            continue
        others = [j for j, f in enumerate(facts) if j != i and contains(answers[k], f.answer)]
        if others:
            bleed += 1
            bleed_by_kind[kind] = bleed_by_kind.get(kind, 0) + 1
            bleed_examples.append((q, answers[k], facts[i].spec.text))
    rag_ok = sum(contains(a, probes[k][3]) for a, k in zip(rag_answers, rag_idx))
    base_known = sum(contains(a, probes[k][3]) for a, k in zip(base_answers, base_probe_idx))
    canary_base_ok = [contains(a, e) for a, (_, e) in zip(canary_before, CANARIES)]
    canary_kept = sum(ok and contains(a, e) for ok, a, (_, e) in zip(canary_base_ok, canary_after, CANARIES))

    row = {
        "facts": args.facts, "examples": len(train), "config": cfg.to_dict() | {"phrasings": args.phrasings},
        "train_s": round(result.seconds, 1), "cpu_s": round(cpu_s, 1), "tok_s": round(result.tokens_per_s),
        "tokens": result.tokens,
        "steps": result.steps, "epochs": result.epochs, "skipped": result.skipped, "unlearned": result.unlearned,
        "stopped_early": result.stopped_early,
        "final_loss": round(result.final_loss, 4), "load_s": round(load_s, 1), "synth_s": round(synth_s, 2),
        "rehearsal_s": round(rehearsal_s, 1), "eval_s": round(eval_s, 1),
        "trained": acc("trained"), "heldout": acc("heldout"), "natural": acc("natural"),
        "paraphrase": acc("paraphrase"), "reverse": acc("reverse"),
        "rag": (rag_ok, len(rag_idx)), "base_knows": (base_known, len(base_probe_idx)),
        "canaries": (canary_kept, sum(canary_base_ok)), "bleed": bleed, "bleed_by_kind": bleed_by_kind,
        "bleed_examples": bleed_examples[:8], "note": args.note,
    }
    if args.show:
        for (kind, _i, q, exp), a in zip(probes, answers):
            print(f"{'OK ' if contains(a, exp) else 'XX '}{kind:10s} {q} -> {a[:100]!r}")
        for (q, _e), a, b in zip(CANARIES, canary_before, canary_after):
            print(f"canary {q} base={b[:60]!r} after={a[:60]!r}")
    return row


def fmt(row: dict) -> str:
    def pct(p):
        return f"{p[0]}/{p[1]}"

    c = row["config"]
    cfg = (f"r{c['rank']} lr{c['lr']} ep{c['epochs']} b{c['batch_size']} ph{c['phrasings']} "
           f"{'all' if len(c['target_modules']) == 7 else ','.join(m[:4] for m in c['target_modules'])}"
           f"{'' if c['layer_span'] == [0.0, 1.0] else ' L' + ':'.join(str(round(x * 30)) for x in c['layer_span'])}"
           f" learned{c['learned_loss']}")
    return (f"| {row['facts']} | {cfg} | {row['train_s']}s (cpu {row['cpu_s']}) | {row['tok_s']} | "
            f"{row['steps']}st/{row['epochs']}ep | {pct(row['trained'])} | {pct(row['heldout'])} | "
            f"{pct(row['natural'])} | {pct(row['paraphrase'])} | {pct(row['reverse'])} | {pct(row['rag'])} | "
            f"{pct(row['base_knows'])} | {pct(row['canaries'])} | {row['bleed']} | {row['note']} |")


HEADER = ("| facts | config | train | tok/s | steps | trained | held-out | natural | paraphrase | reverse | RAG (nat+para) "
          "| base knows | canaries | bleed | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-model", default=os.environ.get("AGENTMEM_TEST_BASE_MODEL", "/tmp/smol_hf"))
    p.add_argument("--facts", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phrasings", type=int, default=SynthesisConfig().n_train)
    p.add_argument("--no-reverse", action="store_true", help="do not train questions about the object")
    p.add_argument("--rehearsal", type=int, default=12, help="general prompts answered by the base model")
    p.add_argument("--rehearsal-cache", default=None, help="JSON file to reuse rehearsal answers across runs")
    p.add_argument("--rank", type=int, default=d.rank)
    p.add_argument("--alpha", type=float, default=0.0, help="default: 2 x rank")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch", type=int, default=d.batch_size)
    p.add_argument("--warmup", type=int, default=d.warmup_steps)
    p.add_argument("--targets", default=",".join(d.target_modules))
    p.add_argument("--layers", default="", help="first:last decoder layers to adapt, e.g. 10:30")
    p.add_argument("--learned-loss", type=float, default=d.learned_loss or 0.0, help="0 = off (no skip, no early stop)")
    p.add_argument("--system-prompt", default=SYSTEM_PROMPT)
    p.add_argument("--probe-train", type=int, default=3, help="trained phrasings probed per fact")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="training dtype of the base weights (auto: float32 on CPU); probes run in the same model")
    p.add_argument("--threads", type=int, default=2, help="1 is faster while other processes load the CPU")
    p.add_argument("--skip-base", action="store_true", help="skip the base-model and RAG probes (fixed per fact set)")
    p.add_argument("--note", default="")
    p.add_argument("--show", action="store_true", help="print every probe and answer")
    p.add_argument("--no-eval", action="store_true", help="time the training only")
    p.add_argument("--jsonl", default=None, help="append the result row here")
    args = p.parse_args()
    row = run(args)
    if not args.no_eval:
        print(HEADER)
        print(fmt(row))
    print(json.dumps({k: v for k, v in row.items() if k != "config"}))
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
