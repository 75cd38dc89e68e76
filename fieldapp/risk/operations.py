"""Risk: gather the facts, assess, store; for one target at a time or for all of them at once.

Both paths share :func:`gather_facts` (set-based: a handful of queries for any number of
targets) and :func:`fieldapp.risk.scoring.assess`, so a full recompute and the incremental
updates agree by construction; ``tests/test_risk.py`` checks it anyway.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.checklists.models import ChecklistItem
from fieldapp.complaints.models import Complaint
from fieldapp.db import change_counter, db, utcnow
from fieldapp.errors import APIError
from fieldapp.inspections.models import Case, Inspection, InspectionStatus, ReviewStatus
from fieldapp.risk.defaults import DEFAULT_SETTINGS
from fieldapp.risk.models import RiskLevelChange, RiskSetting, TargetRisk
from fieldapp.risk.scoring import (
    Assessment,
    Facts,
    FailedItem,
    InspectionFact,
    LevelState,
    RiskLevel,
    assess,
    assess_after_correction,
)
from fieldapp.targets.models import Target
from schemas.risk import check_settings
from sync.sequence import allocate, hold
from sync.versions import record_left_scope

#: Targets handled per round of a full recompute (bounded memory, progress between rounds).
CHUNK = 20_000


class SettingsError(APIError):
    """The settings table is missing a group (an operator's problem, not the caller's): the API
    answers 503 with this message, the command line prints it."""

    def __init__(self, message: str):
        super().__init__(503, "risk_settings_missing", message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def load_settings() -> dict:
    """The risk model's numbers, from the settings table."""
    settings = {row.key: row.value for row in db.session.scalars(sa.select(RiskSetting))}
    missing = sorted(set(DEFAULT_SETTINGS) - set(settings))
    if missing:
        raise SettingsError(
            f"risk settings {', '.join(missing)} are missing; run `fieldapp db upgrade`"
        )
    return settings


# -- facts ---------------------------------------------------------------------------------------


def _window_days(settings: dict) -> int:
    # The severe floor counts Shanghai days from the day of the finding: a finding early on
    # that day is up to a day older than the floor's days.
    return max(
        int(30.44 * settings["history"]["months"]) + 1,
        settings["floors"]["severe_finding"]["days"] + 1,
    )


def _checklist_items() -> dict[tuple[int, int, str], tuple[str, tuple[str, ...]]]:
    rows = db.session.execute(
        sa.select(
            ChecklistItem.checklist_id,
            ChecklistItem.checklist_version,
            ChecklistItem.code,
            ChecklistItem.severity,
            ChecklistItem.phases,
        )
    )
    return {
        (checklist_id, version, code): (
            getattr(severity, "value", severity),
            tuple(phases or ()),
        )
        for checklist_id, version, code, severity, phases in rows
    }


def _read(statement):
    """Run a read on the session's connection as plain Core: these reads return hundreds of
    thousands of rows of columns, and the ORM's per-row processing cost more than the query."""
    return db.session.connection().execute(statement)


def _raw(column):
    """An id column as the driver returns it (32 hex digits on SQLite, a UUID on PostgreSQL):
    hundreds of thousands of rows are matched by id here, and building a UUID object for each
    cost more than the rest of the work."""
    return sa.type_coerce(column, sa.String)


def _dashed(raw) -> str:
    """The usual text form of a raw id."""
    if isinstance(raw, str) and len(raw) == 32:
        return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return str(raw)


def _counted_by(now: datetime):
    """Whether an inspection counts as made by ``now``: an assessment of an earlier moment (a
    recompute's chunk, the demo's history) leaves out what began and arrived after it."""
    return Inspection.counted_at <= now


