"""How the scheduler's leader hears of changes made through other processes. Every change to a
schedule (an edit, a pause, a delete, a backfill request) is a save over its version, so the
leader compares each schedule's stored version with the one it last saw. Comparing the whole set
of versions, rather than reading "what is new since id N", cannot miss a change that commits
out of order; and it is one small query however many schedules changed."""

from __future__ import annotations

from store.records import ScheduleRecord
from store.schedules import ScheduleRepository

Key = tuple[str, str]


class ScheduleWatch:
    def __init__(self, repo: ScheduleRepository) -> None:
        self.repo = repo
        self._versions: dict[Key, int] = {}

    async def begin(self) -> None:
        """Take the versions as they are now: what the leader reads at start is not a change."""
        self._versions = await self.repo.versions()

    def saw(self, record: ScheduleRecord) -> None:
        """This process saved ``record``: not news to it."""
        self._versions[(record.tenant_id, record.id)] = record.version

    async def changed(self) -> list[Key]:
        """Schedules whose version moved since the last look (new and deleted ones too)."""
        versions = await self.repo.versions()
        moved = [key for key, version in versions.items() if self._versions.get(key) != version]
        self._versions = versions
        return moved
