"""Creating districts and squadrons, and drawing squadrons' jurisdictions.

A district's jurisdictions do not overlap (beyond a sliver along a shared border), so every
place has at most one squadron, and the ``outside_jurisdiction`` check can tell whose ground an
inspection was on. When a jurisdiction is redrawn, the targets it no longer covers follow the
ground to the squadron that now does; a drawing that would leave targets in no squadron's
ground is refused. Moving a boundary between neighbours takes both drawings at once
(:func:`redraw_jurisdictions`): one at a time, the first would either overlap or strand.
Every drawing is kept (:class:`JurisdictionVersion`), so past inspections are judged against
the ground as it was when they were made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.db import change_counter, db, utcnow
from fieldapp.errors import validation_error
from fieldapp.geo import LocalFrame, bounds
from fieldapp.org.models import District, JurisdictionVersion, Squadron
from fieldapp.targets.models import Target
from sync.sequence import hold

#: How wide two squadrons' jurisdictions may overlap and still count as sharing a border: the
#: same street traced on two maps, or by two hands, differs by a few metres.
OVERLAP_TOLERANCE_M = 10.0

#: How many target codes a refusal names (it says how many there are in all).
NAMED_TARGETS = 5


def create_district(actor: Actor, code: str, name: str) -> District:
    """A new district (区局), the unit a fresh installation starts from: its first admin,
    supervisors and squadrons belong to one. Its code is unique (422 on a taken one)."""
    if db.session.scalar(sa.select(District.id).where(District.code == code)) is not None:
        raise validation_error({"code": ["a district already has this code"]})
    district = District(code=code, name=name)
    db.session.add(district)
    db.session.flush()
    audit.record(actor, "district.create", "district", district.id, after=audit.snapshot(district))
    return district


def _check_name_free(district_id: int, name: str, squadron_id: int | None = None) -> None:
    clash = db.session.scalar(
        sa.select(Squadron.id).where(
            Squadron.district_id == district_id, Squadron.name == name, Squadron.id != squadron_id
        )
    )
    if clash is not None:
        raise validation_error({"name": ["a squadron of this district already has this name"]})


def create_squadron(actor: Actor, district: District, name: str, jurisdiction: dict) -> Squadron:
    """Add a squadron with its jurisdiction: its name is free in the district and its ground
    overlaps no other squadron's of the district (422 on ``name`` or ``jurisdiction``)."""
    _check_name_free(district.id, name)
    plan = _plan(district.id, {None: jurisdiction})
    if plan.errors:
        raise validation_error({"jurisdiction": plan.errors[None]})
    squadron = Squadron(district_id=district.id, name=name)
    _set_jurisdiction(squadron, jurisdiction, utcnow())
    db.session.add(squadron)
    db.session.flush()
    audit.record(actor, "squadron.create", "squadron", squadron.id, after=audit.snapshot(squadron))
    return squadron


def update_squadron(actor: Actor, squadron: Squadron, changes: dict) -> Squadron:
    """Rename a squadron or redraw its jurisdiction. A new drawing may not overlap another
    squadron's ground nor leave any of its active targets in no squadron's; those it no
    longer covers move to the squadron that does (422 on ``jurisdiction`` otherwise)."""
    if "name" in changes:
        _check_name_free(squadron.district_id, changes["name"], squadron.id)
    drawing = changes.get("jurisdiction")
    redrawn = drawing is not None and drawing != squadron.jurisdiction
    plan = _plan(squadron.district_id, {squadron.id: drawing} if redrawn else {})
    if plan.errors:
        raise validation_error({"jurisdiction": plan.errors[squadron.id]})
    before = audit.snapshot(squadron)
    if "name" in changes:
        squadron.name = changes["name"]
    if redrawn:
        _set_jurisdiction(squadron, drawing, utcnow())
    audit.record_update(actor, "squadron.update", "squadron", squadron, before)
    _move_targets(actor, plan.moves)
    return squadron


