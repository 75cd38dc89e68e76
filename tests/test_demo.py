"""The demo district: the accounts API.md promises, sound geography, a coherent history."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from itertools import combinations
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from shapely.geometry import Point, box, shape
from shapely.ops import unary_union

from fieldapp.audit.models import AuditEntry
from fieldapp.auth.models import User
from fieldapp.complaints.models import Complaint
from fieldapp.db import db
from fieldapp.demo.builder import (
    DEFAULT_SEED,
    EXTENT,
    SCALES,
    DemoBuilder,
    jurisdiction_polygons,
)
from fieldapp.draws.models import Draw
from fieldapp.draws.operations import verify_draw
from fieldapp.inspections.models import Case, Inspection
from fieldapp.org.models import Squadron
from fieldapp.risk.models import RiskLevelChange, TargetRisk
from fieldapp.supervision.models import CaseReview, SupervisionOrder
from fieldapp.targets.models import Target
from fieldapp.tasks.models import Task
from sync.models import RecordVersion

AS_OF = date(2026, 6, 30)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def demo(app, ctx):
    builder = DemoBuilder(SCALES["small"], seed=7, as_of=AS_OF)
    summary = builder.build(app.extensions["fieldapp.auth"].password_hasher)
    db.session.commit()
    return summary


def test_demo_accounts_are_those_of_api_md(demo):
    users = {u.username: u for u in db.session.scalars(sa.select(User))}
    squadron_names = {s.id: s.name for s in db.session.scalars(sa.select(Squadron))}
    expected = {
        "admin": ("admin", None),
        "supervisor": ("supervisor", None),
        "leader1": ("leader", "吴淞中队"),
        "officer1": ("officer", "吴淞中队"),
        "officer2": ("officer", "吴淞中队"),
        "leader2": ("leader", "张庙中队"),
        "officer3": ("officer", "张庙中队"),
    }
    for username, (role, squadron) in expected.items():
        user = users[username]
        assert user.role.value == role
        assert squadron_names.get(user.squadron_id) == squadron
    assert squadron_names[1] == "吴淞中队" and squadron_names[2] == "张庙中队"
    assert len(squadron_names) == 12


def test_demo_accounts_sign_in_with_the_demo_password(app, demo):
    client = app.test_client()
    for username in (
        "admin",
        "supervisor",
        "leader1",
        "officer1",
        "officer2",
        "leader2",
        "officer3",
    ):
        response = client.post(
            "/api/v1/auth/token",
            json={
                "username": username,
                "password": "fieldapp-demo",
                "device_id": f"pad-{username}",
            },
        )
        assert response.status_code == 201, username


def test_jurisdictions_tile_the_district_without_gaps_or_overlaps(demo):
    polygons = [shape(s.jurisdiction) for s in db.session.scalars(sa.select(Squadron))]
    assert all(p.is_valid for p in polygons)
    for a, b in combinations(polygons, 2):
        assert a.intersection(b).area < 1e-9
    assert unary_union(polygons).symmetric_difference(box(*EXTENT)).area < 1e-9


def test_every_target_lies_in_its_squadrons_jurisdiction(demo):
    jurisdictions = {s.id: shape(s.jurisdiction) for s in db.session.scalars(sa.select(Squadron))}
    targets = db.session.scalars(sa.select(Target)).all()
    assert len(targets) == 180 + 24
    for target in targets:
        assert jurisdictions[target.squadron_id].covers(Point(target.lon, target.lat)), target.name
        if target.kind.value == "site":
            assert jurisdictions[target.squadron_id].covers(shape(target.boundary))


def test_history_is_coherent(demo):
    inspections = db.session.scalars(sa.select(Inspection)).all()
    assert len(inspections) > 300
    by_id = {i.id: i for i in inspections}
    for inspection in inspections:
        failed = [code for code, a in inspection.answers.items() if a["result"] == "fail"]
        assert (inspection.outcome.value == "compliant") == (not failed)
        if inspection.outcome.value == "rectification_ordered":
            assert inspection.rectification_deadline is not None
        if inspection.follow_up_of is not None:
            ordered = by_id[inspection.follow_up_of]
            assert ordered.target_id == inspection.target_id
            assert ordered.outcome.value == "rectification_ordered"
            assert inspection.started_at > ordered.started_at
        assert inspection.squadron_id == inspection.target.squadron_id
        assert all(o.squadron_id == inspection.squadron_id for o in inspection.officers)
    cases = db.session.scalars(sa.select(Case)).all()
    assert cases and all(by_id[c.inspection_id].outcome.value == "case_opened" for c in cases)
    # 立案 is the leader's act: only approved inspections have opened their case.
    assert all(by_id[c.inspection_id].review_status.value == "approved" for c in cases)
    checked = db.session.scalars(sa.select(Complaint).where(Complaint.closed_at.is_not(None))).all()
    assert any(c.substantiated for c in checked) and any(not c.substantiated for c in checked)
    open_tasks = db.session.scalars(sa.select(Task).where(Task.status == "open")).all()
    assert open_tasks and all(t.assignees for t in open_tasks)


def test_demo_draws_verify_and_their_pairs_inspect_what_was_drawn(demo):
    draws = db.session.scalars(sa.select(Draw)).all()
    assert draws and all(
        verify_draw(d) == {"roster_hash_matches": True, "targets_match": True} for d in draws
    )
    drawn = db.session.scalars(sa.select(Inspection).where(Inspection.draw_id.is_not(None))).all()
    assert drawn
    pairs = {
        (str(d.id), item["target_id"]): item["officer_ids"] for d in draws for item in d.targets
    }
    for inspection in drawn:
        assert inspection.origin.value == "random"
        pair = pairs[(str(inspection.draw_id), str(inspection.target_id))]
        assert sorted(str(o) for o in inspection.officer_ids) == pair
        task = db.session.get(Task, inspection.task_id)
        assert task.draw_id == inspection.draw_id
        # An approved inspection closes its task (任务闭环); others leave it open.
        approved = inspection.review_status.value == "approved"
        assert (task.status.value == "done") == approved
        assert (task.closed_by_inspection_id == inspection.id) == approved


def test_same_seed_same_district(app, ctx):
    def codes_after_build(seed: int) -> list[str]:
        savepoint = db.session.begin_nested()
        DemoBuilder(SCALES["small"], seed=seed, as_of=AS_OF).build(
            app.extensions["fieldapp.auth"].password_hasher
        )
        codes = db.session.scalars(sa.select(Target.code).order_by(Target.code)).all()
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Inspection))
        savepoint.rollback()
        return [*codes, count]

    assert codes_after_build(11) == codes_after_build(11)
    assert codes_after_build(11) != codes_after_build(12)


def test_jurisdiction_grid_is_deterministic():
    first = jurisdiction_polygons(random.Random(3))
    again = jurisdiction_polygons(random.Random(3))
    assert all(first[k].equals(again[k]) for k in first)


def test_every_demo_inspection_has_its_current_version_in_the_history(demo):
    """Devices that edit a demo record offline merge against the version they pulled."""
    from schemas.inspections import InspectionSchema
    from sync.models import RecordVersion

    snapshots = {
        (v.record_id, v.version): v.data
        for v in db.session.scalars(
            sa.select(RecordVersion).where(RecordVersion.entity == "inspection")
        )
    }
    inspections = db.session.scalars(sa.select(Inspection)).all()
    assert len(snapshots) == sum(i.version for i in inspections)
    for inspection in inspections:
        assert snapshots[inspection.id, inspection.version] == InspectionSchema().dump(inspection)


def _sign_in(app, username: str):
    client = app.test_client()
    token = client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": "fieldapp-demo", "device_id": f"desk-{username}"},
    ).get_json()["token"]
    return client, {"Authorization": f"Bearer {token}"}


def test_a_demo_inspections_history_is_the_officers_record_then_the_leaders_review(app, demo):
    """``GET /inspections/<id>/history`` reads as the system writes it: the officer who recorded
    the inspection created it from their pad, every field; the leader's review is a version of
    its own, from the leader's device, changing the review alone."""
    reviewed = db.session.scalars(
        sa.select(Inspection)
        .where(Inspection.review_status.in_(["approved", "returned"]))
        .order_by(Inspection.id)
        .limit(20)
    ).all()
    assert reviewed
    client, headers = _sign_in(app, "supervisor")
    for inspection in reviewed:
        history = client.get(
            f"/api/v1/inspections/{inspection.id}/history", headers=headers
        ).get_json()
        created, review = history
        assert created["version"] == 1 and review["version"] == 2
        assert created["user_id"] == str(inspection.created_by_id)
        assert created["device_id"] == inspection.device_id
        assert created["at"] == inspection.received_at.isoformat()
        assert {"target_id", "answers", "outcome", "officer_ids"} <= set(created["changes"])
        assert created["changes"]["review"]["to"]["status"] == "pending"
        assert review["user_id"] == str(inspection.reviewed_by_id)
        assert review["device_id"] not in (None, inspection.device_id)
        assert review["device_id"].startswith("desk-")
        assert set(review["changes"]) == {"review"}
        assert review["changes"]["review"]["to"]["status"] == inspection.review_status.value


