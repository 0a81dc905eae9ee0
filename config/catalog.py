"""Everything declarative, loaded once from a config directory and handed to the agents."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from config.channels import ChannelFile, load_channels
from config.playbooks import Playbook, load_playbook_library, playbook_path
from config.policies import Policies, load_policies
from config.roles import RoleBook, load_roles
from config.schedules import ScheduleFile, load_schedules
from config.sources import SourceFile, load_sources
from config.tools import ToolRegistry, load_tools
from config.triage_rules import TriageRules, load_triage_rules
from config.workflows import WorkflowCatalog, load_workflows
from config.yaml_source import ConfigError, ConfigErrors, line_of


@dataclass(frozen=True)
class Catalog:
    triage: TriageRules
    policies: Policies
    playbooks: dict[str, Playbook]
    workflows: WorkflowCatalog
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    roles: RoleBook = field(default_factory=lambda: RoleBook(permissions={}, roles={}))  # grants nothing
    sources: SourceFile = field(default_factory=SourceFile)
    schedules: ScheduleFile = field(default_factory=ScheduleFile)
    channels: ChannelFile = field(default_factory=ChannelFile)
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
    tools = load_tools(config_dir / "tools.yaml")
    for key, playbook in list(playbooks.items()):
        unknown = _unknown_tools(playbook, tools)
        if unknown:
            problems.extend(unknown)
            del playbooks[key]
    workflows = load_workflows(config_dir / "workflows.yaml")
    return Catalog(
        triage=load_triage_rules(config_dir / "triage.yaml"),
        policies=load_policies(config_dir / "policies.yaml"),
        playbooks=playbooks,
        workflows=workflows,
        tools=tools,
        roles=load_roles(config_dir / "roles.yaml"),
        sources=_checked_sources(config_dir / "sources.yaml", workflows),
        schedules=load_schedules(config_dir / "schedules.yaml"),
        channels=load_channels(config_dir / "channels.yaml"),
        problems=problems,
    )


def _checked_sources(path: Path, workflows: WorkflowCatalog) -> SourceFile:
    """The declared sources; one whose runs would go to anything but an exception pipeline
    workflow is an error at its line (an ingest starts pipeline runs, nothing else)."""
    sources = load_sources(path)
    errors = []
    for index, source in enumerate(sources.sources):
        workflow = workflows.get(source.workflow)
        if workflow is None or workflow.kind != "exception_pipeline":
            errors.append(ConfigError(
                path, line_of(path, ("sources", index, "workflow")), f"sources[{index}].workflow",
                f"source '{source.id}' names {source.workflow!r}, which is not an exception_pipeline workflow",
            ))
    if errors:
        raise ConfigErrors(errors)
    return sources


def _unknown_tools(playbook: Playbook, tools: ToolRegistry) -> list[ConfigError]:
    """``call_tool`` steps must name a registered tool; reported at the step's line."""
    found = []
    for index, step in enumerate(playbook.steps):
        if step.action != "call_tool":
            continue
        name = step.params.get("tool")
        if not isinstance(name, str) or tools.get(name) is None:
            loc = ("steps", index, "params", "tool")
            path = playbook_path(playbook)
            assert path is not None, "the library's playbooks are loaded from their files"
            found.append(ConfigError(
                path, line_of(path, loc), f"steps[{index}].params.tool",
                f"step '{step.id}' calls tool {name!r}, which config/tools.yaml does not register",
            ))
    return found
