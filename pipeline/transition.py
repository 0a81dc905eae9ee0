"""Building a run's next write: its new row (version bumped) and its events, numbered in order."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from domain.run_state import replaced
from domain.topics import Topic
from store.records import EventDraft, IdempotentResponse, RunRecord, RunWrite


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

    def emit(self, topic: Topic, actor: str, payload: dict[str, Any]) -> None:
        self._seq += 1
        self._events.append(EventDraft(self._seq, topic, actor, payload, self.request_id, self.now))
        if actor.startswith(("user:", "agent:")):
            self.state.last_actor = actor

    @property
    def seq(self) -> int:
        """The sequence number of the last event emitted so far."""
        return self._seq

    def write(self, *, is_new: bool = False, idempotency: IdempotentResponse | None = None) -> RunWrite:
        new_run = replace(
            self.run,
            status=str(self.status),
            state=self.state,
            last_seq=self._seq,
            version=self.run.version + (0 if is_new else 1),
            pause_expires_at=self.pause_expires_at,
            updated_at=self.now,
        )
        return RunWrite(new_run, is_new, list(self._events), idempotency)