def test_demo_times_follow_the_workflow(app, demo):
    """Received, submitted (the first push submits: the same moment), then reviewed; a case is
    opened by the approval; a complaint is checked after it came in and decided by the check's
    approval; a follow-up goes after the task that sent it."""
    client, headers = _sign_in(app, "supervisor")
    wire, page = [], 1
    while True:
        body = client.get(
            f"/api/v1/inspections?per_page=200&page={page}", headers=headers
        ).get_json()
        wire += body["items"]
        if not body["has_more"]:
            break
        page += 1
    assert len(wire) == db.session.scalar(sa.select(sa.func.count()).select_from(Inspection))
    for item in wire:
        assert item["received_at"] == item["submitted_at"], item["id"]
        if item["review"]["reviewed_at"] is not None:
            reviewed = datetime.fromisoformat(item["review"]["reviewed_at"])
            assert reviewed > datetime.fromisoformat(item["submitted_at"]), item["id"]
    end = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC)
    for case, reviewed_at in db.session.execute(
        sa.select(Case, Inspection.reviewed_at).join(
            Inspection, Inspection.id == Case.inspection_id
        )
    ):
        assert case.opened_at == reviewed_at
        assert case.closed_at is None or case.opened_at < case.closed_at <= end
    for complaint, started_at in db.session.execute(
        sa.select(Complaint, Inspection.started_at).join(
            Inspection, Inspection.id == Complaint.inspection_id
        )
    ):
        assert complaint.received_at < started_at
    for task, started_at in db.session.execute(
        sa.select(Task, Inspection.started_at).join(Inspection, Inspection.task_id == Task.id)
    ):
        assert task.created_at < started_at
        assert task.closed_at is None or task.closed_at >= task.created_at


