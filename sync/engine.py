"""Push: apply a device's batch of changes, each on its own, exactly once.

For every change: check its envelope, replay it if its ``change_id`` was applied before, else
apply it inside its own savepoint through the entity's handler (``sync/entities.py``). A change
that fails is rolled back alone and answered ``rejected`` with the error envelope; the others go
on. Changes are remembered with their result (``SyncChange``), so a batch sent again after a
lost answer changes nothing and gets the same answers back; refused ones too, except where the
refusal can pass (``MAY_PASS``: typically a change that arrived before the create it depends on,
applied when the device sends it again).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

import marshmallow as ma
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.auth.models import Device
from fieldapp.auth.policy import Policy
from fieldapp.db import change_counter, db, flush_edits, insert_rows
from fieldapp.errors import APIError, envelope
from fieldapp.risk.operations import refresh_targets
from schemas.common import text_errors, text_problem
from schemas.sync import MAX_VERSION, load_change
from sync.hlc import HLC, HLCError
from sync.models import RecordVersion, SyncChange
from sync.sequence import reserve

#: Sequence numbers reserved per change of a push: a change rewrites one or two syncable rows
#: (an inspection, a photo and its inspection); more are taken from the counter as needed.
SEQS_PER_CHANGE = 2


@dataclass
class Change:
    change_id: uuid.UUID
    entity: str
    id: uuid.UUID
    op: str
    base_version: int | None
    hlc: HLC
    fields: dict
    #: The device's clock ran more than a minute ahead and was clamped.
    clock_skewed: bool = False


@dataclass(frozen=True)
class SeenChange:
    body_hash: str
    result: dict


@dataclass
class PushContext:
    actor: Actor
    policy: Policy
    device_id: str
    now: datetime
    #: the batch's JSON text showed no NUL or unpaired surrogate (else each change is checked)
    text_checked: bool = False
    #: devices whose clamped clocks (see :func:`_clamp`) came with changes the batch applied
    skewed_devices: set[str] = field(default_factory=set)
    #: the last clamped clock given out in this batch (see :func:`_clamp`)
    last_clamped: HLC | None = None
    #: the batch's clocks that run far ahead, each with the clamped clock it is given, in the
    #: device's own order (see :func:`_order_clamped_clocks`)
    clamped_clocks: dict[HLC, HLC] = field(default_factory=dict)
    #: change id -> (body hash, result) of changes applied before, this batch's included
    seen_changes: dict[uuid.UUID, SeenChange] = field(default_factory=dict)
    #: (entity, record id) pairs that exist, so creates skip the row lock query
    existing: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    #: (entity, record id) pairs deleted before (tombstones) among this batch's records
    tombstoned: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    #: records of the batch loaded (and locked) up front, by (entity, id)
    records: dict[tuple[str, uuid.UUID], object] = field(default_factory=dict)
    #: look-ups that do not change while a batch is applied (targets, checklists, officers),
    #: and the version snapshots its changes are based on, by ("base", entity, id, version),
    #: the ones its own changes write included
    cache: dict = field(default_factory=dict)
    #: rows that applied changes write and nothing reads during the batch (exactly-once
    #: records, inspection version snapshots), inserted together when it ends; None: at once
    deferred: dict[sa.Table, list[dict]] | None = None
    #: targets of the submitted inspections the batch created or moved (submitted, dated or
    #: retargeted): their next due date counts from those, so they are re-assessed, together,
    #: when the batch ends (see :func:`push`). A change rolled back may leave its target here;
    #: re-assessing it changes nothing a recompute would not.
    inspected_targets: set[uuid.UUID] = field(default_factory=set)
    #: records (entity, id) the batch took from a target: submitted inspections moved to
    #: another one, and the cases (立案) that went with them. The target they left is judged
    #: without them as a correction (a rise of level they caused there goes), when the batch
    #: ends with the rest. A change rolled back may leave one here; nothing names it then.
    corrected: set[tuple[str, uuid.UUID]] = field(default_factory=set)

    def write_rows(self, table: sa.Table, rows: list[dict]) -> None:
        """Insert ``rows`` now, or with the batch's other rows when the batch defers them."""
        if self.deferred is None:
            db.session.execute(sa.insert(table), rows)
        else:
            self.deferred.setdefault(table, []).extend(rows)

    def deferred_mark(self) -> dict | None:
        """Where the rows waiting for the batch end now, table by table (see :meth:`rewind`)."""
        if self.deferred is None:
            return None
        return {table: len(rows) for table, rows in self.deferred.items()}

    def rewind(self, mark: dict | None) -> None:
        """Drop the waiting rows added since ``mark``: a change rolled back to its savepoint
        takes them with it, as it takes the rows it wrote at once."""
        if mark is None:
            return
        for table, rows in self.deferred.items():
            del rows[mark.get(table, 0) :]

    def _state(self) -> tuple:
        return (
            dict(self.seen_changes),
            set(self.existing),
            set(self.tombstoned),
            dict(self.records),
            dict(self.cache),
            set(self.skewed_devices),
        )

    def _restore(self, state: tuple) -> None:
        (
            self.seen_changes,
            self.existing,
            self.tombstoned,
            self.records,
            self.cache,
            self.skewed_devices,
        ) = state

    @property
    def now_ms(self) -> int:
        return int(self.now.timestamp() * 1000)

    def cached(self, key, compute):
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