def gather_facts(
    now: datetime,
    settings: dict,
    target_ids: Iterable[uuid.UUID] | None = None,
    id_range: tuple | None = None,
) -> dict[str, tuple[Facts, int]]:
    """Facts about the given targets (``target_ids``, or those whose raw id lies in
    ``id_range``, or all), with each target's squadron, keyed by the target's id as text.

    A fixed number of queries whatever the number of targets: approved inspections within the
    history window plus each target's latest, counts, cases, complaints. A range (a full
    recompute's chunks, as raw ids from :func:`_raw`) reads straight off the target-id indexes
    and binds two values instead of thousands.
    """
    ids = None if target_ids is None else list(target_ids)

    def only(column):
        if id_range is not None:
            return _raw(column).between(*id_range)
        return sa.true() if ids is None else column.in_(ids)

    window = now - timedelta(days=_window_days(settings))
    quiet = now - timedelta(
        days=max(settings["complaints"]["days"], settings["downgrade"]["complaint_free_days"])
    )
    items = _checklist_items()
    made = Inspection.counted_at
    # Approved by ``now``, not merely approved today: an assessment of an earlier moment (the
    # demo's history, bench/risk_eval.py) must not count, nor cite, an approval given later.
    # For a live assessment nothing changes: an approval is stamped before it re-scores.
    approved = sa.and_(
        Inspection.review_status == ReviewStatus.approved,
        Inspection.status == InspectionStatus.submitted,
        _counted_by(now),
        Inspection.reviewed_at <= now,
    )

    latest = (
        sa.select(Inspection.target_id, sa.func.max(made).label("at"))
        .where(approved, only(Inspection.target_id))
        .group_by(Inspection.target_id)
        .subquery()
    )
    inspections: dict[uuid.UUID, list[InspectionFact]] = {}
    rows = _read(
        sa.select(
            _raw(Inspection.id),
            _raw(Inspection.target_id),
            made,
            Inspection.outcome,
            Inspection.checklist_id,
            Inspection.checklist_version,
            # As text: most inspections fail nothing, and a substring test spares parsing them.
            sa.cast(Inspection.answers, sa.Text),
        )
        .join(latest, latest.c.target_id == Inspection.target_id)
        .where(
            approved,
            sa.or_(made >= window, made == latest.c.at),
        )
        .order_by(Inspection.target_id, made.desc(), Inspection.id)
    )
    for record_id, target_id, at, outcome, checklist_id, version, answers in rows:
        failed = []
        parsed = json.loads(answers) if answers and '"fail"' in answers else {}
        for code, answer in parsed.items():
            if answer.get("result") != "fail":
                continue
            severity, phases = items.get((checklist_id, version, code), ("minor", ()))
            failed.append(FailedItem(code, severity, phases))
        # The outcome as its text: scoring is plain data (a clean run wants ``compliant``).
        outcome = getattr(outcome, "value", outcome)
        inspections.setdefault(target_id, []).append(
            InspectionFact(_dashed(record_id), at, tuple(failed), outcome)
        )

    counts = dict(
        _read(
            sa.select(_raw(Inspection.target_id), sa.func.count())
            .where(approved, only(Inspection.target_id))
            .group_by(Inspection.target_id)
        ).all()
    )
    last_inspected = dict(
        _read(
            sa.select(_raw(Inspection.target_id), sa.func.max(made))
            .where(
                Inspection.status == InspectionStatus.submitted,
                _counted_by(now),
                only(Inspection.target_id),
            )
            .group_by(Inspection.target_id)
        ).all()
    )
    cases: dict[uuid.UUID, list] = {}
    for case_id, target_id, opened in _read(
        sa.select(_raw(Case.id), _raw(Case.target_id), Case.opened_at).where(
            Case.opened_at >= window, Case.opened_at <= now, only(Case.target_id)
        )
    ):
        cases.setdefault(target_id, []).append((_dashed(case_id), opened))
    # A complaint counts from the decision that found it true (``closed_at``), not from when
    # the hotline received it: a ticket checked weeks later is the target's record from then.
    complaints: dict[uuid.UUID, list] = {}
    found_true = Complaint.closed_at
    for complaint_id, target_id, at in _read(
        sa.select(_raw(Complaint.id), _raw(Complaint.target_id), found_true)
        .where(
            Complaint.substantiated.is_(True),
            found_true >= quiet,
            found_true <= now,
            only(Complaint.target_id),
        )
        .order_by(found_true.desc())
    ):
        complaints.setdefault(target_id, []).append((_dashed(complaint_id), at))

    facts = {}
    rows = _read(
        sa.select(
            _raw(Target.id).label("raw_id"),
            # Enum columns as their text: the values are all the facts need.
            _raw(Target.kind).label("kind"),
            _raw(Target.credit_class).label("credit_class"),
            Target.sensitive_surroundings,
            Target.business_type,
            _raw(Target.scale).label("scale"),
            _raw(Target.phase).label("phase"),
            Target.squadron_id,
            Target.created_at,
        ).where(only(Target.id))
    ).all()
    for row in rows:
        raw = row.raw_id
        target_id = _dashed(raw)
        facts[target_id] = (
            Facts(
                target_id=target_id,
                kind=row.kind,
                credit_class=row.credit_class,
                sensitive_surroundings=row.sensitive_surroundings,
                business_type=row.business_type,
                scale=row.scale,
                phase=row.phase,
                inspections=tuple(inspections.get(raw, ())),
                inspection_count=counts.get(raw, 0),
                cases=tuple(cases.get(raw, ())),
                complaints=tuple(complaints.get(raw, ())),
                last_inspected_at=last_inspected.get(raw),
                created_at=row.created_at,
            ),
            row.squadron_id,
        )
    return facts