def test_demo_officers_inspect_in_shanghai_working_hours(demo):
    """A day's inspections fall in the officers' working day in Shanghai (08:00-18:00), so the
    schedule, the monthly report and the checks count them on the day they were made. A few
    go later (a check sent by a complaint that came in late in the afternoon) or earlier (the
    last hours before the demo's date)."""
    starts = db.session.scalars(sa.select(Inspection.started_at)).all()
    hours = [start.astimezone(SHANGHAI).hour for start in starts]
    working = sum(8 <= hour < 18 for hour in hours)
    assert working / len(hours) > 0.95, Counter(hours)


def test_demo_complaints_are_decided_as_the_system_decides_them(demo):
    """A checked complaint is closed by its check's approval, as ``decide_complaint`` closes
    it: by the leader who approved, with a note, naming the inspection; each carries its own
    12345 ticket number."""
    complaints = db.session.scalars(sa.select(Complaint)).all()
    assert len({c.reference for c in complaints}) == len(complaints)
    assert all(c.reference and c.reference.isdigit() for c in complaints)
    closed = [c for c in complaints if c.closed_at is not None]
    assert closed
    for complaint in closed:
        check = db.session.get(Inspection, complaint.inspection_id)
        assert check.target_id == complaint.target_id
        assert check.origin.value == "complaint"
        assert check.review_status.value == "approved"
        assert complaint.decided_by_id == check.reviewed_by_id
        assert complaint.closed_at == check.reviewed_at
        assert complaint.substantiated == (check.outcome.value != "compliant")
        assert complaint.decision_note


def test_demo_follow_ups_go_on_the_task_their_leader_sent(demo):
    """A 复查 of the demo is dispatched: the leader approving a rectification order sends a
    task, the follow-up carries it (origin ``task``), and the follow-up's approval closes it."""
    follow_ups = db.session.scalars(
        sa.select(Inspection).where(Inspection.follow_up_of.is_not(None))
    ).all()
    assert follow_ups
    for inspection in follow_ups:
        assert inspection.origin.value == "task"
        task = db.session.get(Task, inspection.task_id)
        assert task.target_id == inspection.target_id
        order = db.session.get(Inspection, inspection.follow_up_of)
        assert order.review_status.value == "approved"
        assert task.created_at == order.reviewed_at
        assert task.created_by_id == order.reviewed_by_id
        assert sorted(str(u.id) for u in task.assignees) == sorted(inspection.officer_ids)
        approved = inspection.review_status.value == "approved"
        assert (task.status.value == "done") == approved
        assert (task.closed_by_inspection_id == inspection.id) == approved
    # Every inspection that names a task names one that exists, with the same target.
    tasked = db.session.scalars(sa.select(Inspection).where(Inspection.task_id.is_not(None)))
    assert all(db.session.get(Task, i.task_id).target_id == i.target_id for i in tasked)
    assert not db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Inspection)
        .where(Inspection.origin == "task", Inspection.task_id.is_(None))
    )