class Rejected(Exception):
    """A change that cannot be applied; ``error`` is an :class:`APIError`."""

    def __init__(self, error: APIError):
        super().__init__(error.message)
        self.error = error


def body_hash(raw: dict) -> str:
    """What a change is, to tell a re-sent change from another one under the same change_id:
    sha256 of its JSON with keys sorted, compact, in UTF-8."""
    try:
        # orjson: the standard library's encoder was a twelfth of a batch of creates.
        canonical = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers past 64 bits: the standard library writes them
        return _stdlib_body_hash(raw)
    return hashlib.sha256(canonical).hexdigest()


def _stdlib_body_hash(raw: dict) -> str:
    """:func:`body_hash` by the standard library's encoder, as changes recorded before orjson
    were hashed. The two texts differ only in how some floats are spelled (``1e-05`` against
    ``1e-5``), so a re-sent change is matched by one or the other."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _echoable(value) -> str | None:
    """``value`` as the answer may echo it: text that can be written as UTF-8 JSON, or None."""
    return value if isinstance(value, str) and text_problem(value) is None else None


def _rejected(raw, error: APIError) -> dict:
    body, _, _ = envelope(error)
    change_id = raw.get("change_id") if isinstance(raw, dict) else None
    record_id = raw.get("id") if isinstance(raw, dict) else None
    return {
        "change_id": _echoable(change_id),
        "id": _echoable(record_id),
        "status": "rejected",
        "version": None,
        "replayed": False,
        "conflicts": [],
        "error": body,
    }


#: Refusals that can pass: the record a change needs may still come (``not_found``: a change
#: that arrived before its create), or a concurrent write got there first. They are not
#: remembered (nor is a 5xx, the server's own trouble), so the same change sent again is
#: applied then; out-of-order delivery ends as a clean one does.
MAY_PASS = frozenset({"not_found", "version_conflict"})


def _refused(ctx: PushContext, raw: dict, change: Change, digest: str, error: APIError) -> dict:
    """The answer to a refused change. Unless the refusal can pass (:data:`MAY_PASS`), it is
    remembered as an applied change's result is: the change sent again is answered the same
    way with ``replayed: true``, and the id with another body is ``id_conflict`` (API.md)."""
    result = _rejected(raw, error)
    if error.error in MAY_PASS or error.code >= 500:  # the server's trouble passes too
        return result
    row = _sync_change_row(ctx, change, digest, result)
    if ctx.deferred is not None:
        ctx.write_rows(SyncChange.__table__, [row])  # a concurrent twin: see push
    else:
        savepoint = db.session.begin_nested()
        try:
            ctx.write_rows(SyncChange.__table__, [row])
            savepoint.commit()
        except IntegrityError:  # the same change, refused by a concurrent push just now
            savepoint.rollback()
            existing = db.session.get(SyncChange, change.change_id)
            return result if existing is None else _replay(existing, digest, raw)
    ctx.seen_changes[change.change_id] = SeenChange(digest, result)
    return result


def _parse(ctx: PushContext, raw) -> Change:
    if not isinstance(raw, dict):
        raise Rejected(APIError(422, "validation_failed", "a change is a JSON object"))
    if not ctx.text_checked:
        errors = _text_errors(raw)
        if errors:
            raise Rejected(APIError(422, "validation_failed", errors={"json": errors}))
    try:
        data = load_change(raw)
    except ma.ValidationError as exc:
        raise Rejected(
            APIError(422, "validation_failed", errors={"json": exc.normalized_messages()})
        ) from None
    try:
        clock = HLC.parse(data["hlc"])
    except HLCError as exc:
        raise Rejected(
            APIError(422, "validation_failed", errors={"json": {"hlc": [str(exc)]}})
        ) from None
    if clock.node != ctx.device_id:
        raise Rejected(
            APIError(
                422,
                "validation_failed",
                errors={"json": {"hlc": [f"the clock's device part must be {ctx.device_id}"]}},
            )
        )
    clock, skewed = _clamp(ctx, clock)
    return Change(
        change_id=data["change_id"],
        entity=data["entity"],
        id=data["id"],
        op=data["op"],
        base_version=data["base_version"],
        hlc=clock,
        fields=data["fields_"],
        clock_skewed=skewed,
    )


def _clamp(ctx: PushContext, clock: HLC) -> tuple[HLC, bool]:
    """The clock to use for a change, clamped if the device's runs far ahead.

    Clamped clocks all land at the server's time; so that they still order the device's
    changes as its own clocks did (its later edit of a field must still win), the batch's are
    given out in the order of the device's clocks, each after the one before
    (:func:`_order_clamped_clocks`). The device is flagged only for changes applied (see
    :func:`apply_one`): a replayed batch changes nothing."""
    if clock in ctx.clamped_clocks:
        return ctx.clamped_clocks[clock], True
    clamped, skewed = clock.clamped(ctx.now_ms)
    if not skewed:
        return clock, False
    if ctx.last_clamped is not None and clamped <= ctx.last_clamped:
        clamped = ctx.last_clamped.after(clamped.node)
    clamped = replace(clamped, batch_until=clamped.physical_ms)
    ctx.last_clamped = clamped
    return clamped, True


def _order_clamped_clocks(ctx: PushContext, changes: list) -> None:
    """Clamp the batch's clocks that run far ahead in the order of the device's own clocks,
    whatever the order of its changes in the batch, and once for the batch (a batch applied
    again after a failed write gets the same clocks)."""
    ahead = set()
    for raw in changes:
        text = raw.get("hlc") if isinstance(raw, dict) else None
        try:
            clock = HLC.parse(text)
        except HLCError:
            continue
        if clock.node == ctx.device_id and clock.clamped(ctx.now_ms)[1]:
            ahead.add(clock)
    for clock in sorted(ahead):
        ctx.clamped_clocks[clock] = _clamp(ctx, clock)[0]
    # Each of them knows where the batch's clamped clocks end (sync.merge.clock_later).
    for clock, clamped in ctx.clamped_clocks.items():
        ctx.clamped_clocks[clock] = replace(clamped, batch_until=ctx.last_clamped.physical_ms)


def _text_errors(raw: dict) -> dict[str, list[str]]:
    """Text the database cannot store in a change, by field: the fields' own names for what is
    inside ``fields``, as the other field errors name them."""
    inner = raw.get("fields")
    if not isinstance(inner, dict):
        return text_errors(raw)
    return text_errors({k: v for k, v in raw.items() if k != "fields"}) | text_errors(inner)


def _replay(existing: SeenChange | SyncChange, digest: str, raw: dict) -> dict:
    if existing.body_hash != digest and existing.body_hash != _stdlib_body_hash(raw):
        return _rejected(
            raw,
            APIError(
                409,
                "id_conflict",
                "this change_id was used before for a different change",
            ),
        )
    return {**existing.result, "replayed": True}


def apply_one(ctx: PushContext, raw, change: Change | None = None) -> dict:
    """Apply one change (``change``: ``raw`` already parsed) on its own; never raises for a
    bad change.

    The change gets a savepoint of its own, rolled back if it is refused, unless the batch
    defers its rows and the handler refuses only before writing (an edit of a loaded
    inspection): such a change costs no SAVEPOINT and RELEASE, and its UPDATE is flushed with
    the batch's others. A database error in it then fails the batch, which :func:`push`
    applies again with a savepoint per change.
    """
    from sync.entities import HANDLERS  # entities import this module's types

    if change is None:
        try:
            change = _parse(ctx, raw)
        except Rejected as rejected:
            return _rejected(raw, rejected.error)
    digest = body_hash(raw)
    existing = ctx.seen_changes.get(change.change_id)
    if existing is not None:
        return _replay(existing, digest, raw)
    handler = HANDLERS[change.entity]
    mark = ctx.deferred_mark()
    record = None if ctx.deferred is None else handler.edited_record(ctx, change)
    if record is None:
        savepoint = db.session.begin_nested()
    else:
        savepoint = _NoSavepoint(ctx, mark, record)
        if sa.inspect(record).modified:
            # An earlier change of the batch edited it: that edit takes its version first,
            # so that this one reads it and predicts its own.
            db.session.flush()
    try:
        result = handler.apply(ctx, change)
        # Stored with the change's own rows: a concurrent push of the same change id fails on
        # the primary key here (or, deferred, when the batch writes: see push), and replays
        # what this one did.
        ctx.write_rows(SyncChange.__table__, [_sync_change_row(ctx, change, digest, result)])
        savepoint.commit()
        ctx.seen_changes[change.change_id] = SeenChange(digest, result)
        _note_skew(ctx, change)
        key = (change.entity, change.id)
        if change.op == "delete" and result["status"] == "applied":
            ctx.existing.discard(key)
            ctx.records.pop(key, None)
            ctx.tombstoned.add(key)
        elif change.entity != "track":
            ctx.existing.add(key)
        return result
    except Rejected as rejected:
        savepoint.rollback()
        ctx.rewind(mark)
        return _refused(ctx, raw, change, digest, rejected.error)
    except APIError as error:
        savepoint.rollback()
        ctx.rewind(mark)
        return _refused(ctx, raw, change, digest, error)
    except IntegrityError as error:
        if record is not None:
            raise  # the batch is undone and applied again, a savepoint per change (push)
        savepoint.rollback()
        ctx.rewind(mark)
        existing = db.session.get(SyncChange, change.change_id)
        if existing is not None and existing.result is not None:
            return _replay(existing, digest, raw)
        refusal = _refused_by_a_rule(error)
        if refusal is not None:
            return _refused(ctx, raw, change, digest, refusal)
        return _rejected(
            raw,
            APIError(
                409, "version_conflict", "the change conflicts with data stored meanwhile; retry"
            ),
        )


def _note_skew(ctx: PushContext, change: Change) -> None:
    """Flag the device when the batch ends if ``change``, applied, had its clock clamped."""
    if change.clock_skewed:
        ctx.skewed_devices.add(ctx.device_id)


#: Rules of the tables that a change can break whatever else is stored (a CHECK constraint):
#: the field to name, and why. The handlers check these first; this is the last line, so that
#: a rule they miss is a refusal of the change, not a conflict the device would retry forever.
RULE_FIELDS = {
    "ck_inspections_rectification_has_deadline": (
        "rectification_deadline",
        "required when rectification is ordered",
    ),
    "ck_targets_lon_lat": ("location", "not a point on the globe once converted to WGS-84"),
    "ck_targets_shop_has_business_type": ("business_type", "required for a shop"),
    "ck_targets_site_has_scale": ("scale", "a site needs its scale and phase"),
}

#: SQLSTATEs (PostgreSQL) and extended result codes (SQLite) of a row breaking a rule of its
#: own table: the same row breaks it again however often it is sent.
_RULE_BROKEN = {
    "23514": "check",  # check_violation
    "23502": "not_null",  # not_null_violation
    "SQLITE_CONSTRAINT_CHECK": "check",
    "SQLITE_CONSTRAINT_NOTNULL": "not_null",
}


def _refused_by_a_rule(error: IntegrityError) -> APIError | None:
    """A 422 naming the field, when the database refused a change's row for breaking a rule of
    its own table (a CHECK constraint, a missing value): sent again, the same change breaks it
    again, so it is no ``version_conflict`` to retry. None for what another writer can cause
    (a key taken meanwhile, a row referred to deleted meanwhile): those pass when sent again."""
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    kind = _RULE_BROKEN.get(code)
    if kind is None:
        return None
    diag = getattr(orig, "diag", None)
    text = str(orig)
    if kind == "check":
        name = getattr(diag, "constraint_name", None) or text.rpartition(":")[2].strip()
        field_name, why = RULE_FIELDS.get(name, ("fields", f"refused by the rule {name}"))
    else:
        column = getattr(diag, "column_name", None) or text.rpartition(".")[2].strip()
        field_name, why = column or "fields", "required"
    return APIError(422, "validation_failed", errors={"json": {field_name: [why]}})


class _RedoBatch(Exception):
    """A change applied without a savepoint was refused after it had written something."""


@dataclass
class _NoSavepoint:
    """Stands in for the savepoint of a change whose handler refuses only before writing.

    Should a refusal come later all the same, nothing but a savepoint per change can undo
    what it wrote, so the batch is undone and applied again that way (see :func:`push`).
    """

    ctx: PushContext
    mark: dict | None
    record: object

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        if self.ctx.deferred_mark() != self.mark or sa.inspect(self.record).modified:
            raise _RedoBatch


def _preload(ctx: PushContext, changes: list) -> None:
    """Two queries for the whole batch instead of two per change."""
    from sync.entities import HANDLERS

    change_ids, records = set(), {}
    for raw in changes:
        if not isinstance(raw, dict):
            continue
        try:
            change_ids.add(uuid.UUID(str(raw.get("change_id"))))
            if isinstance(raw.get("entity"), str) and raw["entity"] in HANDLERS:
                records.setdefault(raw["entity"], set()).add(uuid.UUID(str(raw.get("id"))))
        except ValueError:
            continue
    if change_ids:
        ctx.seen_changes.update(
            (row.change_id, SeenChange(row.body_hash, row.result))
            for row in db.session.scalars(
                sa.select(SyncChange).where(SyncChange.change_id.in_(change_ids))
            )
        )
    all_ids = set().union(*records.values()) if records else set()
    if all_ids:
        from sync.models import Tombstone

        rows = db.session.execute(
            sa.select(Tombstone.entity, Tombstone.record_id).where(Tombstone.record_id.in_(all_ids))
        )
        ctx.tombstoned.update((entity, record_id) for entity, record_id in rows)
    _preload_targets(ctx, changes)
    _preload_tasks(ctx, changes)
    _preload_inspections(ctx, changes, records.get("inspection", set()))
    for entity, ids in records.items():
        model = HANDLERS[entity].model
        if entity == "inspection":
            # _preload_inspections loaded every one of them that exists.
            ctx.existing.update(key for key in ctx.records if key[0] == entity)
        elif model is not None:
            ctx.existing.update(
                (entity, i)
                for i in db.session.scalars(sa.select(model.id).where(model.id.in_(ids)))
            )


def _sync_change_row(ctx: PushContext, change: Change, digest: str, result: dict) -> dict:
    return {
        "change_id": change.change_id,
        "device_id": ctx.device_id,
        "user_id": ctx.actor.user_id,
        "entity": change.entity,
        "record_id": change.id,
        "body_hash": digest,
        "received_at": ctx.now,
        "result": result,
    }


@dataclass
class _Pending:
    index: int
    raw: dict
    change: Change
    digest: str
    prepared: object


class _PendingCreates(list):
    """Checked creates waiting to be written together, and the record and change ids they
    take (looked up per change, so sets rather than a scan of the list)."""

    def __init__(self):
        super().__init__()
        self.record_ids: set[uuid.UUID] = set()
        self.change_ids: set[uuid.UUID] = set()

    def append(self, pending: _Pending) -> None:
        super().append(pending)
        self.record_ids.add(pending.change.id)
        self.change_ids.add(pending.change.change_id)

    def clear(self) -> None:
        super().clear()
        self.record_ids.clear()
        self.change_ids.clear()


def _flush_creates(ctx: PushContext, pending: _PendingCreates, results: list) -> None:
    """Write the checked creates together; if that fails (a concurrent writer took one of the
    ids meanwhile), take them again one by one, each in its own savepoint."""
    from sync.entities import write_prepared

    if not pending:
        return
    savepoint = db.session.begin_nested()
    try:
        write_prepared([p.prepared for p in pending])
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        for p in pending:
            results[p.index] = apply_one(ctx, p.raw, p.change)
    else:
        for p in pending:
            results[p.index] = p.prepared.result
            ctx.seen_changes[p.change.change_id] = SeenChange(p.digest, p.prepared.result)
            ctx.existing.add((p.change.entity, p.change.id))
            _note_skew(ctx, p.change)
    pending.clear()


def _new_record(ctx: PushContext, change: Change, pending: _PendingCreates) -> bool:
    return (
        change.entity == "inspection"
        and change.op == "upsert"
        and change.base_version is None
        and (change.entity, change.id) not in ctx.existing
        and (change.entity, change.id) not in ctx.tombstoned
        and change.change_id not in ctx.seen_changes
        and change.id not in pending.record_ids
        and change.change_id not in pending.change_ids
    )


def _preload_inspections(ctx: PushContext, changes: list, ids: set) -> None:
    """Lock and load the batch's existing inspections, with their officers and the version
    snapshots their edits are based on, in three queries instead of several per change."""

    from fieldapp.inspections.models import Inspection

    if not ids:
        return
    found = db.session.scalars(
        sa.select(Inspection).where(Inspection.id.in_(ids)).with_for_update()
    ).all()
    if not found:
        return
    ctx.records.update((("inspection", i.id), i) for i in found)
    _cache_targets(ctx, {i.target_id for i in found})
    bases = set()
    for raw in changes:
        if isinstance(raw, dict) and raw.get("entity") == "inspection":
            base = raw.get("base_version")
            # (only versions a record can have: the change's own check refuses the others)
            if isinstance(base, int) and not isinstance(base, bool) and 0 <= base <= MAX_VERSION:
                try:
                    bases.add((uuid.UUID(str(raw.get("id"))), base))
                except ValueError:
                    continue
    if bases:
        for record_id, version, data in db.session.execute(_base_snapshots(list(bases))):
            ctx.cache[("base", "inspection", record_id, version)] = data
        for record_id, version in bases:
            ctx.cache.setdefault(("base", "inspection", record_id, version), None)


def _base_snapshots(pairs: list[tuple[uuid.UUID, int]]) -> sa.Select:
    """The inspection snapshots at these (record id, version) pairs.

    On PostgreSQL the pairs are joined as two arrays, so that each is one seek of the
    (entity, record_id, version) index. Asked as ``(record_id, version) IN (pairs)``, the
    planner, without statistics on a table filled moments ago, scanned every inspection's
    snapshot at that version: a tenth of a push of stale edits with 5,000 inspections stored,
    and growing with the table. (A VALUES list joins as well, but SQLAlchemy compiles it anew
    for every batch, which cost as much as it saved.) SQLite seeks the index for the pairs.
    """
    query = sa.select(RecordVersion.record_id, RecordVersion.version, RecordVersion.data).where(
        RecordVersion.entity == "inspection"
    )
    if db.session.get_bind().dialect.name != "postgresql":
        return query.where(sa.tuple_(RecordVersion.record_id, RecordVersion.version).in_(pairs))
    wanted = (
        sa.func.unnest(
            sa.bindparam("record_ids", [r for r, _ in pairs], type_=postgresql.ARRAY(sa.Uuid)),
            sa.bindparam("versions", [v for _, v in pairs], type_=postgresql.ARRAY(sa.Integer)),
        )
        .table_valued("record_id", "version")
        .render_derived(name="wanted")
    )
    return query.join(
        wanted,
        sa.and_(
            RecordVersion.record_id == wanted.c.record_id,
            RecordVersion.version == wanted.c.version,
        ),
    )


def _preload_targets(ctx: PushContext, changes: list) -> None:
    """The targets the batch's inspections name, in the caller's scope, in one query; and of
    those not in it, the ones that left the caller's squadron (:func:`left_target_refs`), in
    one more query, only when there are such (a target moved while a device was offline)."""

    missing = _cache_targets(ctx, _ids_named(changes, "target_id"))
    if missing:
        left = left_target_refs(ctx, missing)
        for target_id in missing:
            ctx.cache[("target_left", target_id)] = left.get(target_id)


def _preload_tasks(ctx: PushContext, changes: list) -> None:
    """Which of the tasks the batch's inspections name the caller may name
    (:func:`nameable_tasks`), in one query, only when some change names one."""
    wanted = {t for t in _ids_named(changes, "task_id") if ("task", t) not in ctx.cache}
    if not wanted:
        return
    found = nameable_tasks(ctx, wanted)
    for task_id in wanted:
        ctx.cache[("task", task_id)] = task_id in found


def _ids_named(changes: list, name: str) -> set[uuid.UUID]:
    """The ids the batch's changes give as field ``name`` (those that are ids: the change's own
    check answers the others)."""
    ids = set()
    for raw in changes:
        fields_ = raw.get("fields") if isinstance(raw, dict) else None
        if isinstance(fields_, dict) and isinstance(fields_.get(name), str):
            try:
                ids.add(uuid.UUID(fields_[name]))
            except ValueError:
                continue
    return ids


def _cache_targets(ctx: PushContext, wanted: set) -> set:
    """Cache the targets of ``wanted`` in the caller's scope; returns the ids not found."""
    wanted = {t for t in wanted if ("target", t) not in ctx.cache}
    if not wanted:
        return set()
    found = target_refs(ctx, wanted)
    for target_id in wanted:
        ctx.cache[("target", target_id)] = found.get(target_id)
    return wanted - found.keys()