# -- storing -------------------------------------------------------------------------------------


@dataclass
class RecomputeSummary:
    targets: int = 0
    changed: int = 0
    level_changes: int = 0
    by_level: dict | None = None


def _values(target_id, squadron_id: int, kind: str, result: Assessment, now: datetime) -> dict:
    values = {
        "target_id": target_id,
        "squadron_id": squadron_id,
        "kind": kind,
        "score": result.score,
        "level": result.level,
        "level_since": result.since,
        "factors": [f.as_dict() for f in result.factors],
        "floors": [f.as_dict() for f in result.floors],
        "reason": result.reason[:300],
        "next_due": result.next_due,
        "assessed_at": now,
        "updated_at": now,
    }
    values["digest"] = _digest(values)
    return values


_COMPARED = (
    "squadron_id",
    "score",
    "level",
    "level_since",
    "factors",
    "floors",
    "reason",
    "next_due",
)


def _digest(values: dict) -> str:
    """A fingerprint of what an assessment says, stored beside it: a recompute rewrites (and
    sends to devices) only the targets whose assessment changed, without reading it back.

    ``repr`` of plain values (str, int, dicts, lists, dates, enums) is deterministic and a
    third of the cost of JSON here, where it runs once per target."""
    return hashlib.sha1(repr([values[k] for k in _COMPARED]).encode()).hexdigest()


def _change_row(target_id, squadron_id, before: RiskLevel | None, result: Assessment, now):
    return {
        "target_id": target_id,
        "squadron_id": squadron_id,
        "at": now,
        "from_level": before,
        "to_level": result.level,
        "score": result.score,
        "reason": result.change_reason[:300],
        "factors": [f.as_dict() for f in result.factors],
        "floors": [f.as_dict() for f in result.floors],
    }


def left_scope(actor: Actor, target: Target, squadron_id: int, now: datetime) -> None:
    """The target moves out of ``squadron_id``: that squadron's devices drop its risk record
    (the re-assessment that follows files it under the new squadron)."""
    stored = db.session.get(TargetRisk, target.id)
    if stored is not None:
        record_left_scope("risk", stored, squadron_id, actor.user_id, now)


