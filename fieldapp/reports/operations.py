"""The monthly report (月报): per squadron, what happened in one calendar month, Shanghai time.

Each section is one function that answers, for a list of squadrons, with a few GROUP BY
queries (never a loop over records), zero-filled so that every squadron shows every figure.
:data:`SECTIONS` lists them in report order: a new section (say, the case-file flags raised) is
one more function and one more line there, and one more schema in ``schemas/reports.py``; the
CSV columns follow by themselves.

What each figure counts (docs/audit.md has the table):
- inspections: submitted inspections that *started* in the month, by origin and by outcome;
- cases: cases opened in the month, and closed in the month;
- rectifications: ordered by the month's inspections; due (deadline in the month); overdue
  (deadline in the month and already passed, the order in force and no follow-up submitted
  that settles it, both as at the month's end, or now for the current month: each record's
  review as its version history says it stood then, whatever review it had since);
- risk: active targets at each level now, and the month's level changes (up, down, first levels);
- conflicts: sync conflict log entries opened in the month (by kind), resolved in the month;
- supervision orders: issued and answered in the month; open and overdue now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from fieldapp.audit.operations import chain_head
from fieldapp.checks.models import FlagCode
from fieldapp.checks.operations import CheckSettings, check_inspections
from fieldapp.db import db
from fieldapp.inspections.models import Case, Inspection, InspectionStatus, Origin, Outcome
from fieldapp.inspections.operations import unsettled_order
from fieldapp.org.models import Squadron
from fieldapp.risk.models import RiskLevelChange, TargetRisk
from fieldapp.risk.scoring import RiskLevel
from fieldapp.supervision.models import OrderStatus, SupervisionOrder
from fieldapp.targets.models import Target
from sync.models import Conflict, ConflictKind

SHANGHAI = ZoneInfo("Asia/Shanghai")
LEVEL_RANK = {level: rank for rank, level in enumerate(RiskLevel)}


@dataclass(frozen=True)
class Period:
    """A calendar month in Shanghai time, as UTC instants ``[start, end)`` and local dates."""

    month: str
    start: datetime
    end: datetime
    first_day: date
    last_day: date
    #: When the report is made: "now" figures (levels, open orders) are as of this instant.
    now: datetime

    @property
    def today(self) -> date:
        return self.now.astimezone(SHANGHAI).date()


def month_period(month: str, now: datetime) -> Period:
    """The month ``YYYY-MM`` (already validated) in Shanghai time."""
    year, number = (int(part) for part in month.split("-"))
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    start = datetime(first.year, first.month, 1, tzinfo=SHANGHAI)
    end = datetime(following.year, following.month, 1, tzinfo=SHANGHAI)
    return Period(month, start, end, first, following - timedelta(days=1), now)


def current_month(now: datetime) -> str:
    return now.astimezone(SHANGHAI).strftime("%Y-%m")


SectionFn = Callable[[Period, list[int]], dict[int, dict]]


def _counts(rows: Iterable, keys: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(keys, 0)
    for key, count in rows:
        counts[key.value if hasattr(key, "value") else key] += count
    return counts


def _by_squadron(rows, squadron_ids: list[int]) -> dict[int, list]:
    grouped: dict[int, list] = {s: [] for s in squadron_ids}
    for row in rows:
        grouped[row[0]].append(row[1:])
    return grouped


def inspections_section(period: Period, squadron_ids: list[int]) -> dict[int, dict]:
    rows = db.session.execute(
        sa.select(Inspection.squadron_id, Inspection.origin, Inspection.outcome, sa.func.count())
        .where(
            Inspection.squadron_id.in_(squadron_ids),
            Inspection.status == InspectionStatus.submitted,
            Inspection.started_at >= period.start,
            Inspection.started_at < period.end,
        )
        .group_by(Inspection.squadron_id, Inspection.origin, Inspection.outcome)
    ).all()
    report = {}
    for squadron_id, groups in _by_squadron(rows, squadron_ids).items():
        report[squadron_id] = {
            "total": sum(count for _, _, count in groups),
            "by_origin": _counts(((o, c) for o, _, c in groups), (o.value for o in Origin)),
            "by_outcome": _counts(
                ((o, c) for _, o, c in groups if o is not None), (o.value for o in Outcome)
            ),
        }
    return report


def _in_period(column, period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(column >= period.start, column < period.end)


def _sum_if(condition) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _zero_filled(rows, squadron_ids: list[int], names: list[str]) -> dict[int, dict]:
    report = {s: dict.fromkeys(names, 0) for s in squadron_ids}
    for squadron_id, *values in rows:
        report[squadron_id] = dict(zip(names, (int(v) for v in values), strict=True))
    return report


def cases_section(period: Period, squadron_ids: list[int]) -> dict[int, dict]:
    """Cases opened in the month, by the squadron whose inspection opened them (an open case
    follows its target to another squadron later, and must not take its month's figure
    along); cases closed in the month, by the squadron they are with (a case moves only while
    open, so that is the squadron that closed it)."""
    opening = sa.func.coalesce(Inspection.squadron_id, Case.squadron_id)
    opened = db.session.execute(
        sa.select(opening, sa.func.count())
        .select_from(Case)
        .outerjoin(Inspection, Inspection.id == Case.inspection_id)
        .where(_in_period(Case.opened_at, period), opening.in_(squadron_ids))
        .group_by(opening)
    ).all()
    closed = db.session.execute(
        sa.select(Case.squadron_id, sa.func.count())
        .where(_in_period(Case.closed_at, period), Case.squadron_id.in_(squadron_ids))
        .group_by(Case.squadron_id)
    ).all()
    report = {s: {"opened": 0, "closed": 0} for s in squadron_ids}
    for name, rows in (("opened", opened), ("closed", closed)):
        for squadron_id, n in rows:
            report[squadron_id][name] = int(n)
    return report


def rectifications_section(period: Period, squadron_ids: list[int]) -> dict[int, dict]:
    ordered = sa.and_(
        Inspection.outcome == Outcome.rectification_ordered,
        _in_period(Inspection.started_at, period),
    )
    due = sa.and_(
        Inspection.outcome == Outcome.rectification_ordered,
        Inspection.rectification_deadline >= period.first_day,
        Inspection.rectification_deadline <= period.last_day,
    )
    # As at the month's end (or now, for the current month), by the rule the flags and the
    # rectification list use, each order and follow-up as its history says it stood then: a
    # follow-up submitted after it does not undo what the month ended with, nor does a review
    # after it (an order or follow-up returned in the next month still counted in this one),
    # and a draft or returned one, order or follow-up, counted for nothing.
    as_at = min(period.end, period.now)
    overdue = sa.and_(
        due,
        Inspection.rectification_deadline < as_at.astimezone(SHANGHAI).date(),
        unsettled_order(as_at),
    )
    rows = db.session.execute(
        sa.select(Inspection.squadron_id, _sum_if(ordered), _sum_if(due), _sum_if(overdue))
        .where(
            Inspection.squadron_id.in_(squadron_ids),
            Inspection.status == InspectionStatus.submitted,
            sa.or_(ordered, due),
        )
        .group_by(Inspection.squadron_id)
    ).all()
    return _zero_filled(rows, squadron_ids, ["ordered", "due", "overdue"])


def risk_section(period: Period, squadron_ids: list[int]) -> dict[int, dict]:
    levels = _by_squadron(
        db.session.execute(
            sa.select(TargetRisk.squadron_id, TargetRisk.level, sa.func.count())
            .join(Target, Target.id == TargetRisk.target_id)
            # Closed targets are left out, as the risk summary and the schedule leave them out.
            .where(TargetRisk.squadron_id.in_(squadron_ids), Target.active.is_(True))
            .group_by(TargetRisk.squadron_id, TargetRisk.level)
        ).all(),
        squadron_ids,
    )
    changes = _by_squadron(
        db.session.execute(
            sa.select(
                RiskLevelChange.squadron_id,
                RiskLevelChange.from_level,
                RiskLevelChange.to_level,
                sa.func.count(),
            )
            .where(
                RiskLevelChange.squadron_id.in_(squadron_ids),
                _in_period(RiskLevelChange.at, period),
            )
            .group_by(
                RiskLevelChange.squadron_id, RiskLevelChange.from_level, RiskLevelChange.to_level
            )
        ).all(),
        squadron_ids,
    )
    report = {}
    for squadron_id in squadron_ids:
        moves = {"upgrades": 0, "downgrades": 0, "first_levels": 0}
        for before, after, count in changes[squadron_id]:
            if before is None:
                moves["first_levels"] += count
            elif LEVEL_RANK[after] > LEVEL_RANK[before]:
                moves["upgrades"] += count
            elif LEVEL_RANK[after] < LEVEL_RANK[before]:
                moves["downgrades"] += count
        report[squadron_id] = {
            "levels_now": _counts(levels[squadron_id], (level.value for level in RiskLevel)),
            "level_changes": moves,
        }
    return report


def conflicts_section(period: Period, squadron_ids: list[int]) -> dict[int, dict]:
    opened, resolved = (
        _in_period(Conflict.created_at, period),
        _in_period(Conflict.resolved_at, period),
    )
    rows = db.session.execute(
        sa.select(
            Conflict.squadron_id,
            Conflict.kind,
            _sum_if(opened),
            _sum_if(resolved),
        )
        .where(Conflict.squadron_id.in_(squadron_ids), sa.or_(opened, resolved))
        .group_by(Conflict.squadron_id, Conflict.kind)
    ).all()
    report = {}
    for squadron_id, groups in _by_squadron(rows, squadron_ids).items():
        report[squadron_id] = {
            "opened": sum(int(o) for _, o, _ in groups),
            "resolved": sum(int(r) for _, _, r in groups),
            "opened_by_kind": _counts(
                ((kind, int(o)) for kind, o, _ in groups), (k.value for k in ConflictKind)
            ),
        }
    return report


@dataclass
class _OrderSteps:
    """The steps of each order's history, joined to the order (``joined``): each step's
    ``action``, whether it was taken in the period (``in_period``) and the squadron the order
    was with at the step (``squadron_id``; the order's own for steps written before the
    history kept it)."""

    joined: sa.FromClause
    action: sa.ColumnElement
    in_period: sa.ColumnElement[bool]
    squadron_id: sa.ColumnElement[int]


def _order_steps(period: Period) -> _OrderSteps:
    order = SupervisionOrder
    if db.session.get_bind().dialect.name == "postgresql":
        steps = sa.func.jsonb_array_elements(order.history).table_valued("value").lateral("step")
        action = steps.c.value.op("->>")("action")
        at = sa.cast(steps.c.value.op("->>")("at"), sa.DateTime(timezone=True))
        given = _in_period(at, period)
        squadron = sa.cast(steps.c.value.op("->>")("squadron_id"), sa.Integer)
    else:
        steps = sa.func.json_each(order.history).table_valued("value").alias("step")
        action = sa.func.json_extract(steps.c.value, "$.action")
        at = sa.func.julianday(sa.func.json_extract(steps.c.value, "$.at"))  # offsets honoured
        given = sa.and_(
            at >= sa.func.julianday(period.start.isoformat()),
            at < sa.func.julianday(period.end.isoformat()),
        )
        squadron = sa.func.json_extract(steps.c.value, "$.squadron_id")
    return _OrderSteps(
        joined=order.__table__.join(steps, sa.true()),
        action=action,
        in_period=given,
        squadron_id=sa.func.coalesce(squadron, order.squadron_id),
    )


def _orders_by_step_squadron(
    steps: _OrderSteps, action: str, squadron_ids: list[int], *narrowing
) -> dict[int, int]:
    """How many orders had a step ``action`` in the period, by the squadron at that step (an
    order with two such steps in the period counts once)."""
    rows = db.session.execute(
        sa.select(steps.squadron_id, sa.func.count(sa.distinct(SupervisionOrder.id)))
        .select_from(steps.joined)
        .where(
            *narrowing,
            steps.action == action,
            steps.in_period,
            steps.squadron_id.in_(squadron_ids),
        )
        .group_by(steps.squadron_id)
    ).all()
    return {int(squadron): int(n) for squadron, n in rows}


def supervision_orders_section(period: Period, squadron_ids: list[int]) -> dict[int, dict]:
    """Orders issued in the month; orders answered in the month; open and overdue now.

    Issues and answers are read from the orders' histories, each counted for the squadron the
    order was with at that step: an answer in October still counts in October after a reopen
    and an answer in November (``answered_at`` keeps only the last), and an order that later
    followed its target to another squadron leaves October's figures where October left them.
    An order answered twice in one month counts once. Open and overdue are the orders' state
    now, where they are now."""
    order = SupervisionOrder
    still_open = order.status == OrderStatus.open
    overdue = sa.and_(still_open, order.deadline < period.now)
    rows = db.session.execute(
        sa.select(order.squadron_id, _sum_if(still_open), _sum_if(overdue))
        .where(order.squadron_id.in_(squadron_ids), still_open)
        .group_by(order.squadron_id)
    ).all()
    report = _zero_filled(rows, squadron_ids, ["open_now", "overdue_now"])
    steps = _order_steps(period)
    issued = _orders_by_step_squadron(
        steps, "issue", squadron_ids, _in_period(order.issued_at, period)
    )
    # An order answered in the month was last answered then or since, and issued before the
    # month ended: only those orders' histories are read.
    answered = _orders_by_step_squadron(
        steps,
        "answer",
        squadron_ids,
        order.answered_at >= period.start,
        order.issued_at < period.end,
    )
    return {
        squadron_id: {
            "issued": issued.get(squadron_id, 0),
            "answered": answered.get(squadron_id, 0),
            "open_now": figures["open_now"],
            "overdue_now": figures["overdue_now"],
        }
        for squadron_id, figures in report.items()
    }


def flags_section(period: Period, squadron_ids: list[int]) -> dict[int, dict]:
    """Case-file flags (案卷评查, ``fieldapp.checks``) raised on the month's submitted
    inspections: how many inspections were flagged, and how many raised each flag.

    Judged as at the end of the month (or now, for the current month): follow-ups and photos
    the server received after it do not count (:func:`check_inspections`), so that a report
    made again later counts what the month ended with.
    """
    rows = db.session.execute(
        sa.select(Inspection.id, Inspection.squadron_id).where(
            Inspection.squadron_id.in_(squadron_ids),
            Inspection.status == InspectionStatus.submitted,
            Inspection.started_at >= period.start,
            Inspection.started_at < period.end,
        )
    ).all()
    settings = CheckSettings.from_config(current_app.config)
    flags = check_inspections([r.id for r in rows], settings, min(period.end, period.now))
    squadron_of = {r.id: r.squadron_id for r in rows}
    report = {
        squadron_id: {"inspections_flagged": 0, "by_flag": dict.fromkeys(FlagCode, 0)}
        for squadron_id in squadron_ids
    }
    for inspection_id, raised in flags.items():
        figures = report[squadron_of[inspection_id]]
        figures["inspections_flagged"] += bool(raised)
        for code in {flag.flag for flag in raised}:
            figures["by_flag"][code] += 1
    for figures in report.values():
        figures["by_flag"] = {code.value: n for code, n in figures["by_flag"].items()}
    return report


#: The report's sections, in order. Add a section here (and its schema in schemas/reports.py).
SECTIONS: dict[str, SectionFn] = {
    "inspections": inspections_section,
    "cases": cases_section,
    "rectifications": rectifications_section,
    "risk": risk_section,
    "conflicts": conflicts_section,
    "supervision_orders": supervision_orders_section,
    "flags": flags_section,
}


def _add(total: dict, part: dict) -> dict:
    for key, value in part.items():
        total[key] = (
            _add(total.get(key, {}), value)
            if isinstance(value, dict)
            else (total.get(key, 0) + value)
        )
    return total


def monthly_report(squadrons: list[Squadron], period: Period) -> dict:
    """The report for ``squadrons`` (one, or a district's), with their sum as ``total``."""
    ids = [s.id for s in squadrons]
    sections = {name: section(period, ids) for name, section in SECTIONS.items()} if ids else {}
    rows = [
        {"squadron_id": s.id, "squadron_name": s.name}
        | {name: figures[s.id] for name, figures in sections.items()}
        for s in squadrons
    ]
    total: dict = {}
    for row in rows:
        _add(total, {name: row[name] for name in SECTIONS})
    head = chain_head(db.session())  # None: the head's row was deleted (verify says so)
    return {
        "month": period.month,
        "timezone": "Asia/Shanghai",
        "start": period.start,
        "end": period.end,
        "generated_at": period.now,
        # Filed with the report, the chain head anchors the audit log: a later rewrite of the
        # whole chain no longer passes through this hash (docs/audit.md).
        "audit_head": None if head is None else {"seq": head[0], "hash": head[1]},
        "squadrons": rows,
        "total": total,
    }


def flatten(prefix: str, value) -> dict:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (CSV columns)."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat = {}
    for key, inner in value.items():
        flat |= flatten(f"{prefix}.{key}" if prefix else key, inner)
    return flat


#: A cell starting with one of these is a formula to a spreadsheet program (OWASP, "CSV
#: injection"): a squadron named ``=HYPERLINK(...)`` would run when the filed report is opened.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value):
    """``value`` as a spreadsheet shows it: text that would start a formula is prefixed with a
    single quote, which makes it text; numbers are left alone."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_rows(report: dict) -> tuple[list[str], list[dict]]:
    """One row per squadron and a total row; columns ``section.figure``, then when the report
    was made and the audit head it anchors (``generated_at``, ``audit_head.seq``,
    ``audit_head.hash``: docs/audit.md, every filed report carries them), on every row so the
    sheet stays one table that any program reads."""
    head = report["audit_head"] or {}
    filed = {
        "generated_at": report["generated_at"].isoformat(),
        "audit_head.seq": head.get("seq", ""),
        "audit_head.hash": head.get("hash", ""),
    }
    rows = [
        {
            "month": report["month"],
            "squadron_id": r["squadron_id"],
            "squadron_name": r["squadron_name"],
        }
        | flatten("", {name: r[name] for name in SECTIONS})
        | filed
        for r in report["squadrons"]
    ]
    rows.append(
        {"month": report["month"], "squadron_id": "total", "squadron_name": ""}
        | flatten("", report["total"])
        | filed
    )
    rows = [{key: spreadsheet_cell(value) for key, value in row.items()} for row in rows]
    return list(rows[0]), rows
