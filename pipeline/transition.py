"""Building a run's next write: its new row (version bumped) and its events, numbered in order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from agents.actions import Notification
from domain.run_state import replaced
from domain.topics import Topic
from store.records import EventDraft, IdempotentResponse, QueuedNotification, RunRecord, RunWrite


class Transition:
    """Collects one atomic change of a run; ``write()`` turns it into what the store commits."""

    def __init__(self, run: RunRecord, now: datetime, request_id: str | None = None) -> None:
        self.run = run
        self.now = now
        self.request_id = request_id
        self.state = replaced(run.state)
        """A copy of the run's state: its parts are replaced, never changed in place."""
        self.status = run.status
        self.pause_expires_at = run.pause_expires_at
        self._events: list[EventDraft] = []
        self._seq = run.last_seq
        self.granted_steps = 0
        """Steps a playbook run ``mode: stepwise`` may take in this transition (run-next-step grants one)."""
        self._notifications: list[QueuedNotification] = []

    def emit(self, topic: Topic, actor: str, payload: dict[str, Any]) -> None:
        self._seq += 1
        # the plain string: a str subclass costs the SQLite driver an adapter lookup per row
        self._events.append(EventDraft(self._seq, topic._value_, actor, payload, self.request_id, self.now))
        if actor.startswith(("user:", "agent:")):
            self.state.last_actor = actor

    def notify(self, notifications: list[tuple[str, str, Notification]],
               refusal: Callable[[str, str], str | None]) -> None:
        """Queue messages for the tenant's channels: deliveries written with this change; one
        that ``refusal(tenant, channel)`` says cannot be sent is written dead, saying why."""
        for delivery_id, step_id, note in notifications:
            self._notifications.append(QueuedNotification(
                delivery_id, self.run.tenant_id, self.run.id, note.channel,
                {"step_id": step_id, "target": note.target, "text": note.text, "template": note.template},
                self.now, refusal(self.run.tenant_id, note.channel),
            ))

    @property
    def seq(self) -> int:
        """The sequence number of the last event emitted so far."""
        return self._seq

    def write(self, *, is_new: bool = False, idempotency: IdempotentResponse | None = None) -> RunWrite:
        run = self.run  # built field by field: dataclasses.replace cost several times as much on the hot path
        new_run = RunRecord(
            id=run.id, tenant_id=run.tenant_id, workflow_id=run.workflow_id, status=str(self.status),
            trigger_type=run.trigger_type, trigger_ref=run.trigger_ref, started_by=run.started_by,
            version=run.version + (0 if is_new else 1), last_seq=self._seq, exception=run.exception,
            state=self.state, sla_deadline=run.sla_deadline, pause_expires_at=self.pause_expires_at,
            created_at=run.created_at, updated_at=self.now, executor_id=run.executor_id,
        )
        return RunWrite(new_run, is_new, list(self._events), idempotency, notifications=list(self._notifications))
