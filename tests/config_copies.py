"""A copy of the shipped configuration with extra playbooks, triage rules or tools, for tests
that need a library the product does not ship."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from config.settings import SHIPPED_CONFIG_DIR

ACCOUNT_FLAGGED_RULE = {
    "id": "account-flagged", "when": {"domain": "accounts", "type": "account.flagged"},
    "severity": "low", "confidence": 0.9,
}

REVIEW_PLAYBOOK = """
id: test-review
name: Review a flagged account
version: 1
priority: 1000
match: {domain: accounts, exception_type: "account.flagged"}
steps:
  - id: route
    name: Route to analysts
    action: assign_owner
    params: {owner: "queue:kyc-analysts"}
  - id: review
    name: Analyst review
    type: human
    action: human_task
    assignee: "queue:kyc-analysts"
    outputs:
      decision: {type: string, enum: [clear, close_account]}
      risk_score: {type: number, minimum: 0, maximum: 1}
      notes: {type: string, required: false}
  - id: record
    name: Record the decision
    action: add_comment
    params: {text: "analyst decided {steps.review.outputs.decision}"}
"""
"""A playbook for ``account.flagged`` (see ACCOUNT_FLAGGED_RULE) that waits on an analyst's review step."""


STEPWISE_PLAYBOOK = """\
id: zz-stepwise
name: Hold, assign and note a declined card, one step at a time
version: 3
priority: 1000
mode: stepwise
match: {domain: payments, exception_type: "payment.failed"}
steps:
  - id: hold
    name: Put the order on hold
    action: set_status
    params: {status: on_hold}
  - id: assign
    name: Assign an owner
    action: assign_owner
    params: {owner: "queue:payments-ops"}
  - id: note
    name: Leave a note
    action: add_comment
    params: {text: "held, owned by {steps.assign.outputs.owner}"}
"""
"""A playbook that takes one step per run-next-step call (``mode: stepwise``), for tenants that
approve every playbook (acme approves a list)."""


def config_with(
    directory: Path,
    playbooks: dict[str, str] | None = None,
    rules: list[dict[str, Any]] | None = None,
    tools_yaml: str | None = None,
) -> Path:
    """``directory`` filled with the shipped config plus ``playbooks`` (file name -> YAML text),
    extra triage ``rules`` and, if given, a ``tools.yaml``."""
    shutil.copytree(SHIPPED_CONFIG_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"),
                    dirs_exist_ok=True)
    for name, text in (playbooks or {}).items():
        (directory / "playbooks" / name).write_text(text)
    if rules:
        triage = yaml.safe_load((directory / "triage.yaml").read_text())
        triage["rules"].extend(rules)
        (directory / "triage.yaml").write_text(yaml.safe_dump(triage))
    if tools_yaml is not None:
        (directory / "tools.yaml").write_text(tools_yaml)
    return directory
