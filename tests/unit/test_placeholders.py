"""Placeholders are looked up in plain data, never evaluated: no attributes, no expressions, no re-expansion."""

from __future__ import annotations

from typing import Any

import pytest

from agents.placeholders import resolve

SCOPE: dict[str, Any] = {
    "exception": {"code": "card_declined", "amount": 42.5, "context": {"note": "{exception.secret}"},
                  "secret": "s3cret"},
    "steps": {"assign": {"outputs": {"owner": "queue:ops"}}},
}


def fill(value: Any) -> tuple[Any, list[str]]:
    unresolved: list[str] = []
    return resolve(value, SCOPE, unresolved), unresolved


def test_a_whole_placeholder_keeps_the_value_type() -> None:
    assert fill("{exception.amount}") == (42.5, [])


def test_placeholders_inside_text_are_substituted() -> None:
    assert fill("{exception.code} for {steps.assign.outputs.owner}") == ("card_declined for queue:ops", [])


def test_nested_params_are_walked_and_other_values_kept() -> None:
    value = {"a": ["{exception.code}", 3, None], "b": {"c": True}}
    assert fill(value) == ({"a": ["card_declined", 3, None], "b": {"c": True}}, [])


@pytest.mark.parametrize(
    "name",
    ["exception.__class__", "exception.amount.__add__", "exception.__dict__", "exception.code.upper",
     "exception.nope"],
)
def test_names_that_are_not_data_stay_unresolved(name: str) -> None:
    assert fill("{" + name + "}") == (None, [name])
    text, unresolved = fill("x {" + name + "} y")
    assert text == "x  y" and unresolved == [name]


@pytest.mark.parametrize(
    "text", ["{1+1}", "{exception[code]}", "{exception.code!r}", "{exception.code:>20}", "{__import__('os')}"]
)
def test_anything_that_is_not_a_dotted_name_is_left_as_written(text: str) -> None:
    assert fill(text) == (text, [])


def test_a_filled_value_is_not_expanded_again() -> None:
    assert fill("{exception.context.note}") == ("{exception.secret}", [])
    assert fill("note: {exception.context.note}") == ("note: {exception.secret}", [])


def test_the_scope_is_not_changed() -> None:
    before = repr(SCOPE)
    fill({"x": "{exception.code}", "y": "{exception.nope}"})
    assert repr(SCOPE) == before
