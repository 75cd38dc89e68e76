"""Targets: adding and editing them, searching, and assembling a target's file."""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
import sqlalchemy.orm
from stdnum.cn import uscc as uscc_number

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.complaints.models import Complaint
from fieldapp.complaints.operations import open_complaints_follow
from fieldapp.db import db, utcnow
from fieldapp.errors import validation_error
from fieldapp.geo import degrees_box, metres_outside, squared_distance_expr
from fieldapp.inspections.models import Case, Inspection
from fieldapp.org.models import Squadron
from fieldapp.risk import operations as risk
from fieldapp.risk.models import TargetRisk
from fieldapp.risk.scoring import RiskLevel
from fieldapp.supervision.operations import open_orders_follow
from fieldapp.targets.models import Target, TargetKind
from fieldapp.tasks.operations import cancel_for_closed_target, open_tasks_follow
from sync.versions import (
    open_conflicts_follow,
    record_left_scope,
    record_version,
    stamp_server_write,
)

if TYPE_CHECKING:
    from fieldapp.auth.policy import Policy

#: Target fields the risk score depends on (风险+信用), and the squadron its record is pulled by.
RISK_FIELDS = frozenset(
    ("credit_class", "business_type", "scale", "phase", "sensitive_surroundings", "squadron_id")
)

CODE_PREFIX = {TargetKind.shop: "S", TargetKind.site: "C"}


def code_for(target_id: uuid.UUID, kind: TargetKind) -> str:
    """The 一店一码 code: a kind letter and 10 base-32 characters derived from the id.

    Derived, not counted, so a device that reports a new shop offline and the server agree on
    it, and it never changes. Hashed first, so ids that share a prefix (time-ordered UUIDs from
    some device platforms) still get unrelated codes. RFC 4648 base-32 has no 0, 1, 8 or 9 to
    misread on a printed QR label.
    """
    digest = hashlib.sha256(target_id.bytes).digest()
    return CODE_PREFIX[kind] + base64.b32encode(digest[:10]).decode()[:10]


#: How far outside its boundary a site's point (its main gate) may lie: the gate stands at the
#: hoarding or across the road from it, not in another district.
SITE_POINT_MAX_OUTSIDE_M = 500.0


def _site_location_problem(lon: float, lat: float, boundary: dict | None) -> str | None:
    """Why a site's point does not belong to its boundary, or None: the one rule for every way
    a site is written (the API, the import, device corrections, conflict resolutions).

    ``near``, ``bbox`` and the location checks of inspections all go by the point, so a point
    far from the site would find it where it is not and flag inspections done at the gate.
    """
    if boundary is None:
        return None
    outside = metres_outside(lon, lat, boundary)
    if outside <= SITE_POINT_MAX_OUTSIDE_M:
        return None
    return (
        f"{outside:,.0f} m outside the site's boundary: a site's location lies inside its"
        f" boundary or within {SITE_POINT_MAX_OUTSIDE_M:,.0f} m of it"
    )


def site_location_errors(data: dict, target: Target | None = None) -> dict[str, list[str]]:
    """Field errors (none: ``{}``) of a site's point against its boundary, for a create
    (``target`` None) or an edit of ``target``, ``data`` as the target schemas load it.

    An edit is checked when it moves the point or redraws the boundary, against the stored
    other: moving the gate alone, or the boundary alone, must still leave the two together.
    The error is on ``location`` when the point was sent, else on ``boundary``.
    """
    kind = target.kind if target is not None else data.get("kind")
    if kind != TargetKind.site or (
        target is not None and not data.keys() & {"location", "boundary"}
    ):
        return {}
    point = data.get("location") or {"lon": target.lon, "lat": target.lat}
    boundary = data["boundary"] if "boundary" in data else getattr(target, "boundary", None)
    problem = _site_location_problem(point["lon"], point["lat"], boundary)
    if problem is None:
        return {}
    return {"location" if "location" in data else "boundary": [problem]}


def _location_fields(changes: dict) -> dict:
    location = changes.pop("location", None)
    if location is not None:
        changes["lon"], changes["lat"] = location["lon"], location["lat"]
    return changes


def _check_squadron(squadron_id: int) -> Squadron:
    squadron = db.session.get(Squadron, squadron_id)
    if squadron is None:
        raise validation_error({"squadron_id": [f"no squadron {squadron_id}"]})
    return squadron