def redraw_jurisdictions(actor: Actor, district: District, drawings: Sequence[dict]) -> int:
    """Redraw several squadrons of ``district`` at once (``drawings``: ``{id, jurisdiction}``
    each), judged as a whole: the new drawings overlap neither each other nor the squadrons
    left as they are, and leave no active target in no squadron's ground. The targets a
    squadron no longer covers move to the one that now does. Returns how many moved.

    Errors are field-level by the drawing's place in the list (``{"squadrons": {index:
    {field: [...]}}}``), as the schema reports a broken polygon."""
    squadrons = {
        s.id: s
        for s in db.session.scalars(
            sa.select(Squadron).where(Squadron.id.in_([d["id"] for d in drawings]))
        )
    }
    errors: dict[int, dict[str, list[str]]] = {}
    index_of: dict[int, int] = {}
    for index, drawing in enumerate(drawings):
        squadron = squadrons.get(drawing["id"])
        if squadron is None:
            errors[index] = {"id": [f"no squadron {drawing['id']}"]}
        elif squadron.district_id != district.id:
            errors[index] = {"id": [f"{squadron.name} is not a squadron of {district.name}"]}
        elif drawing["id"] in index_of:
            errors[index] = {"id": [f"listed twice (also at {index_of[drawing['id']]})"]}
        else:
            index_of[drawing["id"]] = index
    if errors:
        raise validation_error({"squadrons": errors})
    changed = {
        d["id"]: d["jurisdiction"]
        for d in drawings
        if d["jurisdiction"] != squadrons[d["id"]].jurisdiction
    }
    plan = _plan(district.id, changed)
    if plan.errors:
        raise validation_error(
            {
                "squadrons": {
                    index_of[key]: {"jurisdiction": messages}
                    for key, messages in plan.errors.items()
                }
            }
        )
    now = utcnow()
    for squadron_id, drawing in changed.items():
        squadron = squadrons[squadron_id]
        before = audit.snapshot(squadron)
        _set_jurisdiction(squadron, drawing, now)
        audit.record_update(actor, "squadron.update", "squadron", squadron, before)
    return _move_targets(actor, plan.moves)


def lock_district(district_id: int) -> None:
    """Hold the district's row until the transaction ends (PostgreSQL): its jurisdictions are
    drawn one writer at a time, or two admins drawing neighbours at once would each be judged
    against the other's old drawing, and both pass.

    The change counter is taken first (:func:`sync.sequence.hold`), as every writer takes it
    before any row: a redraw reads the district's targets to decide which move, so an admin's
    move of one of them (or its deactivation) either committed before and is read, or waits
    until the redraw is committed and meets the target as the redraw left it. Read without
    it, a move committed in between was undone by the redraw."""
    hold(db.session, change_counter)
    db.session.execute(
        sa.select(District.id).where(District.id == district_id).with_for_update()
    ).all()


def district_squadrons(district: District) -> list[Squadron]:
    """The squadrons of ``district`` by id (its map: what :func:`redraw_jurisdictions` redraws)."""
    return db.session.scalars(
        sa.select(Squadron).where(Squadron.district_id == district.id).order_by(Squadron.id)
    ).all()


# -- drawing -------------------------------------------------------------------------------------


def _set_jurisdiction(squadron: Squadron, geometry: dict, now: datetime) -> None:
    squadron.jurisdiction = geometry
    squadron.min_lon, squadron.min_lat, squadron.max_lon, squadron.max_lat = bounds(geometry)
    db.session.add(JurisdictionVersion(squadron=squadron, valid_from=now, jurisdiction=geometry))


@dataclass
class _Ground:
    """A squadron's jurisdiction before and after a drawing (lon/lat; None: none drawn)."""

    key: int | None  # the squadron's id; None for one being added
    name: str
    before: BaseGeometry | None
    after: BaseGeometry | None

    @property
    def redrawn(self) -> bool:
        return self.before is not self.after


@dataclass
class _Plan:
    """What a drawing would do: why it may not (messages by squadron key), else the targets
    that follow the ground (target id, the squadron it was read in, the squadron it moves to)."""

    errors: dict[int | None, list[str]] = field(default_factory=dict)
    moves: list[tuple[object, int, int]] = field(default_factory=list)


def _geometry(geojson: dict | None) -> BaseGeometry | None:
    if not geojson:
        return None
    geometry = shape(geojson)
    shapely.prepare(geometry)
    return geometry


def _plan(district_id: int, drawings: dict[int | None, dict]) -> _Plan:
    """Judge ``drawings`` (squadron id, or None for a squadron being added, to its new
    polygon) against the district's other squadrons, as they would all stand afterwards."""
    plan = _Plan()
    if not drawings:
        return plan
    lock_district(district_id)  # and the change counter, before the targets are read
    grounds = []
    # Read after the lock. A squadron the caller loaded before it keeps what the caller read:
    # if another writer changed it meanwhile, its version check refuses the write (409).
    for squadron in db.session.scalars(
        sa.select(Squadron).where(Squadron.district_id == district_id).order_by(Squadron.id)
    ):
        before = _geometry(squadron.jurisdiction)
        after = _geometry(drawings[squadron.id]) if squadron.id in drawings else before
        grounds.append(_Ground(squadron.id, squadron.name, before, after))
    if None in drawings:
        grounds.append(_Ground(None, "", None, _geometry(drawings[None])))
    for key, message in _overlaps(grounds):
        plan.errors.setdefault(key, []).append(message)
    _follow_the_ground(grounds, plan)
    return plan


