"""load_model turns bad YAML and invalid fields into errors naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from config.yaml_source import ConfigError, ConfigErrors, load_model


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    count: int


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str
    items: list[Item]


def write(tmp_path: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as info:
        load_model(path, Inventory)
    return info.value.errors


def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "owner: ops\nitems:\n  - {name: bolt, count: 3}\n")
    assert load_model(path, Inventory) == Inventory(owner="ops", items=[Item(name="bolt", count=3)])


def test_a_nested_field_is_named_with_its_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "owner: ops\nitems:\n  - name: bolt\n    count: 3\n  - name: nut\n    count: lots\n")
    [error] = errors_of(path)
    assert (error.path, error.line, error.field) == (path, 6, "items[1].count")
    assert str(error).startswith(f"{path}:6: items[1].count: ")


def test_every_problem_in_a_file_is_reported_in_one_pass(tmp_path: Path) -> None:
    path = write(tmp_path, "owner: ops\ncolour: red\nitems:\n  - name: bolt\n    count: x\n")
    found = {(e.field, e.line) for e in errors_of(path)}
    assert found == {("colour", 2), ("items[0].count", 5)}


def test_a_missing_field_points_at_the_mapping_that_lacks_it(tmp_path: Path) -> None:
    path = write(tmp_path, "owner: ops\nitems:\n  - name: bolt\n    count: 1\n  - name: nut\n")
    [error] = errors_of(path)
    assert (error.field, error.line) == ("items[1].count", 5)
    assert "required" in error.message.lower()


def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "owner: ops\nitems:\n  - name: bolt\n   count: [1\n")
    [error] = errors_of(path)
    assert error.path == path
    assert error.line == 4
    assert "invalid YAML" in error.message


def test_an_empty_file_reports_the_required_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert {e.field for e in errors_of(path)} == {"owner", "items"}