def create_target(
    actor: Actor, data: dict, target_id: uuid.UUID | None = None, *, assess: bool = True
) -> Target:
    """Add a shop or site; the caller has checked the actor may add to ``squadron_id``.

    ``assess=False`` leaves its risk assessment to the caller (a bulk import assesses all its
    targets at once)."""
    errors = site_location_errors(data)
    if errors:
        raise validation_error(errors)
    _check_squadron(data["squadron_id"])
    data = _location_fields(dict(data))
    target_id = target_id or uuid.uuid4()
    target = Target(id=target_id, code=code_for(target_id, data["kind"]), **data)
    now = utcnow()
    stamp_server_write(target, list(Target.DEVICE_FIELDS), now)
    db.session.add(target)
    db.session.flush()
    _record_version(actor, target, list(Target.DEVICE_FIELDS), now)
    audit.record(actor, "target.create", "target", target.id, after=audit.snapshot(target))
    if assess:
        risk.refresh_target(actor, target, now)
    return target


def _record_version(actor: Actor, target: Target, changed: list[str], at) -> None:
    record_version(
        "target",
        target,
        target.version_fields(),
        changed,
        user_id=actor.user_id,
        device_id=actor.device_id,
        at=at,
    )


#: The fields only the other kind of target has, by kind.
OTHER_KIND_FIELDS = {
    TargetKind.shop: ("permit_no", "scale", "phase", "boundary"),
    TargetKind.site: ("business_type", "uscc"),
}


def edit_errors(target: Target, changes: dict) -> dict[str, list[str]]:
    """Field errors (none: ``{}``) of an edit of ``target`` (``changes`` as the target schemas
    load them): what :func:`update_target` refuses, for a caller that checks every edit before
    writing any (the import reports them with their lines)."""
    errors = site_location_errors(changes, target)
    errors |= {
        name: [f"not a field of a {target.kind.value}"]
        for name in OTHER_KIND_FIELDS[target.kind]
        if name in changes
    }
    for required in ("business_type", "scale", "phase"):
        if required in changes and changes[required] is None:
            errors[required] = ["may not be null"]
    return errors


def update_target(actor: Actor, target: Target, changes: dict, *, assess: bool = True) -> Target:
    """Change the given fields of a target (its kind and code never change); re-assess its
    risk when a field the score depends on changed (unless ``assess=False``). Moving it takes
    its open conflicts, complaints, tasks, supervision orders and cases along; deactivating
    it cancels its open tasks."""
    errors = edit_errors(target, changes)
    if errors:
        raise validation_error(errors)
    changes = _location_fields(dict(changes))
    if "squadron_id" in changes:
        _check_squadron(changes["squadron_id"])
    before = audit.snapshot(target)
    fields_before = target.device_fields()
    now = utcnow()
    if changes.get("squadron_id", target.squadron_id) != target.squadron_id:
        # Before the target changes: the removal must come earlier in the change order than
        # the target's new version, or a reader who sees both would drop what it still sees.
        record_left_scope("target", target, target.squadron_id, actor.user_id, now)
        risk.left_scope(actor, target, target.squadron_id, now)
        open_conflicts_follow(actor, "target", target.id, changes["squadron_id"])
        open_complaints_follow(actor, target, changes["squadron_id"])
        open_tasks_follow(actor, target, changes["squadron_id"], now)
        open_orders_follow(actor, target, changes["squadron_id"], now)
        # Imported here: the inspections' operations reach the sync engine, which imports this.
        from fieldapp.inspections.operations import open_cases_follow

        open_cases_follow(actor, target, changes["squadron_id"])
    deactivating = target.active and changes.get("active") is False
    point_before = (target.lon, target.lat)
    for name, value in changes.items():
        setattr(target, name, value)
    if (target.lon, target.lat) != point_before:
        # Moved here (the API and the import take WGS-84): no longer the point a device sent
        # in GCJ-02 or BD-09, whose original would now mislead.
        target.location_original = None
    changed = [k for k, v in target.device_fields().items() if fields_before[k] != v]
    if changed:
        stamp_server_write(target, changed, now)
    entry = audit.record_update(actor, "target.update", "target", target, before)
    if entry is not None:
        _record_version(actor, target, changed, now)
        if assess and entry["after"].keys() & RISK_FIELDS:
            risk.refresh_target(actor, target, now)
    if deactivating:
        # After the target's own write (its flush): the tasks' cancellations flush too, and
        # would otherwise give the target a version of its own between them.
        cancel_for_closed_target(actor, target, now)
    return target


