"""Triage's deterministic classification rules (``config/triage.yaml``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field, model_validator

from config.severity import Severity
from config.yaml_source import Declaration, load_model


class RuleCondition(Declaration):
    domain: str | None = None
    type: str | None = Field(None, description="Glob on the exception type")
    codes: list[str] | None = None


class ClassificationRule(Declaration):
    id: str
    when: RuleCondition
    severity: Severity
    confidence: float = Field(ge=0, le=1)
    tags: list[str] = Field(default_factory=list)


class AmountEscalation(Declaration):
    amount_gte: Decimal
    raise_by: int = Field(1, ge=1)


class SlaEscalation(Declaration):
    minutes_remaining_lt: float
    raise_by: int = Field(0, ge=0)
    at_least: Severity | None = None

    @model_validator(mode="after")
    def _does_something(self) -> SlaEscalation:
        if not self.raise_by and self.at_least is None:
            raise ValueError("give raise_by or at_least")
        return self


class Fallback(Declaration):
    severity: Severity = Severity.MEDIUM
    confidence: float = Field(0.3, ge=0, le=1)


class TriageRules(Declaration):
    rules: list[ClassificationRule]
    amount_escalation: list[AmountEscalation] = Field(default_factory=list)
    sla_escalation: list[SlaEscalation] = Field(default_factory=list)
    fallback: Fallback = Field(default_factory=Fallback)


def load_triage_rules(path: Path) -> TriageRules:
    return load_model(path, TriageRules)