def refresh_target(actor: Actor, target: Target, now: datetime) -> RecomputeSummary:
    """Re-assess one target after something that feeds its risk changed (same transaction)."""
    return refresh_targets(actor, [target.id], now)


def refresh_targets(
    actor: Actor,
    target_ids: list[uuid.UUID],
    now: datetime,
    *,
    corrected: Iterable[tuple[str, uuid.UUID]] = (),
) -> RecomputeSummary:
    """Re-assess several targets at once after what feeds their risk changed (a sync batch's
    submitted inspections: their next due dates count from them), in the same transaction.

    ``corrected`` names the records (entity, id) a correction took out of the facts or changed
    (an approved inspection deleted, one approved again after an amendment reopened it, a
    complaint found untrue after all): a target whose latest level change was a rise they
    counted in is judged as before that rise too, and the lower level stands
    (:func:`~fieldapp.risk.scoring.assess_after_correction`), not held where they put it."""
    db.session.flush()
    return assess_targets(
        actor, now, target_ids, corrected={(entity, str(i)) for entity, i in corrected}
    )


@dataclass
class ChunkResult:
    """What assessing one chunk of targets decided: the rows to write and the level changes.

    Plain data, so that a worker process can hand it to the one that writes. ``seen`` holds the
    stored version each written row was assessed against (None: no row yet).
    """

    inserts: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    level_rows: list[dict] = field(default_factory=list)
    seen: dict[str, int | None] = field(default_factory=dict)
    by_level: Counter = field(default_factory=Counter)


def _stored_state(in_chunk, *, lock: bool) -> dict:
    """Each target's stored level, version and digest, keyed by the target id's text."""
    table = TargetRisk.__table__
    query = sa.select(
        _raw(table.c.target_id).label("target_id"),
        table.c.level,
        table.c.level_since,
        table.c.version,
        table.c.digest,
    ).where(in_chunk)
    return {
        _dashed(row.target_id): row for row in _read(query.with_for_update() if lock else query)
    }


def _states_before_rises(stored: dict, corrected: set[tuple[str, str]]) -> dict:
    """For each stored target whose latest level change is a rise that counted one of the
    ``corrected`` records (one of its factors or floors names it as source): the state before
    the rise (its level, and since when: the change before it) and the record's name.

    A rise named by a record is not always caused by it: the caller judges from both states
    and keeps the lower (:func:`~fieldapp.risk.scoring.assess_after_correction`). Only the
    latest change is looked at: a level that moved again since the rise has been judged since.
    """
    out = {}
    for target_id, row in stored.items():
        changes = db.session.scalars(
            sa.select(RiskLevelChange)
            .where(RiskLevelChange.target_id == uuid.UUID(target_id))
            .order_by(RiskLevelChange.id.desc())  # the order they were written in
            .limit(2)
        ).all()
        if not changes:
            continue
        rise = changes[0]
        if rise.to_level != row.level or (
            rise.from_level is not None and rise.from_level.rank >= rise.to_level.rank
        ):
            continue
        sources = [entry.get("source") for entry in [*rise.factors, *rise.floors]]
        named = sorted({(s["entity"], s["id"]) for s in sources if s} & corrected)
        if not named:
            continue
        if rise.from_level is None:  # its first assessment: judged as a new one
            before = LevelState()
        else:
            before = LevelState(rise.from_level, changes[1].at if len(changes) > 1 else rise.at)
        out[target_id] = (before, " ".join(named[0]))
    return out


