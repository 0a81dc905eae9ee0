"""Upgrades of stored run states, one function per older ``schema_version``.

Each takes the JSON object of its version and returns the next version's, so a run paused by
an older release can be resumed by this one. They work on plain dicts: an older shape is not a
model this code still has. Add one here (and bump ``CURRENT_SCHEMA_VERSION``) whenever a change
to ``RunState`` would make a stored state fail to load or mean something else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

State = dict[str, Any]


def split_playbook_key(key: str | None) -> tuple[str | None, int | None]:
    """``"id@3"`` → ``("id", 3)``; a bare id (no version recorded) → ``("id", None)``."""
    if not key:
        return None, None
    playbook_id, _, version = key.partition("@")
    return playbook_id, int(version) if version.isdigit() else None


def _v1_triage(triage: State) -> State:
    candidates = [
        {"playbook_id": pid, "playbook_version": version or 1, "reasoning": c.get("reasoning", "")}
        for c in triage.get("candidates", [])
        for pid, version in [split_playbook_key(c.get("playbook"))]
        if pid
    ]
    suggested_id, suggested_version = split_playbook_key(triage.pop("suggested_playbook", None))
    triage.pop("candidates", None)
    return {
        **triage, "candidates": candidates, "suggested_playbook_id": suggested_id,
        "suggested_playbook_version": suggested_version,
        "playbook_reasoning": candidates[0]["reasoning"] if candidates else None,
    }


def _v1_policy(policy: State) -> State:
    playbook_id, version = split_playbook_key(policy.pop("playbook", None))
    return {**policy, "playbook_id": playbook_id, "playbook_version": version}


def _v1_step(record: State) -> State:
    record = dict(record)
    if "at" in record:  # when the step failed
        record["failed_at"] = record.pop("at")
    return record


V1_DEFAULT_DECIDERS = ["role:approver", "role:admin"]
"""Who decided a v1 pause that recorded no deciders (the first releases' default; the same as
``config.policies.DEFAULT_DECIDERS``, which a test keeps equal)."""


def _v1_pause(pause: State) -> State:
    return {"deciders": list(V1_DEFAULT_DECIDERS), **pause}


def _v1_feedback(feedback: State) -> State:
    feedback = dict(feedback)
    playbook_id, version = split_playbook_key(feedback.pop("playbook", None))
    total, completed = feedback.pop("steps_total", 0), feedback.pop("steps_completed", 0)
    return {**feedback, "playbook_id": playbook_id, "playbook_version": version, "total_steps": total,
            "completed_steps": completed}


def v1_to_v2(state: State) -> State:
    """The untyped dict of the first releases → the first typed model.

    Playbooks were named ``id@version`` in one string; they are now ``playbook_id`` plus
    ``playbook_version`` (seed 002's names), triage's suggestion is ``suggested_playbook_id`` with
    ``playbook_reasoning``, ``steps_total`` is ``total_steps``, and a failed step's ``at`` is
    ``failed_at``."""
    out = dict(state)
    if isinstance(out.get("triage"), dict):
        out["triage"] = _v1_triage(dict(out["triage"]))
    if isinstance(out.get("policy"), dict):
        out["policy"] = _v1_policy(dict(out["policy"]))
    if isinstance(out.get("pause"), dict):
        out["pause"] = _v1_pause(out["pause"])
    if isinstance(out.get("steps"), dict):
        out["steps"] = {sid: _v1_step(rec) for sid, rec in out["steps"].items()}
    if "steps_total" in out:
        out["total_steps"] = out.pop("steps_total")
    if isinstance(out.get("feedback"), dict):
        out["feedback"] = _v1_feedback(out["feedback"])
    out["schema_version"] = 2
    return out


UPCASTERS: dict[int, Callable[[State], State]] = {1: v1_to_v2}
"""Stored version → the function that lifts it one version up."""
