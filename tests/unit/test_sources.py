"""Ingest sources are declared per tenant in config/sources.yaml; mistakes are named by line and
field, and a source's runs may only go to an exception pipeline workflow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from config.catalog import Catalog, load_catalog
from config.settings import SHIPPED_CONFIG_DIR
from config.sources import HttpSource, JsonlSource, SourceFile, load_sources
from config.yaml_source import ConfigErrors
from tests.config_copies import config_with


def errors_of(path: Path) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigErrors) as info:
        load_sources(path)
    return [(e.line, e.field, e.message) for e in info.value.errors]


def test_the_shipped_file_declares_acmes_inbox(catalog: Catalog) -> None:
    source = catalog.sources.get("acme", "acme_inbox")
    assert isinstance(source, JsonlSource)
    assert (source.path, source.pattern, source.id_field, source.workflow) == (
        "inbox/acme", "*.jsonl", "source_id", "exception_pipeline")


def test_another_tenants_source_is_not_found(catalog: Catalog) -> None:
    assert catalog.sources.get("globex", "acme_inbox") is None
    assert catalog.sources.get("acme", "nope") is None


def test_a_missing_file_declares_no_sources(tmp_path: Path) -> None:
    assert load_sources(tmp_path / "sources.yaml") == SourceFile()
    directory = config_with(tmp_path / "config")
    (directory / "sources.yaml").unlink()
    assert load_catalog(directory).sources.sources == []


def test_an_http_source_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - {id: feed, tenant: acme, kind: http, url: 'http://127.0.0.1:9/x'}\n")
    [source] = load_sources(path).sources
    assert isinstance(source, HttpSource)
    assert (source.headers, source.items_field, source.timeout_seconds) == ({}, None, 10)


def test_fields_of_the_other_kind_and_bad_values_are_named_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n"
        "  - id: files\n"
        "    tenant: acme\n"
        "    kind: jsonl\n"
        "    path: inbox\n"
        "    url: http://127.0.0.1/\n"
        "  - id: feed\n"
        "    tenant: acme\n"
        "    kind: http\n"
        "    url: file:///etc/passwd\n"
        "  - id: deep\n"
        "    tenant: acme\n"
        "    kind: jsonl\n"
        "    path: inbox\n"
        "    pattern: ../*.jsonl\n"
    )
    found = {field: line for line, field, _ in errors_of(path)}
    # the field as written in the file (without pydantic's union tag), at its own line
    assert found == {"sources[0].url": 6, "sources[1].url": 10, "sources[2].pattern": 15}


def test_a_source_declared_twice_for_a_tenant_is_an_error_but_two_tenants_may_share_an_id(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    one = "  - {id: inbox, tenant: %s, kind: jsonl, path: in}\n"
    path.write_text("sources:\n" + one % "acme" + one % "globex")
    assert [s.tenant for s in load_sources(path).sources] == ["acme", "globex"]
    path.write_text("sources:\n" + one % "acme" + one % "acme")
    [(_, _, message)] = errors_of(path)
    assert "'inbox' is declared twice for tenant 'acme'" in message


def test_a_source_feeding_a_job_workflow_is_refused_at_its_line(tmp_path: Path) -> None:
    directory = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (directory / "sources.yaml").write_text(
        "sources:\n  - id: loop\n    tenant: acme\n    kind: jsonl\n    path: in\n    workflow: ingest\n"
    )
    with pytest.raises(ConfigErrors) as info:
        load_catalog(directory)
    [error] = info.value.errors
    assert (error.line, error.field) == (6, "sources[0].workflow")
    assert "'ingest', which is not an exception_pipeline workflow" in error.message