def _assess_chunk(
    facts: dict, stored: dict, settings: dict, now: datetime, before_rises: dict | None = None
) -> ChunkResult:
    """Assess every target of ``facts`` against its stored state; keep only what changed.
    ``before_rises``: :func:`_states_before_rises`."""
    out = ChunkResult()
    for target_id, (fact, squadron_id) in facts.items():
        row = stored.get(target_id)
        state = LevelState(row.level, row.level_since) if row is not None else LevelState()
        if before_rises and target_id in before_rises:
            before, corrected = before_rises[target_id]
            result = assess_after_correction(fact, state, before, settings, now, corrected)
        else:
            result = assess(fact, state, settings, now)
        out.by_level[result.level] += 1
        values = _values(target_id, squadron_id, fact.kind, result, now)
        if row is None:
            out.inserts.append(values | {"target_id": uuid.UUID(target_id), "version": 1})
            out.seen[target_id] = None
        elif values["digest"] != row.digest:
            values["target_id"] = uuid.UUID(target_id)
            out.updates.append(values | {"version": row.version + 1})
            out.seen[target_id] = row.version
        if result.changed:
            out.level_rows.append(
                _change_row(uuid.UUID(target_id), squadron_id, state.level, result, now)
            )
    return out


def _write_chunk(actor: Actor, chunk: ChunkResult, summary: RecomputeSummary) -> None:
    """Store a chunk's decisions: new and changed assessments (each taking a change sequence
    number, so devices pull them), level changes and their audit entries."""
    table = TargetRisk.__table__
    written = chunk.inserts + chunk.updates
    if written:
        first = allocate(db.session, change_counter, len(written))
        for offset, values in enumerate(written):
            values["change_seq"] = first + offset
    if chunk.inserts:
        db.session.execute(sa.insert(table), chunk.inserts)
    if chunk.updates:
        # executemany UPDATE: bind names must differ from the columns they set.
        columns = [name for name in chunk.updates[0] if name != "target_id"]
        db.session.execute(
            sa.update(table)
            .where(table.c.target_id == sa.bindparam("p_target_id"))
            .values({name: sa.bindparam(f"p_{name}") for name in columns}),
            [{f"p_{k}": v for k, v in u.items()} for u in chunk.updates],
        )
    if chunk.level_rows:
        db.session.execute(sa.insert(RiskLevelChange.__table__), chunk.level_rows)
        audit.append(
            [
                audit.entry_values(
                    actor,
                    "risk.level_change",
                    "risk",
                    row["target_id"],
                    before={"level": row["from_level"].value if row["from_level"] else None},
                    after={
                        "level": row["to_level"].value,
                        "score": row["score"],
                        "reason": row["reason"],
                    },
                )
                for row in chunk.level_rows
            ]
        )
    summary.changed += len(written)
    summary.level_changes += len(chunk.level_rows)
    for level, count in chunk.by_level.items():
        summary.by_level[level] += count