def target_refs(ctx: PushContext, ids) -> dict:
    """The targets with these ids in the caller's scope, by id, as what an inspection's checks
    read of them (``id``, ``kind``, ``squadron_id``: a device changes neither of the last two),
    not as ORM objects, which cost more to load than the checks that use them."""
    from fieldapp.targets.models import Target

    return {
        row.id: row
        for row in db.session.execute(
            sa.select(Target.id, Target.kind, Target.squadron_id).where(
                Target.id.in_(ids), ctx.policy.readable(Target)
            )
        )
    }


def left_target_refs(ctx: PushContext, ids) -> dict:
    """The targets with these ids that moved out of the caller's squadron, by id: what
    :func:`target_refs` reads of them (their squadron is the one they are in now), and
    ``left_at`` and ``exit_seq``, when they last left the caller's squadron and the number of
    that scope exit. An inspection its officers started before the pad was told of the move
    (:func:`removals_served`) was made in good faith, and is not refused for it (see
    ``InspectionHandler._check``). Empty for a caller without a squadron (whose scope a move
    within it does not change)."""
    from fieldapp.targets.models import Target
    from sync.models import ScopeExit

    squadron_id = ctx.actor.user.squadron_id if ctx.actor.user is not None else None
    if squadron_id is None or not ids:
        return {}
    return {
        row.id: row
        for row in db.session.execute(
            sa.select(
                Target.id,
                Target.kind,
                Target.squadron_id,
                ScopeExit.left_at,
                ScopeExit.change_seq.label("exit_seq"),
            )
            .join(
                ScopeExit,
                sa.and_(ScopeExit.entity == "target", ScopeExit.record_id == Target.id),
            )
            .where(Target.id.in_(ids), ScopeExit.squadron_id == squadron_id)
        )
    }