def test_demo_draw_tasks_are_dated_by_their_draw_and_their_closing_is_audited(demo):
    """A draw made in the demo's past gives tasks of that day (not of the build), each closed
    by its approval with a ``task.close`` entry, as approvals close tasks."""
    draws = {d.id: d for d in db.session.scalars(sa.select(Draw))}
    tasks = db.session.scalars(sa.select(Task).where(Task.draw_id.is_not(None))).all()
    assert tasks
    for task in tasks:
        assert task.created_at == draws[task.draw_id].created_at
        assert task.closed_at is None or task.closed_at > task.created_at
    done = [t for t in tasks if t.status.value == "done"]
    assert done
    closes = {
        entry.record_id: entry
        for entry in db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "task.close")
        )
    }
    for task in done:
        assert closes[str(task.id)].after["closed_by_inspection_id"] == str(
            task.closed_by_inspection_id
        )
        assert task.updated_at == task.closed_at


def test_the_public_page_shows_the_draws_results_early_in_the_month(app, ctx):
    """The squadrons drew a full task period (and its reviews) before the demo's date, so a
    demo built on the 5th of a month has drawn inspections approved and published (一公开)."""
    DemoBuilder(SCALES["small"], seed=7, as_of=date(2026, 6, 5)).build(
        app.extensions["fieldapp.auth"].password_hasher
    )
    db.session.commit()
    [drawn_on] = {d.created_at for d in db.session.scalars(sa.select(Draw))}
    assert drawn_on == datetime(2026, 5, 1, tzinfo=UTC)
    drawn = db.session.scalars(sa.select(Inspection).where(Inspection.draw_id.is_not(None))).all()
    assert drawn and all(i.review_status.value != "pending" for i in drawn)
    response = app.test_client().get("/api/v1/public/inspections?from=2026-01-01&per_page=100")
    assert response.status_code == 200
    published = response.get_json()["items"]
    assert len(published) == sum(i.review_status.value == "approved" for i in drawn) > 0


def test_same_seed_and_date_same_rows(app, ctx):
    """Nothing of the build's own clock gets into the district: two builds with one seed and
    date give the same tasks, complaints, cases and version history, row for row."""
    tables = {
        Task: [Task.id],
        Complaint: [Complaint.id],
        Case: [Case.id],
        # Without its serial id, which a database's sequence does not hand out twice.
        RecordVersion: [RecordVersion.record_id, RecordVersion.version],
    }

    def rows_after_build() -> dict:
        savepoint = db.session.begin_nested()
        DemoBuilder(SCALES["small"], seed=5, as_of=AS_OF).build(
            app.extensions["fieldapp.auth"].password_hasher
        )
        rows = {
            model.__name__: db.session.execute(
                sa.select(
                    *(c for c in model.__table__.columns if c is not RecordVersion.__table__.c.id)
                ).order_by(*order)
            ).all()
            for model, order in tables.items()
        }
        savepoint.rollback()
        return rows

    first, again = rows_after_build(), rows_after_build()
    for table, rows in first.items():
        assert [r for r in again[table] if r not in rows] == [], table


def test_every_demo_task_has_its_creation_and_closing_audited(demo):
    """DESIGN: every state change writes its audit entry. ``GET /audit?entity=task&record_id=``
    of any demo task starts with its creation, and a done task's goes on with its closing."""
    entries: dict[str, list[str]] = {}
    for record_id, action in db.session.execute(
        sa.select(AuditEntry.record_id, AuditEntry.action)
        .where(AuditEntry.entity == "task")
        .order_by(AuditEntry.seq)
    ):
        entries.setdefault(record_id, []).append(action)
    tasks = db.session.scalars(sa.select(Task)).all()
    assert {t.status.value for t in tasks} == {"open", "done"}
    for task in tasks:
        expected = ["task.create"] + (["task.close"] if task.status.value == "done" else [])
        assert entries[str(task.id)] == expected, task.origin


def test_the_build_reports_its_progress_through_the_history(app, ctx):
    """``fieldapp demo`` is not silent for the history, the longest phase of a district: it
    reports every tenth of the targets, and names the draw."""
    messages: list[str] = []
    DemoBuilder(SCALES["small"], seed=7, as_of=AS_OF, progress=messages.append).build(
        app.extensions["fieldapp.auth"].password_hasher
    )
    history = [m for m in messages if "% of targets" in m]
    assert [m.split("%")[0].strip() for m in history] == [str(n) for n in range(10, 101, 10)]
    assert messages.index(history[-1]) < messages.index(
        next(m for m in messages if m.startswith("assessing risk"))
    )
    assert "drawing 双随机 as of 2026-05-01" in messages


