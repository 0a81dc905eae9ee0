"""Everything declarative, loaded once from a config directory and handed to the agents."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from config.playbooks import Playbook, load_playbook_library
from config.policies import Policies, load_policies
from config.triage_rules import TriageRules, load_triage_rules
from config.workflows import WorkflowCatalog, load_workflows
from config.yaml_source import ConfigError


@dataclass(frozen=True)
class Catalog:
    triage: TriageRules
    policies: Policies
    playbooks: dict[str, Playbook]
    workflows: WorkflowCatalog
    problems: list[ConfigError] = field(default_factory=list)

    def playbook(self, key: str) -> Playbook | None:
        """Look up ``id@version``, or the newest version of a bare ``id``."""
        if key in self.playbooks:
            return self.playbooks[key]
        versions = [p for p in self.playbooks.values() if p.id == key]
        return max(versions, key=lambda p: p.version) if versions else None


def load_catalog(config_dir: Path) -> Catalog:
    """Broken playbooks are collected in ``problems``; broken core files raise ``ConfigErrors``."""
    playbooks, problems = load_playbook_library(config_dir / "playbooks")
    return Catalog(
        triage=load_triage_rules(config_dir / "triage.yaml"),
        policies=load_policies(config_dir / "policies.yaml"),
        playbooks=playbooks,
        workflows=load_workflows(config_dir / "workflows.yaml"),
        problems=problems,
    )