def nameable_tasks(ctx: PushContext, ids) -> set[uuid.UUID]:
    """The ids among ``ids`` of tasks an inspection the caller pushes may carry.

    Those the caller reads (their squadron's, and their own elsewhere: a task they were sent on
    that followed its shop to another squadron), and those that left the caller's squadron with
    their target (a scope exit): the caller's pads held them, and an inspection made before
    the pad heard of the move carries one in good faith, as it names the target
    (:func:`left_target_refs`). Any other id is answered as an unknown one: a push must not
    reveal that another squadron's task exists, as ``GET /tasks/<id>`` does not (404)."""
    from fieldapp.tasks.models import Task
    from sync.models import ScopeExit

    nameable = ctx.policy.readable(Task)
    squadron_id = ctx.actor.user.squadron_id if ctx.actor.user is not None else None
    if squadron_id is not None:
        left = sa.exists().where(
            ScopeExit.entity == "task",
            ScopeExit.record_id == Task.id,
            ScopeExit.squadron_id == squadron_id,
        )
        nameable = sa.or_(nameable, left)
    return set(db.session.scalars(sa.select(Task.id).where(Task.id.in_(ids), nameable)))


def removals_served(ctx: PushContext) -> sa.Row | None:
    """How far the caller's device had been served the caller's removals (``change_seq``) and
    when (``served_at``), or None if no page it pulled ever carried one. Read once a batch,
    only when an inspection names a target that left the caller's squadron."""
    from sync.models import RemovalsServed

    if ctx.actor.user is None:
        return None
    return ctx.cached(
        "removals_served",
        lambda: db.session.execute(
            sa.select(RemovalsServed.change_seq, RemovalsServed.served_at).where(
                RemovalsServed.device_id == ctx.device_id,
                RemovalsServed.user_id == ctx.actor.user.id,
            )
        ).one_or_none(),
    )