def assess_targets(
    actor: Actor,
    now: datetime,
    target_ids: list[uuid.UUID] | None = None,
    progress: Callable[[str], None] = lambda _: None,
    workers: int = 1,
    chunk_size: int = CHUNK,
    chunk_done: Callable[[], None] | None = None,
    corrected: set[tuple[str, str]] | None = None,
) -> RecomputeSummary:
    """Re-assess the given targets (None: every one), a chunk at a time: a few queries and
    bulk writes per chunk, whether for one target after an event or for the whole city.

    ``corrected`` (a correction's, with ``target_ids``): see :func:`refresh_targets`.

    ``workers`` > 1 (a full recompute only) assesses chunks in that many processes, each on
    its own connection, while this one writes; see :func:`_assess_in_workers` for why that is
    safe and when it is not allowed.

    ``chunk_done`` is called once each chunk is written, with its audit entries: the
    recompute command commits there, so each chunk is a transaction of its own, holding the
    change counter only while it is assessed and written, and pushes go on in between
    (otherwise the first chunk's counter is held until the caller commits). Each chunk is
    then assessed at its own moment, ``now`` moved on by the time since the call began, taken
    once it holds the counter: a push committed between two chunks may have submitted an
    inspection started after ``now``, which an assessment at ``now`` would leave out.
    """
    clock = _Clock(now, moves=chunk_done is not None)
    settings = load_settings()
    # Raw ids for a full recompute: two hundred thousand UUID objects cost seconds, and only
    # the few rows actually rewritten need one.
    all_ids = (
        _read(sa.select(_raw(Target.id)).order_by(Target.id)).scalars().all()
        if target_ids is None
        else list(target_ids)
    )
    summary = RecomputeSummary(targets=len(all_ids), by_level=dict.fromkeys(RiskLevel, 0))
    chunks = [all_ids[start : start + chunk_size] for start in range(0, len(all_ids), chunk_size)]
    if target_ids is None and workers > 1 and len(chunks) > 1:
        return _assess_in_workers(
            actor, clock, settings, chunks, workers, summary, progress, chunk_done
        )
    done = 0
    for chunk in chunks:
        # The change counter, then the stored assessments' locks, then the facts: in the order
        # every writer locks (an approval holds the counter when it re-assesses), and with the
        # facts read once no other writer can change them until this one commits (two
        # complaint decisions at once would each store an assessment missing the other's).
        hold(db.session, change_counter)
        at = clock.now()
        if target_ids is None:  # ids are sorted: the chunk is a range
            in_chunk = _raw(TargetRisk.target_id).between(chunk[0], chunk[-1])
            stored = _stored_state(in_chunk, lock=True)
            facts = gather_facts(at, settings, id_range=(chunk[0], chunk[-1]))
        else:
            in_chunk = TargetRisk.target_id.in_(chunk)
            stored = _stored_state(in_chunk, lock=True)
            facts = gather_facts(at, settings, chunk)
        before_rises = _states_before_rises(stored, corrected) if corrected else None
        _write_chunk(actor, _assess_chunk(facts, stored, settings, at, before_rises), summary)
        if chunk_done is not None:
            chunk_done()
        done += len(chunk)
        progress(f"{done:,} of {len(all_ids):,} targets assessed")
    return summary


@dataclass(frozen=True)
class _Clock:
    """The moment a chunk is assessed at: ``start`` for all of them, or, when ``moves`` (each
    chunk committed on its own), ``start`` moved on by the time passed since the recompute
    began (``began``: the wall clock then)."""

    start: datetime
    moves: bool
    began: datetime = field(default_factory=utcnow)

    def now(self) -> datetime:
        return self.start + (utcnow() - self.began) if self.moves else self.start


# -- a full recompute in worker processes --------------------------------------------------------

_worker_app = None


def _start_worker(config: dict) -> None:
    global _worker_app
    from fieldapp import create_app

    _worker_app = create_app(config)


def _assess_range(job: tuple) -> ChunkResult:
    """In a worker: assess the targets whose raw id lies in the range, reading only."""
    clock, settings, low, high = job
    with _worker_app.app_context():
        try:
            now = clock.now()  # before the reads: whatever they see happened by then
            facts = gather_facts(now, settings, id_range=(low, high))
            stored = _stored_state(_raw(TargetRisk.target_id).between(low, high), lock=False)
            return _assess_chunk(facts, stored, settings, now)
        finally:
            db.session.rollback()


