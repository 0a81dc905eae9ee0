"""Triage: classify an exception with the deterministic rules of ``config/triage.yaml``
and suggest the playbooks that match it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from agents.facts import ExceptionFacts, facts_of
from agents.matching import PlaybookMatch, rank_playbooks
from config.playbooks import Playbook
from config.severity import Severity
from config.triage_rules import ClassificationRule, TriageRules
from domain.run_state import PlaybookCandidate, TriageResult


def _rule_for(rules: TriageRules, facts: ExceptionFacts) -> ClassificationRule | None:
    for rule in rules.rules:
        when = rule.when
        if when.domain is not None and when.domain != facts.domain:
            continue
        if when.type is not None and not fnmatchcase(facts.exception_type, when.type):
            continue
        if when.codes is not None and facts.code not in when.codes:
            continue
        return rule
    return None


def _escalate(rules: TriageRules, facts: ExceptionFacts, severity: Severity) -> tuple[Severity, list[str]]:
    reasons = []
    if facts.amount is not None:
        steps = [e.raise_by for e in rules.amount_escalation if facts.amount >= e.amount_gte]
        if steps:
            severity = severity.raised(max(steps))
            amount = f"{facts.amount} {facts.currency}" if facts.currency else str(facts.amount)
            reasons.append(f"amount {amount} raised severity by {max(steps)}")
    remaining = facts.sla_minutes_remaining
    if remaining is not None:
        for rule in sorted(rules.sla_escalation, key=lambda e: e.minutes_remaining_lt):
            if remaining < rule.minutes_remaining_lt:
                before = severity
                severity = severity.raised(rule.raise_by)
                if rule.at_least is not None and severity.rank < rule.at_least.rank:
                    severity = rule.at_least
                if severity != before:
                    reasons.append(f"{remaining} SLA minutes left raised severity to {severity}")
                break
    return severity, reasons


def triage(
    exception: dict[str, Any], rules: TriageRules, playbooks: Iterable[Playbook], now: datetime
) -> TriageResult:
    """The triage result as stored on the run and in the ``triage.completed`` event."""
    facts = facts_of(exception, now)
    rule = _rule_for(rules, facts)
    if rule is None:
        severity, confidence, tags = rules.fallback.severity, rules.fallback.confidence, []
        reasons = [f"no rule for {facts.domain}/{facts.exception_type}; fallback classification"]
    else:
        severity, confidence, tags = rule.severity, rule.confidence, list(rule.tags)
        reasons = [f"rule {rule.id}"]
    severity, escalations = _escalate(rules, facts, severity)
    reasons.extend(escalations)
    facts = replace(facts, severity=severity, tags=frozenset(tags))
    candidates = rank_playbooks(playbooks, facts)
    return TriageResult(
        source="rules",
        rule_id=rule.id if rule else None,
        domain=facts.domain,
        exception_type=facts.exception_type,
        severity=str(severity),
        confidence=confidence,
        sla_minutes_remaining=facts.sla_minutes_remaining,
        tags=tags,
        reasons=reasons,
        **suggestion(candidates),
    )


def suggestion(candidates: list[PlaybookMatch]) -> dict[str, Any]:
    """Triage's playbook fields for ranked matches: the best one, why, and every candidate."""
    best = candidates[0] if candidates else None
    return {
        "suggested_playbook_id": best.playbook_id if best else None,
        "suggested_playbook_version": best.version if best else None,
        "playbook_reasoning": best.reasoning if best else None,
        "candidates": [PlaybookCandidate(playbook_id=m.playbook_id, playbook_version=m.version, reasoning=m.reasoning)
                       for m in candidates],
    }