def push(ctx: PushContext, changes: list) -> list[dict]:
    """Apply a batch in order; one result per change.

    Creates of new inspections (most of what devices send) are checked one by one, and a
    create that fails its checks is answered at once without touching the database; the ones
    that pass are written together, one INSERT per table, before any other kind of change.
    Every other change goes through :func:`apply_one` in its own savepoint; the rows it writes
    that nothing reads during the batch (its exactly-once record, an inspection's version
    snapshot) are inserted with the other changes' when the batch ends, which saves two
    statements per edit. If that insert fails (another push of the same change ids committed
    meanwhile), or a change applied without a savepoint must be undone (see :func:`apply_one`),
    the batch is undone and applied again with every row written at once, so each change is
    then refused or replayed in its own savepoint.

    Last, the targets of the inspections the batch submitted are re-assessed in one step
    (a few queries for the whole batch, none per change): a target inspected and submitted
    is not due again, on the schedule as after the nightly recompute (docs/risk.md).
    """
    if changes:
        # One counter update for the batch instead of one per change (see sync.sequence),
        # and before the batch's inspections are locked: every writer takes the counter first
        # and rows after it (docs/sync.md, "One lock order"), or a review of an inspection
        # this batch edits would hold the counter while waiting for the row, and deadlock.
        reserve(db.session, change_counter, len(changes) * SEQS_PER_CHANGE)
    _preload(ctx, changes)
    _order_clamped_clocks(ctx, changes)
    before = ctx._state()
    batch = db.session.begin_nested()
    ctx.deferred = {}
    try:
        results = _apply(ctx, changes)
        for table, rows in ctx.deferred.items():
            insert_rows(db.session.connection(), table, rows)
        flush_edits(db.session())
        batch.commit()
    except (IntegrityError, _RedoBatch):
        batch.rollback()
        ctx._restore(before)
        ctx.deferred = None
        results = _apply(ctx, changes)
    finally:
        ctx.deferred = None
    if ctx.inspected_targets:
        refresh_targets(
            ctx.actor,
            sorted(ctx.inspected_targets),
            ctx.now,
            corrected=sorted(ctx.corrected, key=str),
        )
    if ctx.skewed_devices:
        _flag_skewed_devices(ctx)
    return results


