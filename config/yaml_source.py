"""Load a YAML file into a pydantic model, reporting errors as ``file:line: field: message``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class Declaration(BaseModel):
    """Base of every declarative model: unknown keys are errors (a typo must not pass as a
    default) and a loaded declaration cannot be changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantScoped(Protocol):
    """A declaration one tenant owns, under an id unique within that tenant."""

    @property
    def tenant(self) -> str: ...
    @property
    def id(self) -> str: ...


def check_unique_per_tenant(items: Sequence[TenantScoped], what: str) -> None:
    """Raise ``ValueError`` naming the first ``(tenant, id)`` declared twice in one file."""
    seen: set[tuple[str, str]] = set()
    for item in items:
        key = (item.tenant, item.id)
        if key in seen:
            raise ValueError(f"{what} {key[1]!r} is declared twice for tenant {key[0]!r}")
        seen.add(key)


class ConfigError(Exception):
    """A declarative file that cannot be used; names the file, the line and the field."""

    def __init__(self, path: Path, line: int | None, field: str, message: str) -> None:
        self.path, self.line, self.field, self.message = path, line, field, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


class ConfigErrors(Exception):
    """All the problems found in one file, so a user fixes them in one pass."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def _line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """Walk the composed YAML tree along a pydantic error location; return the deepest line."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None and _is_tag(node, part):
                continue  # a discriminated union's tag (``kind: http``): pydantic's, not the file's
            if match is None:
                key = next((k for k, _ in node.value if k.value == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def _is_tag(node: yaml.MappingNode, part: str | int) -> bool:
    return any(isinstance(v, yaml.ScalarNode) and v.value == part for _, v in node.value)


def _without_tags(node: yaml.Node | None, loc: Sequence[str | int]) -> list[str | int]:
    """``loc`` without the union tags pydantic adds, so the field reads as it is written."""
    kept: list[str | int] = []
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None and _is_tag(node, part):
                continue
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        kept.append(part)
    return kept


def line_of(path: Path, loc: Sequence[str | int]) -> int | None:
    """The line of ``loc`` (a field path) in the YAML file at ``path``."""
    try:
        return _line_of(yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader), loc)
    except (OSError, yaml.YAMLError):
        return None


def _field_name(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_model(path: Path, model: type[M]) -> M:
    """Parse ``path`` and validate it as ``model``; raise ``ConfigErrors`` naming file, line, field."""
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigErrors([ConfigError(path, line, "", f"invalid YAML: {exc}")]) from exc
    try:
        return model.model_validate(data if data is not None else {}, context={"path": path})
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            errors.append(ConfigError(path, _line_of(root, loc), _field_name(_without_tags(root, loc)), err["msg"]))
        raise ConfigErrors(errors) from exc
