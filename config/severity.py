"""The ordered severity scale shared by triage rules, guardrails and playbook conditions."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def raised(self, levels: int = 1) -> Severity:
        return _ORDER[min(len(_ORDER) - 1, max(0, self.rank + levels))]


_ORDER = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
