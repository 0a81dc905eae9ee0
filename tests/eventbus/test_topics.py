"""Topic patterns: `*` matches exactly one segment, `#` zero or more, everything else literally."""

from __future__ import annotations

import pytest

from eventbus.topics import topic_matches


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("run.paused", "run.paused", True),
        ("run.paused", "run.pause", False),
        ("run.pause", "run.paused", False),
        ("run.paused", "run.paused.extra", False),
        ("run.*", "run.paused", True),
        ("run.*", "run", False),
        ("run.*", "run.paused.extra", False),
        ("*.completed", "playbook.completed", True),
        ("*.completed", "playbook.step.completed", False),
        ("*.*", "run.paused", True),
        ("*", "run.paused", False),
        ("run.#", "run", True),
        ("run.#", "run.paused", True),
        ("run.#", "run.a.b.c", True),
        ("run.#", "runs.paused", False),
        ("#", "anything.at.all", True),
        ("#", "run", True),
        ("#.completed", "completed", True),
        ("#.completed", "playbook.step.completed", True),
        ("#.completed", "playbook.completed.late", False),
        ("playbook.#.completed", "playbook.completed", True),
        ("playbook.#.completed", "playbook.step.completed", True),
        ("playbook.#.completed", "playbook.step_failed", False),
        ("dashboard.*", "dashboard.hitl_resumed", True),
    ],
)
def test_topic_matches(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected
