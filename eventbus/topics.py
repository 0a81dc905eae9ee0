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
    if not pattern:
        return not topic
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, topic[i:]) for i in range(len(topic) + 1))
    if not topic:
        return False
    return (head == "*" or head == topic[0]) and _match(rest, topic[1:])