def _overlaps(grounds: list[_Ground]) -> list[tuple[int | None, str]]:
    """(squadron key, message) for each redrawn squadron overlapping another beyond a
    sliver along their border; both get the message when both were redrawn."""
    found = []
    for index, one in enumerate(grounds):
        for other in grounds[index + 1 :]:
            if not (one.redrawn or other.redrawn) or one.after is None or other.after is None:
                continue
            if not one.after.intersects(other.after):
                continue
            common = one.after.intersection(other.after)
            if common.is_empty or common.area == 0:
                continue  # a shared border or corner
            centre = common.centroid
            in_metres = LocalFrame(centre.x, centre.y).geometry(common)
            if in_metres.buffer(-OVERLAP_TOLERANCE_M / 2).is_empty:
                continue  # nowhere wider than the tolerance: the same border drawn twice
            area = _area_text(in_metres.area)
            for this, that in ((one, other), (other, one)):
                if this.redrawn:
                    found.append(
                        (this.key, f"overlaps the jurisdiction of {that.name} over {area}")
                    )
    return found


def _area_text(square_metres: float) -> str:
    if square_metres >= 10_000:
        return f"{square_metres / 1_000_000:,.2f} km²"
    return f"{square_metres:,.0f} m²"


def _follow_the_ground(grounds: list[_Ground], plan: _Plan) -> None:
    """Add to ``plan`` the active targets a redrawn squadron covered before and no longer
    does: each moves to the one squadron whose new ground covers it, or is an error when
    none does, or several (where two drawings share a border sliver).

    A target that already lay outside its squadron's ground (placed there by an admin) is
    left where it is: the drawing did not change that."""
    redrawn = {
        g.key: g for g in grounds if g.redrawn and g.key is not None and g.before is not None
    }
    if not redrawn:
        return
    rows = db.session.execute(
        sa.select(Target.id, Target.code, Target.squadron_id, Target.lon, Target.lat)
        .where(Target.squadron_id.in_(redrawn), Target.active.is_(True))
        .order_by(Target.code)
    ).all()
    by_squadron: dict[int, list] = {}
    for row in rows:
        by_squadron.setdefault(row.squadron_id, []).append(row)
    for key, ground in redrawn.items():
        own = by_squadron.get(key)
        if not own:
            continue
        lons = np.array([r.lon for r in own])
        lats = np.array([r.lat for r in own])
        leaving = shapely.intersects_xy(ground.before, lons, lats)
        if ground.after is not None:
            leaving &= ~shapely.intersects_xy(ground.after, lons, lats)
        if not leaving.any():
            continue
        gone = [r for r, out in zip(own, leaving, strict=True) if out]
        lons, lats = lons[leaving], lats[leaving]
        takers = [g for g in grounds if g.key not in (key, None) and g.after is not None]
        covering = [shapely.intersects_xy(g.after, lons, lats) for g in takers]
        nowhere, several = [], []
        for position, row in enumerate(gone):
            found = [g.key for g, hits in zip(takers, covering, strict=True) if hits[position]]
            if len(found) == 1:
                plan.moves.append((row.id, key, found[0]))
            else:
                (several if found else nowhere).append(row.code)
        if nowhere:
            plan.errors.setdefault(key, []).append(
                f"would leave {_targets_text(nowhere)} in no squadron's jurisdiction;"
                " draw them into one (or move them first)"
            )
        if several:
            plan.errors.setdefault(key, []).append(
                f"would leave {_targets_text(several)} where several squadrons' jurisdictions"
                " overlap; draw them into one"
            )


def _targets_text(codes: list[str]) -> str:
    named = ", ".join(codes[:NAMED_TARGETS])
    more = f" and {len(codes) - NAMED_TARGETS} more" if len(codes) > NAMED_TARGETS else ""
    noun = "active target" if len(codes) == 1 else "active targets"
    return f"{len(codes)} {noun} ({named}{more})"


def _move_targets(actor: Actor, moves: list[tuple[object, int, int]]) -> int:
    """Move each target as an admin's edit does: audited, its devices told, its open
    conflict-log entries, complaints, tasks, supervision orders and cases along with it.
    Returns how many moved.

    A target no longer where the plan read it (another squadron, or deactivated) is left as
    it is: someone else decided about it since, and the redraw, which only moves what the
    ground it took away held, must not undo that. (With the change counter held from the
    plan on, nothing commits in between; this keeps the rule whatever the caller held.)"""
    # Imported here: the targets' operations import much of the app, which imports this.
    from fieldapp.targets.operations import update_target

    if not moves:
        return 0
    moved = 0
    planned = {target_id: (source, destination) for target_id, source, destination in moves}
    for target in db.session.scalars(
        sa.select(Target)
        .where(Target.id.in_(planned))
        .order_by(Target.code)
        .execution_options(populate_existing=True)
    ):
        source, destination = planned[target.id]
        if target.squadron_id != source or not target.active:
            continue
        update_target(actor, target, {"squadron_id": destination})
        moved += 1
    return moved
