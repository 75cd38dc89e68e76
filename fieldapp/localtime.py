"""Shanghai time: the calendar the officers work by (deadlines, due dates, case years, the
dates in query strings and published draws)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

#: China Standard Time, without daylight saving (none since 1991). The monthly report, which may
#: reach back to the summer-time years, reads the tz database instead (reports.operations).
SHANGHAI = timezone(timedelta(hours=8), "CST")


def local_date(moment: datetime) -> date:
    """The Shanghai calendar day of ``moment``."""
    return moment.astimezone(SHANGHAI).date()
