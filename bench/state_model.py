"""Why the run's state is msgspec: build a typical completed run's state and encode it to JSON,
then decode it, with the ``RunState`` Structs we ship, with the same shape as pydantic models,
and with the plain dicts the first releases used (orjson).

Run: ``python -m bench.state_model [--n N]``. The last line is one JSON object (µs per state).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from pydantic import BaseModel

from domain.run_state import (
    Feedback,
    PlaybookCandidate,
    PolicyDecision,
    StepRecord,
    StepStatus,
    TriageResult,
    new_state,
)
from domain.state_codec import encode_state, state_from_builtins

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
STEPS = 5


class PStep(BaseModel):
    status: StepStatus
    order: int
    outputs: dict[str, Any] | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None


class PCandidate(BaseModel):
    playbook_id: str
    playbook_version: int
    reasoning: str


class PTriage(BaseModel):
    source: str
    rule_id: str | None
    domain: str
    exception_type: str
    severity: str
    confidence: float
    sla_minutes_remaining: float | None
    tags: list[str]
    reasons: list[str]
    suggested_playbook_id: str | None
    suggested_playbook_version: int | None
    playbook_reasoning: str | None
    candidates: list[PCandidate]


class PPolicy(BaseModel):
    playbook_id: str | None
    playbook_version: int | None
    playbook_name: str | None
    reasoning: str
    notes: list[str]
    requires_approval: bool
    approval_reasons: list[str]
    gate: str | None


class PFeedback(BaseModel):
    outcome: str
    duration_seconds: float
    playbook_id: str | None
    playbook_version: int | None
    total_steps: int
    completed_steps: int
    human_interventions: int
    last_actor: str | None
    severity: str | None
    triage_confidence: float | None
    approval_required: bool


class PState(BaseModel):
    schema_version: int
    triage: PTriage | None = None
    policy: PPolicy | None = None
    steps: dict[str, PStep] = {}
    total_steps: int = 0
    last_actor: str | None = None
    feedback: PFeedback | None = None


TRIAGE: dict[str, Any] = {
    "source": "rules", "rule_id": "card-declined", "domain": "payments", "exception_type": "payment.failed",
    "severity": "medium", "confidence": 0.9, "sla_minutes_remaining": 240.0, "tags": ["card"],
    "reasons": ["rule card-declined"], "suggested_playbook_id": "payment-card-declined",
    "suggested_playbook_version": 1, "playbook_reasoning": "matched domain and type",
}
POLICY: dict[str, Any] = {
    "playbook_id": "payment-card-declined", "playbook_version": 1, "playbook_name": "Card declined",
    "reasoning": "matched domain and type", "notes": [], "requires_approval": False, "approval_reasons": [],
    "gate": None,
}
FEEDBACK: dict[str, Any] = {
    "outcome": "completed", "duration_seconds": 0.01, "playbook_id": "payment-card-declined", "playbook_version": 1,
    "total_steps": STEPS, "completed_steps": STEPS, "human_interventions": 0, "last_actor": "agent:feedback",
    "severity": "medium", "triage_confidence": 0.9, "approval_required": False,
}
CANDIDATE: dict[str, Any] = {
    "playbook_id": "payment-card-declined", "playbook_version": 1, "reasoning": "matched domain and type",
}


def ours() -> bytes:
    state = new_state(triage=TriageResult(**TRIAGE, candidates=[PlaybookCandidate(**CANDIDATE)]))
    state.policy = PolicyDecision(**POLICY)
    state.steps = {f"s{i}": StepRecord(status=StepStatus.COMPLETED, order=i, outputs={"k": i}, completed_at=NOW,
                                       completed_by="agent:resolution") for i in range(STEPS)}
    state.total_steps, state.last_actor = STEPS, "agent:feedback"
    state.feedback = Feedback(**FEEDBACK)
    return encode_state(state)


def pydantic_models() -> bytes:
    state = PState(schema_version=2, triage=PTriage(**TRIAGE, candidates=[PCandidate(**CANDIDATE)]))
    state.policy = PPolicy(**POLICY)
    state.steps = {f"s{i}": PStep(status=StepStatus.COMPLETED, order=i, outputs={"k": i}, completed_at=NOW,
                                  completed_by="agent:resolution") for i in range(STEPS)}
    state.total_steps, state.last_actor = STEPS, "agent:feedback"
    state.feedback = PFeedback(**FEEDBACK)
    return state.model_dump_json().encode()


def dicts() -> bytes:
    state: dict[str, Any] = {"triage": {**TRIAGE, "candidates": [dict(CANDIDATE)]}}
    state["policy"] = dict(POLICY)
    state["steps"] = {f"s{i}": {"status": "completed", "order": i, "outputs": {"k": i},
                                "completed_at": NOW.isoformat(), "completed_by": "agent:resolution"}
                      for i in range(STEPS)}
    state["steps_total"], state["last_actor"] = STEPS, "agent:feedback"
    state["feedback"] = dict(FEEDBACK)
    return orjson.dumps(state)


def per_call_us(work: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(3):  # the best of three: the machine's noise only ever adds time
        started = time.perf_counter()
        for _ in range(n):
            work()
        best = min(best, (time.perf_counter() - started) / n * 1e6)
    return round(best, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    n = parser.parse_args().n
    ours_json, pydantic_json, dict_json = ours(), pydantic_models(), dicts()
    build = {"msgspec": per_call_us(ours, n), "pydantic": per_call_us(pydantic_models, n),
             "dict_orjson": per_call_us(dicts, n)}
    decode = {
        "msgspec": per_call_us(lambda: state_from_builtins(orjson.loads(ours_json)), n),
        "pydantic": per_call_us(lambda: PState.model_validate_json(pydantic_json), n),
        "dict_orjson": per_call_us(lambda: orjson.loads(dict_json), n),
    }
    for what, figures in (("build and encode", build), ("decode", decode)):
        print(f"{what} (µs per state):", "  ".join(f"{k} {v}" for k, v in figures.items()))
    print(json.dumps({
        "build_and_encode_us": build, "decode_us": decode,
        "bytes": {"msgspec": len(ours_json), "pydantic": len(pydantic_json), "dict_orjson": len(dict_json)},
        "n": n, "msgspec_version": msgspec.__version__,
    }))

if __name__ == "__main__":
    main()
