"""Executors for the automatic actions. Their effect is the record they return, committed
with the step's event in one transaction, so each runs once per (run, step)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Notification:
    """A message for one of the tenant's channels (``config/channels.yaml``). It is written as a
    delivery in the same transaction as the step's event, and sent by the delivery worker."""

    channel: str
    target: str | None
    text: str
    template: str | None = None


@dataclass(frozen=True)
class ActionResult:
    outputs: dict[str, Any]
    notes: str
    run_changes: dict[str, Any] = field(default_factory=dict)
    notification: Notification | None = None


def notify(params: dict[str, Any]) -> ActionResult:
    channel = params.get("channel")
    if not channel:
        raise ValueError("notify needs a 'channel' parameter: one of the tenant's channels (config/channels.yaml)")
    message, template = params.get("message"), params.get("template")
    if not message and not template:
        raise ValueError("notify needs a 'message' or a 'template' parameter")
    target = params.get("to") or params.get("target") or None
    outputs: dict[str, Any] = {"channel": channel, "target": target}
    for key in ("template", "message"):
        if params.get(key):
            outputs[key] = params[key]
    text = str(message or f"{template}")
    return ActionResult(outputs, f"on {channel}" + (f" for {target}" if target else ""),
                        notification=Notification(str(channel), target and str(target), text,
                                                  template and str(template)))


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
