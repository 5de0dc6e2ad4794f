"""A consolidation run for one pool, as a recipe: setup → select → filter → synthesize → train → evaluate → gate →
publish → cleanup.

Facts change status only at the end of a run, in one transaction each (known, consolidated), so a run that crashes
or is cancelled leaves every fact pending and the active adapter unchanged. The run is recorded in the memory log
(status, stage, config, metrics, gate, timings) with a log file under runs/<id>/. This module does not know about
retrieval or documents: question/answer pairs drawn from documents come in as `extra` FactSpecs from the caller.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentmem.chat_format import system_prompt
from agentmem.crashpoints import crash_point
from agentmem.errors import AgentmemError, NotFound
from agentmem.factcheck import recalls, unverifiable_reason
from agentmem.gate import GateResult, decide
from agentmem.golden import base_references, chat_messages, score_general
from agentmem.llm.base import GenerationConfig, LLMBackend
from agentmem.manifest import ExampleSource, Manifest, TrainedExample, facts_hash
from agentmem.memory import Fact, FactStatus, RunStatus
from agentmem.registry import AdapterRegistry
from agentmem.run_recovery import check_not_running, reconcile_published, recover_stale_runs
from agentmem.settings import Settings
from agentmem.synthesize import (
    Example,
    FactSpec,
    SynthesisConfig,
    answer_text,
    build_rehearsal,
    build_training_set,
    natural_question,
)
from agentmem.training import Cancelled, LoraRecipe, TrainConfig

log = logging.getLogger(__name__)
STAGES = ("select", "filter", "synthesize", "train", "evaluate", "gate", "publish")
RECALL_TOKENS = 40


@dataclass
class Candidate:
    spec: FactSpec
    fact: Fact | None  # None for pairs drawn from documents (no memory-log row)
    decision: str = "train"  # train | known | unverifiable
    reason: str = ""
    miss_id: str | None = None  # a miss resolved by a document: the user's question, answered from it
    source: ExampleSource | None = None  # provenance when there is no fact row


# (pool, question) -> (answer, documents it came from), or None when the documents do not answer it now
DocumentAnswerer = Callable[[str, str], "tuple[str, list[str]] | None"]


@dataclass
class RunOutcome:
    run_id: str
    pool: str
    status: str
    gate: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    adapter_version: str | None = None
    serving_name: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[dict[str, Any]], None]


class Consolidation:
    """One run. `run()` does everything; the stage methods are separate so each can be tested and killed in."""

    def __init__(self, settings: Settings, memory, registry: AdapterRegistry, backend: LLMBackend, *,
                 base_model_dir: Path, train_config: TrainConfig | None = None,
                 synthesis: SynthesisConfig | None = None, extra: Sequence[FactSpec] = (),
                 on_publish: Callable[[str], None] | None = None, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None, document_answer: DocumentAnswerer | None = None):
        self.s, self.memory, self.registry, self.backend = settings, memory, registry, backend
        self.base_model_dir = Path(base_model_dir)
        self.train_config = train_config or TrainConfig.from_dict(
            {"system_prompt": system_prompt(), "seed": settings.consolidate_seed} | settings.consolidate_train)
        self.synthesis = synthesis or SynthesisConfig(seed=settings.consolidate_seed)
        self.extra = list(extra)
        self.on_publish = on_publish
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.document_answer = document_answer if settings.consolidate_documents else None
        self.run = None
        self.dir: Path | None = None
        self.metrics: dict[str, Any] = {"timings": {}}
        self._stage_started: tuple[str, float] | None = None

    # -- bookkeeping ---------------------------------------------------------------------------------------
    def _stage(self, name: str, **info: Any) -> None:
        self._check_cancel()
        self._end_stage()
        self._stage_started = (name, time.perf_counter())
        self.run = self.memory.update_run(self.run.pool, self.run.id, stage=name)
        self._log(f"stage {name}" + (f" {json.dumps(info)}" if info else ""))
        self._tell({"stage": name, **info})
        crash_point(name)

    def _end_stage(self) -> None:
        """Seconds spent in the stage now ending, e.g. metrics["timings"] = {"filter_s": 3.2, "train_s": 95.0}."""
        if self._stage_started is not None:
            name, started = self._stage_started
            self.metrics["timings"][f"{name}_s"] = round(time.perf_counter() - started, 1)
            self._stage_started = None

    def _tell(self, event: dict[str, Any]) -> None:
        if self.progress:
            self.progress({"run_id": self.run.id, "pool": self.run.pool, **event})

    def _log(self, line: str) -> None:
        if self.dir:
            with open(self.dir / "run.log", "a", encoding="utf-8") as fh:
                fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
        log.info("run %s: %s", self.run.id if self.run else "-", line)

    def _check_cancel(self) -> None:
        if self.cancel.is_set() or (self.dir and (self.dir / "cancel").exists()):
            raise Cancelled("the consolidation run was cancelled", "nothing changed; start a new run when ready")

    # -- the recipe ----------------------------------------------------------------------------------------
    def setup(self, pool: str, run_id: str | None = None) -> None:
        config = {"train": self.train_config.to_dict(), "synthesis": asdict(self.synthesis), "pid": os.getpid(),
                  "base_model": str(self.base_model_dir)}
        if run_id:  # a run created earlier (queued by the CLI or the app) is taken over here
            self.run = self.memory.update_run(pool, run_id, status=RunStatus.RUNNING, config=config)
        else:
            self.run = self.memory.claim_run(pool, config=config)
            self.run = self.memory.update_run(pool, self.run.id, status=RunStatus.RUNNING)
        self.dir = self.s.runs_dir / self.run.id
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.json").write_text(json.dumps(config, indent=2))
        self.run = self.memory.update_run(pool, self.run.id, log_path=str(self.dir / "run.log"))

    def execute(self, pool: str, run_id: str | None = None) -> RunOutcome:
        self.setup(pool, run_id)
        try:
            outcome = self._execute(pool)
        except Cancelled as exc:
            outcome = self._finish(RunStatus.CANCELLED, error=exc.message)
        except Exception as exc:
            self._log(f"failed: {exc!r}")
            outcome = self._finish(RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        finally:
            self.cleanup()
        return outcome

    def _execute(self, pool: str) -> RunOutcome:
        t0 = time.perf_counter()
        self._stage("select")
        candidates = self.select(pool)
        self._stage("filter", candidates=len(candidates))
        self.filter(candidates)
        todo = [c for c in candidates if c.decision == "train"]
        self.metrics["facts"] = {"candidates": len(candidates), "train": len(todo),
                                 "known": sum(c.decision == "known" for c in candidates),
                                 "unverifiable": sum(c.decision == "unverifiable" for c in candidates)}
        self.metrics["decisions"] = [{"fact_id": c.fact.id if c.fact else None, "miss_id": c.miss_id, "text": c.spec.text,
                                      "decision": c.decision, "reason": c.reason} for c in candidates]
        if not todo:
            self._apply_known(pool, candidates)
            return self._finish(RunStatus.SUCCEEDED, gate={"promoted": False, "reason": "nothing new to train"})
        self._stage("synthesize")
        previous = self.previous_facts(pool)
        train, heldout = build_training_set([c.spec for c in todo], previous, self.rehearsal(), self.synthesis)
        self.metrics["data"] = {"train_examples": len(train), "heldout_examples": len(heldout),
                                "previous_facts": len(previous)}
        self._stage("train", examples=len(train))
        staged = self.dir / "adapter"
        result = self.train(train, staged)
        self.metrics["training"] = result
        self._stage("evaluate")
        evaluation = self.evaluate(pool, staged, todo, heldout, previous)
        self.metrics["eval"] = evaluation
        self._stage("gate")
        gate = decide(self.s, evaluation, self._active_metrics(pool))
        if not gate.promoted:
            self._apply_known(pool, candidates)
            self._log(f"gate refused: {gate.reason}")
            return self._finish(RunStatus.REJECTED, gate=gate.to_dict())
        self._stage("publish")
        version = self.publish(pool, staged, todo, train, gate)
        self._apply_known(pool, candidates)
        self.metrics["timings"]["total_s"] = round(time.perf_counter() - t0, 1)
        return self._finish(RunStatus.SUCCEEDED, gate=gate.to_dict(), version=version)

    # -- stages --------------------------------------------------------------------------------------------
    def select(self, pool: str) -> list[Candidate]:
        """Pending facts, with the user's own question where a miss was resolved by the fact; misses resolved by
        documents, answered from those documents (when a document answerer is given); plus extras."""
        questions: dict[str, str] = {}
        by_document = []
        for miss in self.memory.list_misses(pool, status="resolved"):
            if miss.resolved_by and miss.resolved_by.kind == "fact":
                questions.setdefault(miss.resolved_by.ref, miss.question)
            elif miss.resolved_by and miss.resolved_by.kind == "document":
                by_document.append(miss)
        out = [Candidate(FactSpec(text=f.text, id=f.id, question=questions.get(f.id)), f)
               for f in self.memory.list_facts(pool, status=FactStatus.PENDING)]
        if self.document_answer is not None and by_document:
            out += self._document_candidates(pool, by_document)
        out += [Candidate(spec, None, source=ExampleSource(kind="extra", fact_text=spec.text,
                                                           note="passed to the run directly"))
                for spec in self.extra]
        return out

    def _document_candidates(self, pool: str, misses: list) -> list[Candidate]:
        trained = {m for v in self.registry.list(pool) for m in v.manifest().miss_ids}
        out = []
        for miss in misses:
            if miss.id in trained:
                continue
            found = self.document_answer(pool, miss.question)
            spec = FactSpec(text=found[0].strip() if found and found[0].strip() else miss.question, id=miss.id,
                            question=miss.question)
            c = Candidate(spec, None, miss_id=miss.id, source=ExampleSource(
                kind="document", fact_text=spec.text, document=(found[1] or [None])[0] if found else None,
                note=f"answer to the missed question {miss.question!r}, from the documents"))
            if found is None or not found[0].strip():
                c.decision, c.reason = "unverifiable", "the documents give no answer to it now"
            out.append(c)
        return out

    def filter(self, candidates: list[Candidate]) -> None:
        """Unverifiable facts are never trained; facts the served model already answers need no training."""
        checkable = []
        for c in candidates:
            if c.decision != "train":
                continue
            reason = unverifiable_reason(c.spec.text)
            if reason:
                c.decision, c.reason = "unverifiable", reason
            else:
                checkable.append(c)
        if not checkable:
            return
        adapter = self._serving_adapter(self.run.pool)
        questions = [c.spec.question or natural_question(c.spec) for c in checkable]
        answers = self._ask(questions, adapter, [c.spec for c in checkable])
        for c, q, a in zip(checkable, questions, answers):
            if recalls(a, c.spec.text, c.spec.answer):
                c.decision, c.reason = "known", f"already answered closed-book: {q!r} -> {a[:80]!r}"
            else:
                c.reason = "not known closed-book"

    def previous_facts(self, pool: str) -> list[FactSpec]:
        return [FactSpec(text=f.text, id=f.id) for f in self.memory.list_facts(pool, status=FactStatus.CONSOLIDATED)]

    def rehearsal(self) -> list[Example]:
        """The base model's own answers to general prompts, cached per base model and system prompt."""
        import hashlib

        from agentmem.synthesize import load_general_prompts

        prompts = load_general_prompts()
        sys_prompt = self.train_config.system_prompt
        prompt_id = hashlib.sha256("\n".join([sys_prompt or "", *prompts]).encode()).hexdigest()[:8]
        path = self.s.cache_path / "rehearsal" / f"{_model_id(self.base_model_dir)}-{prompt_id}.json"
        if path.is_file():
            return [Example(**e) for e in json.loads(path.read_text())]
        msgs = [self._messages(p) for p in prompts]
        replies = {p: g.text for p, g in zip(prompts, self.backend.generate_batch(
            msgs, GenerationConfig(max_new_tokens=96)))}
        examples = build_rehearsal(lambda m: replies[m[-1]["content"]], prompts, system_prompt=sys_prompt)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(e) for e in examples]))
        os.replace(tmp, path)
        return examples

    def train(self, examples: list[Example], out_dir: Path) -> dict[str, Any]:
        def tell(p) -> None:
            self._check_cancel()
            crash_point("train.step")
            self._tell({"stage": "train", "step": p.step, "total": p.total, "epoch": p.epoch,
                        "loss": round(p.loss, 4), "tokens_per_s": round(p.tokens_per_s, 1), "eta_s": round(p.eta_s, 1)})

        recipe = LoraRecipe(self.train_config)
        try:
            recipe.setup(self.base_model_dir)
            result = recipe.train(examples, progress=tell, cancel=self.cancel)
            recipe.save(out_dir)
        finally:
            recipe.cleanup()
        return result.to_dict()

    def evaluate(self, pool: str, staged: Path, todo: list[Candidate], heldout: list[Example],
                 previous: list[FactSpec]) -> dict[str, Any]:
        """Greedy, normalized: new-fact recall (trained and held-out phrasings), retention, general regression."""
        name = f"{pool}-candidate-{self.run.id}"
        self.backend.load_adapter(name, str(staged))
        try:
            by_id = {c.spec.id: c.spec for c in todo if c.spec.id is not None}
            by_answer = {answer_text(c.spec): c.spec for c in todo}
            trained_q = [(c.spec, c.spec.question or natural_question(c.spec)) for c in todo]
            held_q = [(by_id.get(e.fact_id) or by_answer[e.answer], e.question) for e in heldout
                      if e.fact_id in by_id or e.answer in by_answer]
            prev_q = [(p, natural_question(p)) for p in previous]
            everything = trained_q + held_q + prev_q
            answers = self._ask([q for _, q in everything], name, [spec for spec, _ in everything])
            verdicts = [recalls(a, spec.text, spec.answer) for (spec, _), a in zip(everything, answers)]
            n1, n2 = len(trained_q), len(trained_q) + len(held_q)
            bleed = _bleed(everything[:n1], answers[:n1], [c.spec for c in todo])
            refs = base_references(self.backend, self.s.cache_path / "golden", _model_id(self.base_model_dir),
                                   self.train_config.system_prompt)
            general = score_general(self.backend, name, refs, self.train_config.system_prompt)
        finally:
            self.backend.unload_adapter(name)
        return {
            "recall": _rate(verdicts[:n1]), "heldout_recall": _rate(verdicts[n1:n2]),
            "retention": _rate(verdicts[n2:]) if prev_q else None,
            "n_new": n1, "n_heldout": n2 - n1, "n_previous": len(prev_q), "bleed": bleed,
            "examples": [{"question": q, "answer": a, "ok": v, "fact_id": s.id}
                         for (s, q), a, v in zip(everything, answers, verdicts)],
            **general,
        }

    def publish(self, pool: str, staged: Path, todo: list[Candidate], train: list[Example], gate: GateResult) -> Any:
        fact_rows = [c.fact for c in todo if c.fact is not None]
        manifest = Manifest(
            base_model=str(self.base_model_dir), fact_ids=[f.id for f in fact_rows], facts_hash=facts_hash(fact_rows),
            miss_ids=[c.miss_id for c in todo if c.miss_id],
            data_card=[self._card_row(e, todo) for e in train],
            training_config=self.train_config.to_dict(), metrics={k: v for k, v in self.metrics["eval"].items()
                                                                  if k != "examples"} | {"gate": gate.to_dict()},
            run_id=self.run.id,
        )
        version = self.registry.publish(pool, staged, manifest)
        crash_point("published")  # between registering the adapter and marking the facts
        self.memory.mark_consolidated(pool, [f.id for f in fact_rows], version.version)
        if self.on_publish:
            self.on_publish(pool)
        return version

    def cleanup(self) -> None:
        if self.dir and (self.dir / "adapter").exists():
            shutil.rmtree(self.dir / "adapter", ignore_errors=True)  # published folders were moved away already

    # -- helpers -------------------------------------------------------------------------------------------
    def _card_row(self, e: Example, todo: list[Candidate]) -> TrainedExample:
        """One data-card row: every trained example traces to the fact (and its provenance) it came from."""
        row = {"prompt": e.question, "completion": e.answer, "fact_id": e.fact_id}
        if e.fact_id is None:
            return TrainedExample(**row, kind="rehearsal",
                                  provenance=ExampleSource(kind="rehearsal", note="the base model's own answer"))
        for c in todo:
            if c.spec.id == e.fact_id:
                source = ExampleSource.of_fact(c.fact) if c.fact is not None else c.source
                return TrainedExample(**row, kind="document_qa" if c.miss_id else "fact", provenance=source)
        try:
            old = self.memory.get_fact(self.run.pool, e.fact_id)
        except NotFound:  # deleted since: keep the row, say so
            return TrainedExample(**row, kind="previous_fact", provenance=ExampleSource(kind="unknown",
                                                                                        note="fact deleted"))
        return TrainedExample(**row, kind="previous_fact",
                              provenance=ExampleSource.of_fact(old, rehearsed_from=old.adapter_version))

    def _serving_adapter(self, pool: str) -> str | None:
        active = self.registry.active(pool)
        if active is None:
            return None
        if active.serving_name not in self.backend.adapters():
            self.backend.load_adapter(active.serving_name, str(active.path))
        return active.serving_name

    def _active_metrics(self, pool: str) -> dict[str, Any] | None:
        active = self.registry.active(pool)
        return active.manifest().metrics if active else None

    def _ask(self, questions: list[str], adapter: str | None, facts: list[FactSpec]) -> list[str]:
        """Greedy closed-book answers, with room for each expected statement (an answer at the end of a long
        sentence must not be cut off by the token budget). Each fact's trained answer is passed as a draft: where
        greedy decoding gives it, one forward pass confirms it instead of one step per token."""
        # each answer's budget from its own statement (rounded up to 16 tokens); one call, so that rows of
        # different budgets fill the same batches (in budget order) instead of one part-filled batch per budget
        if not questions:
            return []
        budgets = [-(-max(RECALL_TOKENS, int(self.backend.count_tokens(f.text) * 1.25) + 8) // 16) * 16 for f in facts]
        got = self.backend.generate_batch([self._messages(q) for q in questions],
                                          GenerationConfig(max_new_tokens=max(budgets)), adapter,
                                          drafts=[answer_text(f) for f in facts], budgets=budgets)
        return [g.text for g in got]

    def _messages(self, question: str) -> list[dict[str, str]]:
        return chat_messages(question, self.train_config.system_prompt)

    def _apply_known(self, pool: str, candidates: list[Candidate]) -> None:
        for c in candidates:
            if c.fact is not None and c.decision == "known":
                self.memory.set_fact_status(pool, c.fact.id, FactStatus.KNOWN)

    def _finish(self, status: RunStatus, *, gate: dict | None = None, error: str | None = None,
                version: Any = None) -> RunOutcome:
        self._end_stage()
        self.run = self.memory.update_run(
            self.run.pool, self.run.id, status=status, metrics=self.metrics, gate=gate or {}, error=error,
            adapter_version=version.version if version else None,
            fact_ids=[d["fact_id"] for d in self.metrics.get("decisions", []) if d["fact_id"]],
        )
        self._log(f"finished: {status.value}" + (f" ({error})" if error else ""))
        self._tell({"stage": "done", "status": status.value})
        return RunOutcome(self.run.id, self.run.pool, status.value, gate or {}, self.metrics,
                          version.version if version else None, version.serving_name if version else None, error)


def _rate(verdicts: list[bool]) -> float | None:
    return round(sum(verdicts) / len(verdicts), 4) if verdicts else None


def _bleed(asked: list[tuple[FactSpec, str]], answers: list[str], specs: list[FactSpec]) -> int:
    """Answers that give another fact's answer instead of their own."""
    n = 0
    for (spec, _), a in zip(asked, answers):
        if recalls(a, spec.text, spec.answer):
            continue
        if any(other.key != spec.key and recalls(a, other.text, other.answer) for other in specs):
            n += 1
    return n


def _model_id(path: Path) -> str:
    import hashlib

    cfg = path / "config.json"
    stamp = f"{path.resolve()}|{cfg.stat().st_mtime_ns if cfg.exists() else 0}"
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


__all__ = ["Consolidation", "RunOutcome", "STAGES", "check_not_running", "recover_stale_runs", "reconcile_published",
           "AgentmemError"]
