"""Per-tenant guardrails and approval gates (``config/policies.yaml``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from config.severity import Severity
from config.yaml_source import Declaration, load_model

DEFAULT_GATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["decision"],
    "properties": {
        "decision": {"enum": ["approve", "reject"]},
        "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
    },
    "if": {"properties": {"decision": {"const": "reject"}}},
    "then": {"required": ["decision", "reason"]},
}


class ApprovalTriggers(Declaration):
    """Any one trigger that holds makes the run wait for a human."""

    severity_in: list[Severity] = Field(default_factory=lambda: [Severity.HIGH, Severity.CRITICAL])
    amount_gte: Decimal | None = Decimal("10000")
    confidence_lt: float | None = Field(0.6, ge=0, le=1)
    risky_playbook: bool = True


DEFAULT_DECIDERS = ("role:approver", "role:admin")


class ExpiryPolicy(Declaration):
    """What the SLA sweep does with an approval nobody decided before ``expires_at``."""

    action: Literal["reject", "approve", "reassign"] = "reject"
    reason: str = Field("the approval expired before anyone decided", min_length=1, max_length=500)
    queue: str | None = Field(None, description="reassign: the escalation queue that decides instead")
    extend_minutes: float = Field(60, gt=0, description="reassign: how long the escalation queue has")
    then: Literal["reject", "approve", "wait"] = Field(
        "reject", description="reassign: what happens when the escalation queue lets it expire too"
    )

    @model_validator(mode="after")
    def _reassign_names_a_queue(self) -> ExpiryPolicy:
        if self.action == "reassign" and not self.queue:
            raise ValueError("on_expiry.action 'reassign' needs a queue")
        return self


class ApprovalGate(Declaration):
    name: str = "policy_approval"
    expires_after_minutes: float = Field(240, gt=0)
    payload_schema: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_GATE_SCHEMA))
    deciders: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DECIDERS), min_length=1,
        description="Who may decide: 'role:<role>' or 'queue:<queue>' entries",
    )
    approvals_required: int = Field(1, ge=1, le=10, description="Distinct approvals before the run goes on")
    initiator_may_approve: bool = Field(False, description="Whether whoever started the run may approve it")
    on_expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)

    @field_validator("deciders")
    @classmethod
    def _deciders_are_roles_or_queues(cls, deciders: list[str]) -> list[str]:
        for decider in deciders:
            kind, _, name = decider.partition(":")
            if kind not in ("role", "queue") or not name:
                raise ValueError(f"decider {decider!r} must be 'role:<name>' or 'queue:<name>'")
        return deciders


class TenantPolicy(Declaration):
    approved_playbooks: list[str] = Field(
        default_factory=lambda: ["*"], description="Playbook ids, or '*' for every shipped one"
    )
    require_approval: ApprovalTriggers = Field(default_factory=ApprovalTriggers)
    gate: ApprovalGate = Field(default_factory=ApprovalGate)

    def approves(self, playbook_id: str) -> bool:
        return "*" in self.approved_playbooks or playbook_id in self.approved_playbooks


class Policies(Declaration):
    defaults: TenantPolicy = Field(default_factory=TenantPolicy)
    tenants: dict[str, TenantPolicy] = Field(default_factory=dict)

    def for_tenant(self, tenant_id: str) -> TenantPolicy:
        return self.tenants.get(tenant_id, self.defaults)


def load_policies(path: Path) -> Policies:
    return load_model(path, Policies)
