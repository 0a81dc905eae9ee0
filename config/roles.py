"""Roles and the permissions they grant (``config/roles.yaml``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import Field, model_validator

from config.yaml_source import Declaration, load_model


class RoleBook(Declaration):
    permissions: dict[str, str] = Field(description="Every permission, with what it allows")
    roles: dict[str, list[str]]

    @model_validator(mode="after")
    def _roles_grant_known_permissions(self) -> RoleBook:
        for role, granted in self.roles.items():
            unknown = [p for p in granted if p != "*" and p not in self.permissions]
            if unknown:
                raise ValueError(f"role {role} grants unknown permissions: {', '.join(unknown)}")
        return self

    def granted(self, roles: Iterable[str]) -> frozenset[str]:
        found: set[str] = set()
        for role in roles:
            granted = self.roles.get(role, [])
            found.update(self.permissions if "*" in granted else granted)
        return frozenset(found)


def load_roles(path: Path) -> RoleBook:
    return load_model(path, RoleBook)
