"""Benchmark of the knowledge index: ingestion throughput, query latency, retrieval quality.

(a) End-to-end ingestion chunks/s of Wikipedia biography passages, beside raw embedding chunks/s of the same model
    on the same chunk texts in the same run (the ratio shows the pipeline's overhead; goal >= 0.8).
(b) Search latency p50/p95 at 10k and 100k chunks. Those chunks are synthetic (random unit vectors inserted straight
    into Chroma), which is fine for latency; "search" includes embedding the query, "vector" is Chroma alone.
(c) hit@1 / hit@5 / MRR of the gold passage for the 955 questions over the 169 film passages, written as files and
    ingested, plus a check that re-ingesting them adds 0 chunks; with --hybrid also BM25 + vector fusion (RRF).

Run: .venv/bin/python bench/ingest.py [--eval-dir ../shared/eval] [--sizes 10000,100000] [--hybrid]
Prints a Markdown table. Everything is written under a temporary data folder unless --home is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentmem.settings import load_settings  # noqa: E402 - after the sys.path line above
from indexes.client import get_collection  # noqa: E402 - after the sys.path line above
from indexes.readers import read_document  # noqa: E402 - after the sys.path line above
from indexes.store import KnowledgeBase  # noqa: E402 - after the sys.path line above

FILM = "wiki_newpages_2023/wiki_2023_9_10_film_len_169_pure_evidence_test.json"
FILM_QA = "wiki_newpages_2023/wiki_2023_9_10_film_len_955_open_book_test.json"
BIO = "wiki_newpages_2023/1138_num_qa_6136bio_pit_train.json"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "x"


def write_passages(passages: list[str], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(passages):
        title = text[1:text.index(">")] if text.startswith("<") and ">" in text else text[:40]
        path = folder / f"{i:04d}-{slug(title.replace(' - Wikipedia', ''))}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path.resolve())
    return paths


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


# -- (a) throughput -----------------------------------------------------------------------------------------------

def throughput(kb: KnowledgeBase, eval_dir: Path, work: Path, max_files: int, repeats: int) -> dict:
    """Raw embedding and full ingestion of the same chunks, interleaved (raw, ingest, raw, ingest, ..., raw).

    Rates are medians. On a shared machine wall time swings with other load, so rates per CPU-second of this
    process (all its threads, Chroma's included) are reported too: that ratio is what the pipeline itself costs.
    """
    records = json.loads((eval_dir / BIO).read_text())[:max_files]
    paths = write_passages([r["evidence_text"] for r in records], work / "bio")
    chunker = kb.ingester.chunker
    texts = [p.embed_text for path in paths for p in chunker.chunk(read_document(str(path), path.read_bytes()))]
    kb.embedder.embed(texts[:64])  # warm-up: first calls allocate

    def timed(fn) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - wall, time.process_time() - cpu

    raw, ingest = [timed(lambda: kb.embedder.embed(texts))], []
    for r in range(repeats):
        report = None

        def run(r=r):
            nonlocal report
            report = kb.ingest([work / "bio"], pool=f"bench-throughput-{r}")

        ingest.append(timed(run))
        assert report.chunks_added == len(texts), (report.chunks_added, len(texts))
        raw.append(timed(lambda: kb.embedder.embed(texts)))
    n = len(texts)
    rate = {name: (statistics.median(n / w for w, _ in runs), statistics.median(n / c for _, c in runs))
            for name, runs in (("raw", raw), ("ingest", ingest))}
    return {"files": len(paths), "chunks": n, "raw": rate["raw"], "ingest": rate["ingest"],
            "raw_runs": len(raw), "ingest_runs": len(ingest),
            "ratio_wall": rate["ingest"][0] / rate["raw"][0], "ratio_cpu": rate["ingest"][1] / rate["raw"][1]}


# -- (b) latency --------------------------------------------------------------------------------------------------

def latency(kb: KnowledgeBase, sizes: list[int], n_queries: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    col = get_collection(kb.client, "docs", "bench-latency", create=True)
    dim = kb.embedder.dim
    words = ["river", "castle", "engine", "harvest", "violin", "glacier", "senate", "protein", "comet", "ledger"]
    queries = [" ".join(rng.choice(words, 6)) for _ in range(n_queries)]
    rows, have = [], col.count()
    for size in sorted(sizes):
        step = min(kb.client.get_max_batch_size(), 5000)
        while have < size:
            n = min(step, size - have)
            vec = rng.standard_normal((n, dim)).astype(np.float32)
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            col.add(ids=[f"syn-{have + i}" for i in range(n)], embeddings=vec,
                    documents=[f"synthetic chunk {have + i}" for i in range(n)],
                    metadatas=[{"source": f"/synthetic/{(have + i) // 10}.txt", "kind": "text"} for i in range(n)])
            have += n
        kb.search(queries[0], pool="bench-latency", k=5)  # warm-up
        search_ms, vector_ms = [], []
        for q in queries:
            t = time.perf_counter()
            kb.search(q, pool="bench-latency", k=5)
            search_ms.append((time.perf_counter() - t) * 1000)
            vec = rng.standard_normal((1, dim)).astype(np.float32)
            t = time.perf_counter()
            col.query(query_embeddings=vec / np.linalg.norm(vec), n_results=5, include=["documents", "metadatas", "distances"])
            vector_ms.append((time.perf_counter() - t) * 1000)
        rows.append({"chunks": size, "search_p50": pct(search_ms, 50), "search_p95": pct(search_ms, 95),
                     "vector_p50": pct(vector_ms, 50), "vector_p95": pct(vector_ms, 95)})
    return rows


# -- (c) quality ---------------------------------------------------------------------------------------------------

def question_text(instance: dict) -> str:
    text = instance["text"].strip()
    text = re.sub(r"^Question:\s*", "", text)
    return re.sub(r"\s*Answer:\s*$", "", text)


class BM25:
    """Okapi BM25 over chunk texts (k1=1.5, b=0.75); only for the --hybrid experiment."""

    def __init__(self, docs: list[str]):
        self.tokens = [re.findall(r"\w+", d.lower()) for d in docs]
        self.df = Counter(t for toks in self.tokens for t in set(toks))
        self.avg = sum(map(len, self.tokens)) / max(1, len(self.tokens))
        self.tf = [Counter(toks) for toks in self.tokens]
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in self.df.items()}

    def rank(self, query: str, k: int) -> list[int]:
        q = re.findall(r"\w+", query.lower())
        scores = []
        for i, tf in enumerate(self.tf):
            dl = len(self.tokens[i])
            s = sum(self.idf.get(t, 0) * tf[t] * 2.5 / (tf[t] + 1.5 * (0.25 + 0.75 * dl / self.avg)) for t in q if t in tf)
            scores.append(s)
        return sorted(range(len(scores)), key=lambda i: -scores[i])[:k]


def quality(kb: KnowledgeBase, eval_dir: Path, work: Path, hybrid: bool) -> dict:
    passages = [x["output"] for x in json.loads((eval_dir / FILM).read_text())["instances"]]
    questions = json.loads((eval_dir / FILM_QA).read_text())["instances"]
    paths = write_passages(passages, work / "film")
    gold_of = {text: str(path) for text, path in zip(passages, paths, strict=True)}
    first = kb.ingest([work / "film"], pool="bench-film")
    again = kb.ingest([work / "film"], pool="bench-film")
    ranks, fused_ranks = [], []
    col = get_collection(kb.client, "docs", "bench-film", create=False)
    if hybrid:
        everything = col.get(include=["documents", "metadatas"])
        bm25 = BM25(everything["documents"])
        sources = [m["source"] for m in everything["metadatas"]]
    t = time.perf_counter()
    for inst in questions:
        q, gold = question_text(inst), gold_of[inst["knowledge"]]
        hits = kb.search(q, pool="bench-film", k=50 if hybrid else 5)
        vec_sources = [h.source for h in hits]
        ranks.append(_rank(vec_sources[:5], gold))
        if hybrid:
            kw_sources = [sources[i] for i in bm25.rank(q, 50)]
            fused: dict[str, float] = {}
            for lst in (vec_sources, kw_sources):
                for r, s in enumerate(lst):
                    fused[s] = fused.get(s, 0.0) + 1.0 / (60 + r + 1)
            fused_ranks.append(_rank(sorted(fused, key=lambda s: -fused[s])[:5], gold))
    elapsed = time.perf_counter() - t
    out = {"passages": len(passages), "questions": len(questions), "chunks": first.chunks_added,
           "reingest_added": again.chunks_added, "reingest_unchanged": again.unchanged,
           "vector": _scores(ranks), "seconds_per_query": elapsed / len(questions)}
    if hybrid:
        out["hybrid"] = _scores(fused_ranks)
    return out


def _rank(sources: list[str], gold: str) -> int | None:
    seen = list(dict.fromkeys(sources))  # a source with several chunks counts once
    return seen.index(gold) + 1 if gold in seen else None


def _scores(ranks: list[int | None]) -> dict:
    n = len(ranks)
    return {"hit@1": sum(r == 1 for r in ranks) / n, "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
            "mrr@5": sum(1 / r for r in ranks if r) / n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    ap.add_argument("--home", type=Path, help="data folder to use (default: a temporary one, deleted after)")
    ap.add_argument("--chroma-url", help="benchmark a Chroma server instead of the embedded store")
    ap.add_argument("--sizes", default="10000,100000", help="chunk counts for the latency test")
    ap.add_argument("--queries", type=int, default=200, help="queries per latency size")
    ap.add_argument("--max-files", type=int, default=600, help="biography passages for the throughput test")
    ap.add_argument("--repeats", type=int, default=2, help="ingest runs for the throughput test (raw runs: +1)")
    ap.add_argument("--hybrid", action="store_true", help="also measure BM25 + vector fusion on the film questions")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: throughput,latency,quality")
    args = ap.parse_args()
    eval_dir = args.eval_dir.resolve()
    if not (eval_dir / FILM).is_file():
        print(f"error: evaluation data not found under {eval_dir} (expected {FILM}); pass --eval-dir", file=sys.stderr)
        return 2
    skip = set(filter(None, args.skip.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="agentmem-bench-"))
    home = args.home or tmp / "home"
    settings = load_settings(home=home, chroma_url=args.chroma_url)
    kb = KnowledgeBase(settings)
    try:
        t = time.perf_counter()
        kb.embedder  # noqa: B018
        import torch

        print(f"embedder {kb.embedder.name} on {getattr(kb.embedder, 'device', '?')}, loaded in "
              f"{time.perf_counter() - t:.1f} s; store: {args.chroma_url or 'embedded'}; torch threads "
              f"{torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}",
              file=sys.stderr)
        lines = ["| measure | value |", "|---|---|"]
        if "throughput" not in skip:
            tp = throughput(kb, eval_dir, tmp, args.max_files, args.repeats)
            lines += [f"| ingest: files / chunks | {tp['files']} / {tp['chunks']} |",
                      (f"| ingest end-to-end (median of {tp['ingest_runs']}), chunks/s wall / per CPU-s | "
                       f"{tp['ingest'][0]:.1f} / {tp['ingest'][1]:.1f} |"),
                      (f"| raw embedding, same chunks and model (median of {tp['raw_runs']}), chunks/s wall / per CPU-s "
                       f"| {tp['raw'][0]:.1f} / {tp['raw'][1]:.1f} |"),
                      f"| ratio ingest / raw (goal >= 0.8), wall / CPU | {tp['ratio_wall']:.2f} / {tp['ratio_cpu']:.2f} |"]
            print("\n".join(lines[-4:]), file=sys.stderr)
        if "latency" not in skip:
            for row in latency(kb, [int(s) for s in args.sizes.split(",")], args.queries):
                lines += [(f"| search p50 / p95 at {row['chunks']:,} chunks (embed query + Chroma), ms | "
                           f"{row['search_p50']:.1f} / {row['search_p95']:.1f} |"),
                          (f"| vector query p50 / p95 at {row['chunks']:,} chunks (Chroma only), ms | "
                           f"{row['vector_p50']:.1f} / {row['vector_p95']:.1f} |")]
                print("\n".join(lines[-2:]), file=sys.stderr)
        if "quality" not in skip:
            qy = quality(kb, eval_dir, tmp, args.hybrid)
            v = qy["vector"]
            lines += [f"| film: passages / chunks / questions | {qy['passages']} / {qy['chunks']} / {qy['questions']} |",
                      (f"| re-ingest of the same passages: chunks added / unchanged | {qy['reingest_added']} / "
                       f"{qy['reingest_unchanged']} |"),
                      f"| vector hit@1 / hit@5 / MRR@5 | {v['hit@1']:.3f} / {v['hit@5']:.3f} / {v['mrr@5']:.3f} |"]
            if "hybrid" in qy:
                h = qy["hybrid"]
                lines.append(f"| BM25+vector RRF hit@1 / hit@5 / MRR@5 | {h['hit@1']:.3f} / {h['hit@5']:.3f} / "
                             f"{h['mrr@5']:.3f} |")
        print("\n".join(lines))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