def _assess_in_workers(
    actor: Actor,
    clock: _Clock,
    settings: dict,
    chunks: list[list],
    workers: int,
    summary: RecomputeSummary,
    progress: Callable[[str], None],
    chunk_done: Callable[[], None] | None,
) -> RecomputeSummary:
    """A full recompute with the assessing spread over ``workers`` processes.

    Workers read committed data on their own connections, so this transaction must not have
    written anything they would need to see: the recompute command starts clean, and callers
    inside a larger transaction (the demo builder, imports, requests) assess in process.
    Targets are disjoint between chunks, and this process writes a chunk only after its worker
    has read it. A concurrent request may still re-assess a target between the worker's read
    and the write: each written row is locked and its version compared with the one the
    worker saw, and targets that moved are assessed again here, under the lock. With
    ``chunk_done`` (chunks committed one by one), a worker assesses at the moment it reads
    (the clock moves on in its process too), so what a request committed before the read
    counts, and what it committed after has moved the row.
    """
    if db.session.new or db.session.dirty or db.session.deleted:
        raise RuntimeError("a recompute in workers needs a transaction with nothing pending")
    config = {
        key: current_app.config[key]
        for key in ("SQLALCHEMY_DATABASE_URI", "LOG_LEVEL")
        if key in current_app.config
    }
    total = sum(len(chunk) for chunk in chunks)
    done, moved = 0, []
    jobs = [(clock, settings, chunk[0], chunk[-1]) for chunk in chunks]
    context = multiprocessing.get_context("spawn")  # no inherited connections or locks
    with ProcessPoolExecutor(workers, context, _start_worker, (config,)) as pool:
        for chunk, result in zip(chunks, pool.map(_assess_range, jobs), strict=True):
            hold(db.session, change_counter)  # before the rows' locks, as every writer
            moved += _drop_moved(result)
            _write_chunk(actor, result, summary)
            if chunk_done is not None:
                chunk_done()
            done += len(chunk)
            progress(f"{done:,} of {total:,} targets assessed")
    if moved:
        again = assess_targets(
            actor,
            clock.now(),
            [uuid.UUID(target_id) for target_id in moved],
            chunk_done=chunk_done,
        )
        summary.changed += again.changed
        summary.level_changes += again.level_changes
        for level, count in again.by_level.items():
            summary.by_level[level] += count
    return summary


def _drop_moved(result: ChunkResult) -> list[str]:
    """Lock the rows a worker decided to write; take out those whose stored version is no
    longer the one it assessed against (a request re-assessed them meanwhile), and return
    their ids."""
    if not result.seen:
        return []
    table = TargetRisk.__table__
    current: dict[str, int] = {}
    ids = [uuid.UUID(target_id) for target_id in result.seen]
    for start in range(0, len(ids), 1000):
        for raw, version in _read(
            sa.select(_raw(table.c.target_id), table.c.version)
            .where(table.c.target_id.in_(ids[start : start + 1000]))
            .with_for_update()
        ):
            current[_dashed(raw)] = version
    moved = {t for t, version in result.seen.items() if current.get(t) != version}
    if moved:
        # They are counted again when they are assessed again.
        for row in result.inserts + result.updates:
            if str(row["target_id"]) in moved:
                result.by_level[row["level"]] -= 1
        result.inserts = [r for r in result.inserts if str(r["target_id"]) not in moved]
        result.updates = [r for r in result.updates if str(r["target_id"]) not in moved]
        result.level_rows = [r for r in result.level_rows if str(r["target_id"]) not in moved]
    return sorted(moved)


# -- settings ------------------------------------------------------------------------------------


def locked_settings() -> dict[str, RiskSetting]:
    """Every settings group by key, locked until the transaction ends: a change is checked
    against them, and against what its caller read, with no other change in between."""
    return {row.key: row for row in db.session.scalars(sa.select(RiskSetting).with_for_update())}


def settings_version(rows: Iterable[RiskSetting]) -> str:
    """A tag of the settings' values (all groups): it names what an admin read, so a change
    sent from an older reading is told apart (``If-Match``) instead of undoing what another
    admin changed since."""
    values = {row.key: row.value for row in rows}
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()


def update_settings(actor: Actor, rows: dict[str, RiskSetting], changes: dict) -> dict:
    """Replace groups of the risk model's numbers (``rows``: :func:`locked_settings`) after
    checking the whole model still holds. A group sent as it is changes nothing: no audit entry,
    its ``updated_by`` and ``updated_at`` stay. Returns the groups that changed."""
    unknown = sorted(set(changes) - set(rows))
    if unknown:
        raise APIError(
            422,
            "validation_failed",
            errors={"json": {key: ["not a risk setting group"] for key in unknown}},
        )
    proposed = {key: row.value for key, row in rows.items()} | changes
    errors = check_settings(proposed)
    if errors:
        raise APIError(422, "validation_failed", errors={"json": errors})
    changed = {key: value for key, value in changes.items() if value != rows[key].value}
    if not changed:
        return {}
    before = {key: rows[key].value for key in changed}
    now = utcnow()
    for key, value in changed.items():
        rows[key].value = value
        rows[key].updated_by_id = actor.user_id
        rows[key].updated_at = now
    audit.record(actor, "risk.settings_update", "risk_settings", None, before=before, after=changed)
    return changed


