"""Executors for the automatic actions. Their effect is the record they return, committed
with the step's event in one transaction, so each runs once per (run, step)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ActionResult:
    outputs: dict[str, Any]
    notes: str
    run_changes: dict[str, Any] = field(default_factory=dict)


def notify(params: dict[str, Any]) -> ActionResult:
    channel = params.get("channel", "log")
    target = params.get("to") or params.get("target") or "operations"
    outputs = {"channel": channel, "target": target}
    for key in ("template", "message"):
        if params.get(key):
            outputs[key] = params[key]
    return ActionResult(outputs, f"notification queued on {channel} for {target}")


def assign_owner(params: dict[str, Any]) -> ActionResult:
    owner = params.get("owner")
    if not owner:
        raise ValueError("assign_owner needs an 'owner' parameter")
    return ActionResult({"owner": owner}, f"assigned to {owner}", {"owner": owner})


def set_status(params: dict[str, Any]) -> ActionResult:
    status = params.get("status")
    if not status:
        raise ValueError("set_status needs a 'status' parameter")
    outputs = {"status": status, "reason": params.get("reason")}
    return ActionResult(outputs, f"exception status set to {status}", {"exception_status": status})


def add_comment(params: dict[str, Any]) -> ActionResult:
    text = params.get("text")
    if not text:
        raise ValueError("add_comment needs a 'text' parameter")
    return ActionResult({"comment": text}, "comment added")


EXECUTORS: dict[str, Callable[[dict[str, Any]], ActionResult]] = {
    "notify": notify,
    "assign_owner": assign_owner,
    "set_status": set_status,
    "add_comment": add_comment,
}
