"""Topic patterns: ``*`` matches exactly one dot-separated segment, ``#`` zero or more."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1024)
def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split("."))


@lru_cache(maxsize=8192)
def topic_matches(pattern: str, topic: str) -> bool:
    """Patterns and topics are few, and the bus asks for every subscriber filter and event."""
    return _match(_split(pattern), _split(topic))


def _match(pattern: tuple[str, ...], topic: tuple[str, ...]) -> bool:
    """One pass over the pattern, keeping every topic position its prefix can end at: linear in
    pattern times topic, without recursion (a caller's ``#.#.#…`` once took minutes, or blew the
    stack inside the bus's publish)."""
    reached = {0}
    for head in pattern:
        if head == "#":
            reached = set(range(min(reached), len(topic) + 1))
        else:
            reached = {i + 1 for i in reached if i < len(topic) and head in ("*", topic[i])}
            if not reached:
                return False
    return len(topic) in reached