# -- reading -------------------------------------------------------------------------------------


def level_history(target_id: uuid.UUID, limit: int = 50) -> list[dict]:
    """The target's level changes, newest first."""
    return [
        {
            "at": change.at,
            "from_": change.from_level.value if change.from_level else None,
            "to": change.to_level.value,
            "score": change.score,
            "reason": change.reason,
        }
        for change in db.session.scalars(
            sa.select(RiskLevelChange)
            .where(RiskLevelChange.target_id == target_id)
            .order_by(RiskLevelChange.at.desc(), RiskLevelChange.id.desc())
            .limit(limit)
        )
    ]


def risk_file(target: Target, now: datetime, *, with_history: bool = True) -> dict:
    """The target's stored assessment, with its level history unless ``with_history`` is off;
    a target never assessed yet (added before the risk tables existed) is assessed here without
    storing anything."""
    stored = db.session.get(TargetRisk, target.id)
    if stored is not None:
        values = {k: getattr(stored, k) for k in (*_COMPARED, "assessed_at")}
    else:
        settings = load_settings()
        facts, squadron_id = gather_facts(now, settings, [target.id])[str(target.id)]
        values = _values(
            target.id, squadron_id, facts.kind, assess(facts, LevelState(), settings, now), now
        )
    return {
        **values,
        "target_id": target.id,
        "level": values["level"].value,
        "history": level_history(target.id) if with_history else [],
    }


SHARE_PLACES = 4


def shares(counts: list[int], places: int = SHARE_PLACES) -> list[float]:
    """Each count's share of their sum, to ``places`` decimals, adding up to exactly 1.

    Rounded one by one, three equal thirds would be 0.3333 each, 0.9999 of the whole on a
    leader's chart: the largest-remainder rule gives the units left over by rounding down to
    the counts with the largest remainders (the first of equal ones), so no share is off by
    more than one unit in the last place and together they are the whole. All zeros when
    the counts are.
    """
    whole, total = 10**places, sum(counts)
    if not total:
        return [0.0] * len(counts)
    units = [count * whole // total for count in counts]
    by_remainder = sorted(range(len(counts)), key=lambda i: -(counts[i] * whole % total))
    for i in by_remainder[: whole - sum(units)]:
        units[i] += 1
    return [unit / whole for unit in units]


def summarize(rows: list) -> dict:
    """Counts and shares per level from ``(squadron_id, kind, level, count)`` rows; the shares
    of each whole add up to exactly 1 (:func:`shares`)."""

    def levels(counts: dict) -> list[dict]:
        per_level = [counts.get(level, 0) for level in RiskLevel]
        return [
            {"level": level.value, "count": count, "share": share}
            for level, count, share in zip(RiskLevel, per_level, shares(per_level), strict=True)
        ]

    overall: dict = {}
    groups: dict = {}
    for squadron_id, kind, level, count in rows:
        overall[level] = overall.get(level, 0) + count
        group = groups.setdefault((squadron_id, kind), {})
        group[level] = group.get(level, 0) + count
    return {
        "total": sum(overall.values()),
        "levels": levels(overall),
        "groups": [
            {
                "squadron_id": squadron_id,
                "kind": kind,
                "total": sum(counts.values()),
                "levels": levels(counts),
            }
            for (squadron_id, kind), counts in sorted(groups.items())
        ],
    }
