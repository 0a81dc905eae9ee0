"""Deterministic playbook matching: every given condition must hold; rank by priority,
then newest version, then id, so the choice never depends on file or insertion order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from agents.facts import ExceptionFacts
from config.playbooks import MatchConditions, Playbook


@dataclass(frozen=True)
class PlaybookMatch:
    playbook_id: str
    version: int
    priority: int
    reasoning: str

    @property
    def key(self) -> str:
        return f"{self.playbook_id}@{self.version}"


def why_matches(conditions: MatchConditions, facts: ExceptionFacts) -> list[str] | None:
    """The reasons the conditions hold, or ``None`` when one of them does not."""
    reasons: list[str] = []
    if conditions.domain is not None:
        if conditions.domain != facts.domain:
            return None
        reasons.append(f"domain={facts.domain}")
    if conditions.exception_type is not None:
        if not fnmatchcase(facts.exception_type, conditions.exception_type):
            return None
        reasons.append(f"exception_type {facts.exception_type} ~ {conditions.exception_type}")
    if conditions.severity_in is not None:
        if facts.severity not in conditions.severity_in:
            return None
        reasons.append(f"severity {facts.severity}")
    if conditions.sla_minutes_remaining_lt is not None:
        remaining = facts.sla_minutes_remaining
        if remaining is None or remaining >= conditions.sla_minutes_remaining_lt:
            return None
        reasons.append(f"sla {remaining} min < {conditions.sla_minutes_remaining_lt}")
    if conditions.amount_gte is not None or conditions.amount_lt is not None:
        if facts.amount is None:
            return None
        if conditions.amount_gte is not None and facts.amount < conditions.amount_gte:
            return None
        if conditions.amount_lt is not None and facts.amount >= conditions.amount_lt:
            return None
        reasons.append(f"amount {facts.amount} in range")
    if conditions.policy_tags is not None:
        if not set(conditions.policy_tags) <= facts.tags:
            return None
        reasons.append(f"tags {sorted(conditions.policy_tags)}")
    return reasons


def rank_playbooks(playbooks: Iterable[Playbook], facts: ExceptionFacts) -> list[PlaybookMatch]:
    found = []
    for playbook in playbooks:
        reasons = why_matches(playbook.match, facts)
        if reasons is None:
            continue
        detail = ", ".join(reasons) or "no conditions"
        found.append(PlaybookMatch(
            playbook.id, playbook.version, playbook.priority,
            f"'{playbook.name}' (priority={playbook.priority}, v{playbook.version}): {detail}",
        ))
    found.sort(key=lambda m: (-m.priority, -m.version, m.playbook_id))
    return found
