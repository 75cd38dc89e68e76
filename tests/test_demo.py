"""The demo district: the accounts API.md promises, sound geography, a coherent history."""

from __future__ import annotations

import random
from datetime import date
from itertools import combinations

import pytest
import sqlalchemy as sa
from shapely.geometry import Point, box, shape
from shapely.ops import unary_union

from fieldapp.auth.models import User
from fieldapp.complaints.models import Complaint
from fieldapp.db import db
from fieldapp.demo.builder import EXTENT, SCALES, DemoBuilder, jurisdiction_polygons
from fieldapp.draws.models import Draw
from fieldapp.draws.operations import verify_draw
from fieldapp.inspections.models import Case, Inspection
from fieldapp.org.models import Squadron
from fieldapp.targets.models import Target
from fieldapp.tasks.models import Task

AS_OF = date(2026, 6, 30)


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
    assert len(snapshots) == len(inspections)
    for inspection in inspections:
        assert snapshots[inspection.id, inspection.version] == InspectionSchema().dump(inspection)
