"""Playbook definitions: the pydantic models for ``config/playbooks/*.yaml`` and their loader."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from config.output_contract import OutputField
from config.severity import Severity
from config.yaml_source import ConfigError, ConfigErrors, Declaration, load_model

StepType = Literal["auto", "human", "ai"]
Action = Literal[
    "notify", "assign_owner", "set_status", "add_comment", "call_tool", "human_task", "ai_task"
]
AUTOMATIC_ACTIONS = frozenset({"notify", "assign_owner", "set_status", "add_comment"})
_ACTIONS_BY_TYPE: dict[str, frozenset[str]] = {
    "auto": AUTOMATIC_ACTIONS | {"call_tool"},
    "human": frozenset({"human_task"}),
    "ai": frozenset({"ai_task"}),
}

EXCEPTION_FIELDS = frozenset(
    {"id", "source", "source_id", "domain", "type", "code", "amount", "currency", "sla_deadline"}
)
RUN_FIELDS = frozenset(
    {"id", "workflow_id", "severity", "playbook_id", "sla_minutes_remaining", "trigger_type"}
)
PLACEHOLDER = re.compile(r"\{([a-zA-Z_][\w.\-]*)\}")  # step ids may contain "-"
SLUG = r"^[a-z0-9][a-z0-9_\-]*$"


class MatchConditions(Declaration):
    """All given conditions must hold for a playbook to match an exception."""

    domain: str | None = None
    exception_type: str | None = Field(None, description="Glob: 'payment.*' matches 'payment.failed'")
    severity_in: list[Severity] | None = None
    sla_minutes_remaining_lt: float | None = None
    amount_gte: Decimal | None = None
    amount_lt: Decimal | None = None
    policy_tags: list[str] | None = None


class Step(Declaration):
    id: str = Field(pattern=SLUG)
    name: str = Field(min_length=1)
    type: StepType = "auto"
    action: Action
    params: dict[str, Any] = Field(default_factory=dict)
    assignee: str | None = Field(None, pattern=r"^(user|queue):[\w.@\-]+$")
    depends_on: list[str] = Field(default_factory=list)
    estimated_minutes: float | None = Field(None, ge=0)
    risky: bool = Field(False, description="A risky step makes Policy ask a human first")
    outputs: dict[str, OutputField] = Field(
        default_factory=dict, description="The output contract a completion of this step must meet"
    )
    on_failure: Literal["fail", "pause"] = Field(
        "fail", description="When the step fails: fail the run, or pause it for a human"
    )

    @model_validator(mode="after")
    def _action_fits_type(self) -> Step:
        if self.action not in _ACTIONS_BY_TYPE[self.type]:
            allowed = ", ".join(sorted(_ACTIONS_BY_TYPE[self.type]))
            raise ValueError(f"action '{self.action}' is not allowed for a {self.type} step ({allowed})")
        return self


class Playbook(Declaration):
    _source: Path | None = PrivateAttr(None)
    id: str = Field(pattern=SLUG)
    name: str = Field(min_length=1)
    version: int = Field(1, ge=1)
    priority: int = 0
    description: str = ""
    match: MatchConditions = Field(default_factory=MatchConditions)
    mode: Literal["automatic", "stepwise"] = Field(
        "automatic",
        description="automatic: ready automatic steps run at once; stepwise: each step waits for a "
                    "run-next-step call with mode execute",
    )
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _steps_are_consistent(self) -> Playbook:
        """Cross-step rules, each reported at the step (and field) that breaks it."""
        problems: list[InitErrorDetails] = []

        def problem(index: int, field: str, message: str) -> None:
            problems.append(InitErrorDetails(
                type=PydanticCustomError("playbook_step", message), loc=("steps", index, field), input=None,
            ))

        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            if step.id in seen:
                problem(index, "id", f"step id '{step.id}' is used twice")
            for dep in step.depends_on:
                if dep not in seen:
                    problem(index, "depends_on", f"step '{step.id}' depends on '{dep}', not an earlier step")
            for name in _placeholders(step.params):
                if reason := _placeholder_problem(name, self._declared_outputs(seen)):
                    problem(index, "params", f"step '{step.id}': placeholder {{{name}}} {reason}")
            seen.add(step.id)
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def _declared_outputs(self, step_ids: set[str]) -> dict[str, set[str] | None]:
        """Earlier steps and the outputs their contracts name (``None``: no contract, anything)."""
        return {s.id: (set(s.outputs) or None) for s in self.steps if s.id in step_ids}

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    @property
    def has_risky_step(self) -> bool:
        return any(step.risky for step in self.steps)


def _placeholders(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield from PLACEHOLDER.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _placeholders(item)
    elif isinstance(value, list):
        for item in value:
            yield from _placeholders(item)


def _placeholder_problem(name: str, earlier_steps: dict[str, set[str] | None]) -> str | None:
    head, _, rest = name.partition(".")
    if head == "exception":
        if rest.split(".")[0] in EXCEPTION_FIELDS or rest.startswith("context."):
            return None
        return "names an unknown exception field"
    if head == "run":
        return None if rest in RUN_FIELDS else "names an unknown run field"
    if head == "steps":
        parts = rest.split(".")
        if len(parts) >= 3 and parts[1] == "outputs":
            if parts[0] not in earlier_steps:
                return "refers to a step that does not run earlier"
            declared = earlier_steps[parts[0]]
            if declared is not None and parts[2] not in declared:
                return f"names an output that step '{parts[0]}' does not declare"
            return None
        return "must look like steps.<id>.outputs.<name>"
    return "is unknown (use exception.*, run.* or steps.<id>.outputs.*)"


def load_playbook(path: Path) -> Playbook:
    playbook = load_model(path, Playbook)
    playbook._source = path
    return playbook


def playbook_path(playbook: Playbook) -> Path | None:
    """The file a playbook was loaded from, for messages that name it."""
    return playbook._source


def load_playbook_library(directory: Path) -> tuple[dict[str, Playbook], list[ConfigError]]:
    """Load every playbook in ``directory``; a broken file is reported, the rest still load."""
    library: dict[str, Playbook] = {}
    problems: list[ConfigError] = []
    for path in sorted(directory.glob("*.y*ml")):
        try:
            playbook = load_playbook(path)
        except ConfigErrors as exc:
            problems.extend(exc.errors)
            continue
        key = f"{playbook.id}@{playbook.version}"
        if key in library:
            problems.append(ConfigError(path, None, "id", f"{key} is defined twice"))
            continue
        library[key] = playbook
    return library, problems
