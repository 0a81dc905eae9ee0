"""Fill ``{exception.*}``, ``{run.*}`` and ``{steps.<id>.outputs.*}`` into step parameters
by walking plain data; nothing is ever evaluated."""

from __future__ import annotations

from typing import Any

from config.playbooks import PLACEHOLDER

_MISSING = object()


def _lookup(scope: dict[str, Any], dotted: str) -> Any:
    value: Any = scope
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def resolve(value: Any, scope: dict[str, Any], unresolved: list[str]) -> Any:
    """Resolve placeholders in ``value``; names that have no value are listed in ``unresolved``."""
    if isinstance(value, dict):
        return {k: resolve(v, scope, unresolved) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope, unresolved) for v in value]
    if not isinstance(value, str) or "{" not in value:
        return value
    whole = PLACEHOLDER.fullmatch(value)
    if whole:
        found = _lookup(scope, whole.group(1))
        if found is _MISSING:
            unresolved.append(whole.group(1))
            return None
        return found

    def substitute(match: Any) -> str:
        found = _lookup(scope, match.group(1))
        if found is _MISSING or found is None:
            unresolved.append(match.group(1))
            return ""
        return str(found)

    return PLACEHOLDER.sub(substitute, value)
