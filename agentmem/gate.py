"""The promotion gate: promote a trained adapter only if every check passes; otherwise say which failed and why.

Checks (thresholds in Settings): new-fact recall on trained phrasings, retention of earlier runs' facts, general
agreement with the base model, multiple-choice accuracy drop below the base model, canaries. Held-out phrasing
recall and cross-fact bleed are reported for comparison with the active adapter but do not block. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agentmem.settings import Settings


@dataclass
class Check:
    name: str
    passed: bool
    value: Any
    bound: Any
    detail: str = ""


@dataclass
class GateResult:
    promoted: bool
    checks: list[Check] = field(default_factory=list)
    compared_with: dict[str, Any] | None = None

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def reason(self) -> str:
        if self.promoted:
            return "all checks passed"
        return "; ".join(f"{c.name} {c.value} (needs {c.bound}){': ' + c.detail if c.detail else ''}"
                         for c in self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {"promoted": self.promoted, "reason": self.reason, "checks": [asdict(c) for c in self.checks],
                "compared_with": self.compared_with}


def decide(settings: Settings, ev: dict[str, Any], active: dict[str, Any] | None = None) -> GateResult:
    checks = [Check("recall", (ev["recall"] or 0) >= settings.gate_min_recall, ev["recall"],
                    f">= {settings.gate_min_recall}", f"{ev['n_new']} new facts, trained phrasings")]
    if ev.get("retention") is not None:
        checks.append(Check("retention", ev["retention"] >= settings.gate_min_retention, ev["retention"],
                            f">= {settings.gate_min_retention}", f"{ev['n_previous']} facts of earlier runs"))
    checks.append(Check("general_agreement", ev["general_agreement"] >= settings.gate_min_general_agreement,
                        ev["general_agreement"], f">= {settings.gate_min_general_agreement}",
                        "token F1 with the base model's answers to general prompts"))
    drop = round(ev["mc_accuracy_base"] - ev["mc_accuracy"], 4)
    checks.append(Check("mc_accuracy_drop", drop <= settings.gate_max_mc_drop, drop,
                        f"<= {settings.gate_max_mc_drop}",
                        f"golden multiple choice {ev['mc_accuracy']} vs base {ev['mc_accuracy_base']}"))
    if settings.gate_canaries:
        said = ev.get("canary_failure_answers") or [""] * len(ev["canary_failures"])
        failed = "; ".join(f"{q} -> {a!r}" if a else q for q, a in zip(ev["canary_failures"], said))
        checks.append(Check("canaries", not ev["canary_failures"], f"{ev['canaries_passed']}/{ev['canaries_total']}",
                            "all", f"failed: {failed}" if failed else ""))
    compared = None
    if active:
        compared = {k: active.get(k) for k in ("recall", "heldout_recall", "retention", "general_agreement",
                                                "mc_accuracy")}
    return GateResult(all(c.passed for c in checks), checks, compared)
