"""Playbook files: broken ones are reported by file, line and field; the library loads the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.playbooks import load_playbook, load_playbook_library
from config.settings import SHIPPED_CONFIG_DIR
from config.yaml_source import ConfigError, ConfigErrors

HEADER = "id: demo\nname: Demo\nsteps:\n"
FIRST = "  - id: first\n    name: First\n    action: notify\n"  # lines 4-6


def write(tmp_path: Path, steps: str, name: str = "demo.yaml", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text(header + steps, encoding="utf-8")
    return path


def only_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigErrors) as info:
        load_playbook(path)
    [error] = info.value.errors
    assert error.path == path
    return error


def test_unknown_action_names_the_step_field_and_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, FIRST + "  - id: second\n    name: Second\n    action: launch_rockets\n")
    error = only_error(path)
    assert (error.line, error.field) == (9, "steps[1].action")
    assert "notify" in error.message


def test_an_action_that_does_not_fit_the_step_type_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, FIRST + "  - id: ask\n    name: Ask\n    type: human\n    action: notify\n")
    error = only_error(path)
    assert (error.line, error.field) == (7, "steps[1]")
    assert "human_task" in error.message


@pytest.mark.parametrize(
    ("second_step", "expected"),
    [
        ('    params: {text: "hi {exception.nope}"}\n', "{exception.nope} names an unknown exception field"),
        ('    params: {text: "{steps.later.outputs.x}"}\n', "does not run earlier"),
        ("    depends_on: [later]\n", "depends on 'later', not an earlier step"),
    ],
    ids=["unknown-placeholder", "output-of-a-later-step", "depends-on-later"],
)
def test_cross_step_problems_name_the_step(tmp_path: Path, second_step: str, expected: str) -> None:
    steps = FIRST + "  - id: second\n    name: Second\n    action: add_comment\n" + second_step
    steps += "  - id: later\n    name: Later\n    action: notify\n"
    error = only_error(write(tmp_path, steps))
    assert error.field.startswith("steps")
    assert error.line is not None
    assert "step 'second'" in error.message and expected in error.message


def test_duplicate_step_ids_are_reported(tmp_path: Path) -> None:
    error = only_error(write(tmp_path, FIRST + "  - id: first\n    name: Again\n    action: notify\n"))
    assert error.field.startswith("steps")
    assert "step id 'first' is used twice" in error.message


def test_a_cross_step_problem_points_at_the_offending_step(tmp_path: Path) -> None:
    steps = FIRST + "  - id: second\n    name: Second\n    action: add_comment\n"
    steps += '    params: {text: "hi {exception.nope}"}\n'  # the step spans lines 7-10
    error = only_error(write(tmp_path, steps))
    assert error.field == "steps[1].params"
    assert error.line == 10


def test_invalid_yaml_is_reported_with_file_and_line(tmp_path: Path) -> None:
    error = only_error(write(tmp_path, FIRST + "   bad: [\n"))
    assert error.line == 7
    assert "invalid YAML" in error.message


def test_placeholders_that_the_runtime_fills_are_accepted(tmp_path: Path) -> None:
    steps = '  - id: first\n    name: First\n    action: add_comment\n    params: {text: "{run.severity}"}\n'
    steps += "  - id: second\n    name: Second\n    action: notify\n    depends_on: [first]\n"
    steps += '    params: {to: "{exception.context.email}", message: "{steps.first.outputs.comment}"}\n'
    playbook = load_playbook(write(tmp_path, steps))
    assert [s.id for s in playbook.steps] == ["first", "second"]


def test_the_library_loads_the_good_files_when_one_is_broken(tmp_path: Path) -> None:
    write(tmp_path, FIRST, "a-good.yaml", header="id: good-a\nname: A\nsteps:\n")
    broken = write(tmp_path, "  - id: x\n    name: X\n    action: nope\n", "b-broken.yaml")
    write(tmp_path, FIRST, "c-good.yml", header="id: good-c\nname: C\nversion: 2\nsteps:\n")
    library, problems = load_playbook_library(tmp_path)
    assert sorted(library) == ["good-a@1", "good-c@2"]
    assert [(p.path, p.line, p.field) for p in problems] == [(broken, 6, "steps[0].action")]


def test_the_same_id_and_version_in_two_files_is_a_problem(tmp_path: Path) -> None:
    first = write(tmp_path, FIRST, "a.yaml")
    second = write(tmp_path, FIRST, "b.yaml")
    library, problems = load_playbook_library(tmp_path)
    assert list(library) == ["demo@1"]
    assert library["demo@1"] == load_playbook(first)
    assert [(p.path, p.field) for p in problems] == [(second, "id")]


def test_every_shipped_playbook_loads() -> None:
    directory = SHIPPED_CONFIG_DIR / "playbooks"
    files = sorted(directory.glob("*.y*ml"))
    library, problems = load_playbook_library(directory)
    assert problems == []
    assert files and len(library) == len(files)
    for path in files:
        playbook = load_playbook(path)
        assert library[f"{playbook.id}@{playbook.version}"] == playbook
