"""UTC timestamps in the two shapes the database uses."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def iso_utc(moment: datetime | None = None) -> str:
    """ISO 8601 UTC with a trailing Z, e.g. 2025-10-21T23:45:30Z."""
    moment = moment or utc_now()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_utc(moment: datetime | None = None) -> str:
    """Compact UTC for ids, e.g. 20251021T234530Z."""
    moment = moment or utc_now()
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
