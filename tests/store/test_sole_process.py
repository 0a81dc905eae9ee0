"""One server per SQLite file: a second holder is refused with who holds it; the lock goes with
its holder; other databases are not locked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from store.database import sqlite_file
from store.sole_process import DatabaseInUse, sole_process


def test_a_second_holder_of_the_same_file_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'autopilot.db'}"
    with sole_process(url):
        with pytest.raises(DatabaseInUse, match=rf"pid {os.getpid()}\).*PostgreSQL"), sole_process(url):
            pass  # pragma: no cover - refused before the block
    with sole_process(url):  # released when its holder left
        pass


def test_other_files_and_other_databases_are_not_locked(tmp_path: Path) -> None:
    with sole_process(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"), \
            sole_process(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"):
        pass
    for url in ("sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://postgres@127.0.0.1/test"):
        assert sqlite_file(url) is None
        with sole_process(url), sole_process(url):
            pass
