"""Which of a schedule's fire times are due, and what becomes of each: the one that fires, the
late ones coalesced into it, the ones too old to catch up. Pure, so the rules are tested
without a clock or a database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.calendar import Calendar

ON_TIME = timedelta(seconds=60)
"""A fire this late is on time (a busy event loop, a jittered wake-up), not missed."""
MAX_DUE = 100_000
"""How many missed fire times are walked one by one; beyond this they are counted as dropped."""


@dataclass
class DuePlan:
    fire: datetime | None = None
    """The scheduled time to fire now, if any."""
    coalesced: list[datetime] = field(default_factory=list)
    """Earlier missed times within the catch-up window, folded into ``fire``."""
    dropped: list[datetime] = field(default_factory=list)
    """Missed times older than the catch-up window, not fired."""
    more_dropped: bool = False
    """More times were missed than were walked (``MAX_DUE``)."""
    next_fire_at: datetime | None = None


def plan_due(calendar: Calendar, next_fire_at: datetime | None, now: datetime, catch_up: timedelta) -> DuePlan:
    """What to do at ``now`` with the times from ``next_fire_at`` on (``next_fire_at`` is the first
    time not yet handled)."""
    plan = DuePlan(next_fire_at=next_fire_at)
    if next_fire_at is None or next_fire_at > now:
        return plan
    window = max(catch_up, ON_TIME)
    due: list[datetime] = []
    moment: datetime | None = next_fire_at
    while moment is not None and moment <= now:
        if len(due) >= MAX_DUE:
            plan.more_dropped = True
            moment = calendar.next_after(now)
            break
        due.append(moment)
        moment = calendar.next_after(moment)
    plan.next_fire_at = moment
    recent = [t for t in due if now - t <= window]
    plan.dropped = [t for t in due if now - t > window]
    if recent:
        plan.fire, plan.coalesced = recent[-1], recent[:-1]
    return plan
