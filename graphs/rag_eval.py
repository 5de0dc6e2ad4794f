"""`agentmem eval rag`: ingest a QA dataset's passages into a fresh pool, ask every question through the agent, and
score normalized exact match and token F1, open-book (retrieval) and closed-book (the weights alone).

Datasets: `wiki-film` (the published wiki_newpages_2023 film set, read from an eval folder given by path) and any
generic JSONL file with one `{"question", "answers": [...], "passage", "title"?}` per line. Nothing here is tuned to
a dataset; the agent runs exactly as it does for users (its misses are logged in the eval pool, not the user's).
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentmem.errors import AgentmemError
from agentmem.normalize import exact_match, token_f1

WIKI_FILM = "wiki_newpages_2023/wiki_2023_9_10_film_len_955_open_book_test.json"


@dataclass
class QAItem:
    question: str
    answers: list[str]
    passage: str
    title: str = ""


@dataclass
class EvalReport:
    dataset: str
    n: int
    modes: dict[str, dict[str, float]] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "n": self.n, "modes": self.modes, "seconds": round(self.seconds, 1),
                "items": self.items}


def load_dataset(name: str, eval_dir: Path) -> list[QAItem]:
    if name == "wiki-film":
        path = eval_dir / WIKI_FILM
        if not path.is_file():
            raise AgentmemError(f"the wiki-film set is not at {path}",
                                "pass --eval-dir pointing at the shared eval folder (holding wiki_newpages_2023/)")
        items = []
        for inst in json.loads(path.read_text())["instances"]:
            question = re.sub(r"^Question:\s*", "", inst["text"]).split("\nAnswer:")[0].strip()
            passage = inst["knowledge"].strip()
            title = m.group(1) if (m := re.match(r"^<([^>]+)>", passage)) else ""
            items.append(QAItem(question, [inst["output"].strip()], passage, title))
        return items
    path = Path(name)
    if not path.is_file():
        raise AgentmemError(f"unknown dataset {name!r}", "use wiki-film or a path to a JSONL file")
    items = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers = row["answers"] if isinstance(row["answers"], list) else [row["answers"]]
            items.append(QAItem(row["question"], [str(a) for a in answers], row["passage"], row.get("title", "")))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise AgentmemError(f"{path}:{n}: not a QA line ({exc})",
                                'each line needs {"question", "answers": [...], "passage"}') from exc
    return items


def write_passages(items: Iterable[QAItem], folder: Path) -> int:
    """One text file per distinct passage, named stably so re-runs re-ingest nothing."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    seen = set()
    for item in items:
        digest = hashlib.sha256(item.passage.encode()).hexdigest()[:16]
        if digest in seen:
            continue
        seen.add(digest)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", item.title).strip("-")[:60] or "passage"
        path = folder / f"{slug}-{digest}.txt"
        if not path.exists():
            path.write_text(item.passage + "\n", encoding="utf-8")
    return len(seen)


def score(answer: str, golds: list[str]) -> tuple[float, float]:
    return float(exact_match(answer, golds)), token_f1(answer, golds)


def run_eval(
    ask: Callable[[str, bool], str],
    items: list[QAItem],
    *,
    dataset: str,
    modes: tuple[str, ...] = ("rag", "closed_book"),
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> EvalReport:
    """`ask(question, retrieval) -> answer`. Scores every item in every mode; with `workers` > 1 the questions
    of a mode are asked concurrently (a batching backend then answers them together). `seconds_per_question` is
    the mode's wall time divided by its questions."""
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    report = EvalReport(dataset=dataset, n=len(items))
    rows: list[dict[str, Any]] = [{"question": it.question, "answers": it.answers} for it in items]
    total, done = len(items) * len(modes), 0
    lock = threading.Lock()
    for mode in modes:
        t = time.perf_counter()

        def one(item: QAItem, retrieval: bool = mode == "rag") -> str:
            nonlocal done
            answer = ask(item.question, retrieval)
            with lock:
                done += 1
                if progress:
                    progress(done, total)
            return answer

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            answers = list(pool.map(one, items))
        wall = time.perf_counter() - t
        ems, f1s = [], []
        for row, item, answer in zip(rows, items, answers):
            em, f1 = score(answer, item.answers)
            ems.append(em)
            f1s.append(f1)
            row[mode] = {"answer": answer, "em": em, "f1": round(f1, 4)}
        report.modes[mode] = {
            "em": round(100 * statistics.fmean(ems), 2) if ems else 0.0,
            "f1": round(100 * statistics.fmean(f1s), 2) if f1s else 0.0,
            "seconds_per_question": round(wall / len(items), 2) if items else 0.0,
        }
    report.items = rows
    report.seconds = time.perf_counter() - start
    return report
