"""What a request's JSON may hold beyond its model: no NUL anywhere (no store keeps it
faithfully) and at most ``MAX_JSON_DEPTH`` levels of nesting (deeper documents cost the
validators, the state codec and every reader of the run; none of ours needs more). Walked
with an explicit stack, so a hostile document cannot exhaust Python's recursion limit."""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 32
"""Objects and arrays nested in one another, the body itself counting as the first level."""


def json_problem(value: Any, root: str) -> tuple[str, str] | None:
    """``(where, what)`` of the first NUL or over-deep nesting in parsed JSON, or ``None``."""
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, (), 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return _where(root, path), "NUL characters are not allowed"
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            return _where(root, path), f"nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return _where(root, path), "NUL characters are not allowed in keys"
                stack.append((child, (*path, key), depth + 1))
        else:
            stack.extend((child, (*path, index), depth + 1) for index, child in enumerate(item))
    return None


def _where(root: str, path: tuple[str | int, ...]) -> str:
    return root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
