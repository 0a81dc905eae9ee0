"""Times as the API and the YAML files take them: RFC 3339 strings with an offset, normalised
to UTC. Pydantic alone would also read ``1``, ``"0.5"`` or ``true`` as seconds since 1970, so a
client's slip would become a time in January 1970 instead of an error."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Strict

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)


def _rfc3339_only(value: Any) -> Any:
    """Strings must be RFC 3339 date-times and are read here (so a strict model takes them);
    ``datetime`` objects (YAML's own times, our callers) pass; anything else is refused before
    pydantic could read it as a timestamp."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 date-time string")
    if (parts := _RFC3339.match(value)) is None:
        raise ValueError("expected an RFC 3339 date-time with an offset, like 2026-01-31T09:30:00Z")
    day, clock, fraction, offset = parts.groups()
    micro = f".{fraction[:6]}" if fraction else ""
    return datetime.fromisoformat(f"{day}T{clock}{micro}{'+00:00' if offset in 'Zz' else offset}")


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError("the time is out of range once converted to UTC") from exc


UtcDatetime = Annotated[AwareDatetime, Strict(False), BeforeValidator(_rfc3339_only), AfterValidator(_in_utc)]
"""A time with its offset, normalised to UTC; one that cannot be (year 9999 at -01:00) is a 400."""