def test_demo_level_history_starts_when_the_target_was_created(demo):
    """The system first assesses a target when it is created (``create_target`` ->
    ``refresh_target``): no level change, nor a level held since, dates from before it."""
    created = dict(db.session.execute(sa.select(Target.id, Target.created_at)).all())
    early = [
        (str(c.target_id), c.at.isoformat(), created[c.target_id].isoformat())
        for c in db.session.scalars(sa.select(RiskLevelChange))
        if c.at < created[c.target_id]
    ]
    assert early == [], "(target, level change at, target created at)"
    held_early = [
        str(target_id)
        for target_id, since in db.session.execute(
            sa.select(TargetRisk.target_id, TargetRisk.level_since)
        )
        if since is not None and since < created[target_id]
    ]
    assert held_early == [], "levels held since before their target existed"


def test_demo_level_changes_cite_only_inspections_approved_by_then(demo):
    """Risk counts approved inspections only, and an approval re-scores its target when it is
    given: no level change cites an inspection its leader approved after the change."""
    reviewed = dict(db.session.execute(sa.select(Inspection.id, Inspection.reviewed_at)).all())
    cited_early = []
    for change in db.session.scalars(sa.select(RiskLevelChange)):
        for factor in change.factors:
            source = factor.get("source") or {}
            if source.get("entity") != "inspection":
                continue
            at = reviewed[uuid.UUID(source["id"])]
            if at is None or at > change.at:
                cited_early.append((str(change.target_id), change.at.isoformat(), factor["reason"]))
    assert cited_early == []


def test_demo_supervision_comes_after_the_inspection_it_is_about(demo):
    """``issue_order`` and ``record_case_review`` need the inspection to exist: no order nor
    case review of the demo is dated before the inspection it is about was received."""
    received = dict(db.session.execute(sa.select(Inspection.id, Inspection.received_at)).all())
    early_orders = [
        (str(o.inspection_id), o.issued_at.isoformat(), received[o.inspection_id].isoformat())
        for o in db.session.scalars(
            sa.select(SupervisionOrder).where(SupervisionOrder.inspection_id.is_not(None))
        )
        if o.issued_at < received[o.inspection_id]
    ]
    early_reviews = [
        (str(r.inspection_id), r.created_at.isoformat(), received[r.inspection_id].isoformat())
        for r in db.session.scalars(sa.select(CaseReview))
        if r.created_at < received[r.inspection_id]
    ]
    assert early_orders == [], "orders issued before their inspection was received"
    assert early_reviews == [], "case reviews recorded before their inspection was received"


def test_every_demo_squadron_has_reviews_and_orders_open_answered_and_closed(demo):
    """README: "The demo has a few weeks of supervision in every squadron: case reviews, and
    orders open (one overdue), answered and closed" - at small scale too, where some squadrons
    ordered no rectification in the last weeks."""
    by_squadron: dict[int, set[str]] = {}
    for squadron_id, status in db.session.execute(
        sa.select(SupervisionOrder.squadron_id, SupervisionOrder.status)
    ):
        by_squadron.setdefault(squadron_id, set()).add(status.value)
    missing = {
        sid: sorted({"open", "answered", "closed"} - by_squadron.get(sid, set()))
        for sid in range(1, 13)
        if {"open", "answered", "closed"} - by_squadron.get(sid, set())
    }
    assert missing == {}, "squadrons without orders in these states"
    assert set(db.session.scalars(sa.select(CaseReview.squadron_id))) == set(range(1, 13))
    overdue = db.session.scalars(
        sa.select(SupervisionOrder).where(SupervisionOrder.status == "open")
    ).all()
    assert all(o.deadline < datetime(2026, 6, 30, tzinfo=UTC) for o in overdue)


def test_the_cli_small_demo_gives_leader1_an_order_to_answer(app, ctx):
    """``fieldapp demo --scale small`` (default seed): leader1 of 吴淞中队, README's account
    for answering an order, reads the squadron's orders (吴淞 ordered no rectification lately)."""
    DemoBuilder(SCALES["small"], seed=DEFAULT_SEED, as_of=date(2026, 12, 5)).build(
        app.extensions["fieldapp.auth"].password_hasher
    )
    db.session.commit()
    client, headers = _sign_in(app, "leader1")
    body = client.get("/api/v1/supervision/orders", headers=headers).get_json()
    assert {o["status"] for o in body["items"]} == {"open", "answered", "closed"}
