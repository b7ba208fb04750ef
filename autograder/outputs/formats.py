"""How numbers and dates read on every page a person looks at (class report, feedback pages):
one format each, so the same value never appears two ways on one page.

* measured or averaged quantities (scores, means, seconds, rates): two decimals;
* dates: ISO 8601 in UTC to the minute, "2026-11-29 09:30 UTC". nbgrader's timestamp.txt
  gives naive datetimes that are UTC by its convention; aware ones are converted.
"""
from __future__ import annotations

from datetime import UTC, datetime


def number_text(value) -> str:
    """A measured or averaged quantity with two decimals ("5.67", "10.00")."""
    return f"{float(value):.2f}"


def utc_text(moment: datetime | None) -> str:
    """ "2026-11-29 09:30 UTC", or "" when there is no date."""
    if moment is None:
        return ""
    if moment.tzinfo is None:  # nbgrader's convention: naive timestamps are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