def _flag_skewed_devices(ctx: PushContext) -> None:
    """Flag the devices whose clocks this batch clamped (``clock_skew_at``), each with its
    audit entry: the flag is what says a device's times were not to be trusted, and when."""
    skewed = db.session.scalars(
        sa.select(Device).where(Device.id.in_(sorted(ctx.skewed_devices))).order_by(Device.id)
    )
    for device in skewed:
        before = device.clock_skew_at
        device.clock_skew_at = ctx.now
        audit.record(
            ctx.actor,
            "device.clock_skew",
            "device",
            device.id,
            before={"clock_skew_at": None if before is None else before.isoformat()},
            after={"clock_skew_at": ctx.now.isoformat()},
        )


def _apply(ctx: PushContext, changes: list) -> list[dict]:
    from sync.entities import HANDLERS

    results: list = [None] * len(changes)
    pending = _PendingCreates()
    for index, raw in enumerate(changes):
        try:
            change = _parse(ctx, raw)
        except Rejected as rejected:
            results[index] = _rejected(raw, rejected.error)
            continue
        if not _new_record(ctx, change, pending):
            _flush_creates(ctx, pending, results)
            results[index] = apply_one(ctx, raw, change)
            continue
        digest = body_hash(raw)
        try:
            prepared = HANDLERS["inspection"].prepare_create(ctx, change)
        except Rejected as rejected:
            results[index] = _refused(ctx, raw, change, digest, rejected.error)
            continue
        except APIError as error:
            results[index] = _refused(ctx, raw, change, digest, error)
            continue
        prepared.add(SyncChange.__table__, _sync_change_row(ctx, change, digest, prepared.result))
        pending.append(_Pending(index, raw, change, digest, prepared))
    _flush_creates(ctx, pending, results)
    return results