@dataclass
class TargetFilters:
    kind: TargetKind | None = None
    squadron_id: int | None = None
    level: RiskLevel | None = None
    q: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    near: tuple[float, float, float] | None = None
    active: bool | None = True
    extra: list = field(default_factory=list)


def search_targets(scoped: sa.Select, filters: TargetFilters) -> sa.Select:
    """Apply list filters to an already scoped ``SELECT Target``; nearest first with ``near``."""
    query = scoped
    if filters.kind is not None:
        query = query.where(Target.kind == filters.kind)
    if filters.squadron_id is not None:
        query = query.where(Target.squadron_id == filters.squadron_id)
    if filters.level is not None:
        query = query.where(
            Target.id.in_(sa.select(TargetRisk.target_id).where(TargetRisk.level == filters.level))
        )
    if filters.active is not None:
        query = query.where(Target.active == filters.active)
    if filters.q:
        pattern = (
            "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        query = query.where(
            sa.or_(
                Target.name.ilike(pattern, escape="\\"),
                Target.address.ilike(pattern, escape="\\"),
                Target.code == filters.q.upper(),
                # As a uscc is stored: as printed on a licence, spaces and hyphens are dropped.
                Target.uscc == uscc_number.compact(filters.q),
                # A site's registration number (施工许可证号), as a shop's is its uscc.
                Target.permit_no == filters.q,
            )
        )
    if filters.bbox is not None:
        minlon, minlat, maxlon, maxlat = filters.bbox
        query = query.where(Target.lon.between(minlon, maxlon), Target.lat.between(minlat, maxlat))
    if filters.near is not None:
        lon, lat, metres = filters.near
        minlon, minlat, maxlon, maxlat = degrees_box(lon, lat, metres)
        distance2 = squared_distance_expr(Target.lon, Target.lat, lon, lat)
        query = (
            query.where(Target.lon.between(minlon, maxlon), Target.lat.between(minlat, maxlat))
            .where(distance2 <= metres * metres)
            .order_by(distance2, Target.id)
        )
    else:
        query = query.order_by(Target.code)
    return query


@dataclass
class TargetFile:
    """一店一档: everything a leader wants to see about one target."""

    target: Target
    recent_inspections: list[dict]
    open_rectifications: list[dict]
    complaints: list[Complaint]
    cases: list[Case]
    risk: dict | None

    def __getattr__(self, name):
        return getattr(self.target, name)


def _brief(inspection: Inspection) -> dict:
    return {
        "id": inspection.id,
        "started_at": inspection.started_at,
        "origin": inspection.origin.value,
        "outcome": inspection.outcome.value if inspection.outcome else None,
        "status": inspection.status.value,
        "review_status": inspection.review_status.value,
        "rectification_deadline": inspection.rectification_deadline,
        "failed_items": sorted(
            code
            for code, answer in (inspection.answers or {}).items()
            if isinstance(answer, dict) and answer.get("result") == "fail"
        ),
    }


def target_file(target: Target, policy: Policy, *, recent: int = 10) -> TargetFile:
    """The target with its latest inspections, open rectifications, complaints and cases, of
    those ``policy`` lets its actor read: an officer sent to another squadron's shop by a task
    reads the shop, not that squadron's complaints or inspections (each answers them 404)."""
    inspections = db.session.scalars(
        policy.scoped(Inspection)
        .where(Inspection.target_id == target.id)
        .order_by(Inspection.started_at.desc())
        .limit(recent)
    ).all()
    # Imported here: the inspections' operations reach the sync engine, which imports this.
    from fieldapp.inspections.operations import open_rectifications as rectifications

    open_rectifications = db.session.scalars(
        rectifications(policy.scoped(Inspection), target_id=target.id)
    ).all()
    complaints = db.session.scalars(
        policy.scoped(Complaint)
        .where(Complaint.target_id == target.id)
        .order_by(Complaint.received_at.desc())
        .limit(recent)
    ).all()
    cases = db.session.scalars(
        policy.scoped(Case)
        .where(Case.target_id == target.id)
        .order_by(Case.opened_at.desc())
        .limit(recent)
    ).all()
    return TargetFile(
        target=target,
        recent_inspections=[_brief(i) for i in inspections],
        open_rectifications=[_brief(i) for i in open_rectifications],
        complaints=list(complaints),
        cases=list(cases),
        risk=risk.risk_file(target, utcnow(), with_history=False),  # the file shows no history
    )
