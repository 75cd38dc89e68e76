"""Risk as leaders and admins meet it: assessed on every event, explained, summarized, scheduled."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from fieldapp.actor import Actor
from fieldapp.audit.models import AuditEntry
from fieldapp.complaints.models import Complaint
from fieldapp.db import db
from fieldapp.inspections.models import Case, Inspection, InspectionStatus, ReviewStatus
from fieldapp.risk import operations
from fieldapp.risk.models import RiskLevelChange, TargetRisk
from fieldapp.schedule import operations as schedule_ops
from fieldapp.targets.models import Target
from tests.conftest import (
    NO_SUCH_ID,
    RACE_WAIT,
    RISK_SETTINGS,
    add_officer,
    add_shop,
    assert_error,
    at_once,
    audit_entries,
    etag_of,
    move_target,
    patch_settings,
    shop_payload,
    sign_in,
    status_of,
    until_there_or_waiting,
)
from tests.review_helpers import push_inspection, review_ok
from tests.sync_helpers import FakeDevice, new_inspection

SYSTEM = Actor.for_system("test")
PASSED = {"result": "pass", "note": "", "photo_ids": []}
FAILED = {"result": "fail", "note": "油烟直排", "photo_ids": []}


def approved_inspection(
    world, target_key: str, at: datetime, failed=(), outcome=None
) -> Inspection:
    """An inspection a leader approved (the review workflow itself is issue 5's)."""
    target = db.session.get(Target, world.targets[target_key].id)
    kind = target.kind.value
    codes = ("S01", "S02", "S03") if kind == "shop" else ("C01", "C02")
    inspection = Inspection(
        target_id=target.id,
        squadron_id=target.squadron_id,
        checklist_id=world.checklists[kind].id,
        checklist_version=1,
        origin="patrol",
        started_at=at,
        ended_at=at + timedelta(minutes=20),
        lon=target.lon,
        lat=target.lat,
        answers={code: FAILED if code in failed else PASSED for code in codes},
        findings="",
        outcome=outcome or ("rectification_ordered" if failed else "compliant"),
        rectification_deadline=(at + timedelta(days=7)).date() if failed else None,
        status=InspectionStatus.submitted,
        review_status=ReviewStatus.approved,
        received_at=at,
        submitted_at=at,
        reviewed_at=at,  # approved as it arrived: risk counts it from its approval
    )
    db.session.add(inspection)
    db.session.flush()
    return inspection


def stored(target_id) -> TargetRisk:
    db.session.expire_all()
    return db.session.get(TargetRisk, target_id)


def risk_of(api, target_id) -> dict:
    """The target's risk page, as a leader reads it."""
    response = api.get(f"/api/v1/targets/{target_id}/risk")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def patch_target(api, target_id, body: dict) -> None:
    path = f"/api/v1/targets/{target_id}"
    response = api.patch(path, json=body, headers={"If-Match": etag_of(api, path)})
    assert response.status_code == 200, response.get_json()


def approved_and_assessed(app, world, target_key: str, at: datetime, **kwargs) -> str:
    """An approved inspection made at ``at`` (committed), its target re-assessed then, as the
    approval at that moment would."""
    with app.app_context():
        inspection = approved_inspection(world, target_key, at, **kwargs)
        operations.refresh_target(SYSTEM, db.session.get(Target, world.targets[target_key].id), at)
        db.session.commit()
        return str(inspection.id)


def test_a_new_target_is_assessed_at_once_and_explained(login, world):
    leader = login("leader1")
    created = leader.post("/api/v1/targets", json=shop_payload(world.squadrons[0].id)).get_json()
    response = leader.get(f"/api/v1/targets/{created['id']}/risk")
    assert response.status_code == 200
    risk = response.get_json()
    # A new target is at least medium until it has had two inspections.
    assert risk["level"] == "medium"
    assert [f["level"] for f in risk["floors"]] == ["medium"]
    assert "new target" in risk["floors"][0]["reason"]
    assert risk["score"] == sum(f["points"] for f in risk["factors"])
    assert {f["factor"] for f in risk["factors"]} >= {"inherent", "credit"}
    assert risk["next_due"] is None  # never inspected: due now
    assert [(h["from"], h["to"]) for h in risk["history"]] == [(None, "medium")]


def test_a_severe_finding_raises_the_level_at_once_with_its_audit_entry(app, login, world):
    officer = FakeDevice(login("officer1"))
    officer.pull_all()
    shop = world.targets["shop1"].id
    with app.app_context():
        for days in (60, 30):
            approved_inspection(world, "shop1", datetime.now(UTC) - timedelta(days=days))
        inspection = approved_inspection(
            world, "shop1", datetime.now(UTC) - timedelta(days=1), failed=("S03",)
        )
        target = db.session.get(Target, shop)
        operations.refresh_target(SYSTEM, target, datetime.now(UTC))
        db.session.commit()
        risk = stored(shop)
        assert risk.level.value == "high"
        assert {"entity": "inspection", "id": str(inspection.id)} in [
            f["source"] for f in risk.factors
        ]
        entries = db.session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.action == "risk.level_change", AuditEntry.record_id == str(shop))
            .order_by(AuditEntry.seq)
        ).all()
        assert entries[-1].after["level"] == "high"
        change = db.session.scalars(
            sa.select(RiskLevelChange)
            .where(RiskLevelChange.target_id == shop)
            .order_by(RiskLevelChange.id.desc())
        ).first()
        assert (change.from_level.value, change.to_level.value) == ("medium", "high")
    # The officer's device learns it on the next pull.
    pulled = [c for c in officer.pull_all() if c["entity"] == "risk"]
    assert [(c["id"], c["data"]["level"]) for c in pulled] == [(str(shop), "high")]


def test_a_credit_change_rescores_the_target_in_the_same_request(login, world):
    leader = login("leader1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    before = leader.get(f"{path}/risk").get_json()
    response = leader.patch(
        path, json={"credit_class": "D"}, headers={"If-Match": etag_of(leader, path)}
    )
    assert response.status_code == 200
    after = leader.get(f"{path}/risk").get_json()
    credit = [f for f in after["factors"] if f["factor"] == "credit"]
    assert credit == [
        {"factor": "credit", "points": 10, "reason": "credit class D", "source": None}
    ]
    assert after["score"] == before["score"] + 10 - 2
    assert after["level"] == "elevated"  # credit D floors at elevated


def test_a_run_of_inspections_that_opened_cases_is_no_clean_run_toward_a_downgrade(
    app, login, world
):
    """老王面馆 stands at elevated (credit D). Three inspections in a row each find a violation
    that is on no checklist item (findings: 无证搭建雨棚) and open a case (立案), approved by the
    leader. With credit A again the score says medium, but the shop stays at elevated: none of
    the three was clean (any outcome but compliant acts on a violation, docs/review.md).
    Before, the three cases counted as "3 of 3 clean" and the shop stepped down."""
    shop = str(world.targets["shop1"].id)
    start = datetime.now(UTC)
    with time_machine.travel(start):
        leader = login("leader1")
        patch_target(leader, shop, {"credit_class": "D"})
        assert risk_of(leader, shop)["level"] == "elevated"
    for days in (5, 10, 15):
        at = start + timedelta(days=days)
        with time_machine.travel(at):
            device = FakeDevice(login("officer1"))
            record = push_inspection(
                world,
                device,
                started_at=(at - timedelta(minutes=30)).isoformat(),
                ended_at=(at - timedelta(minutes=10)).isoformat(),
                outcome="case_opened",
                findings="店外无证搭建雨棚，立案查处",
            )
            approved = review_ok(login("leader1"), record, "approve")
            assert approved["case"] is not None
    with time_machine.travel(start + timedelta(days=35)):
        leader = login("leader1")
        patch_target(leader, shop, {"credit_class": "A"})
        risk = risk_of(leader, shop)
    assert risk["level"] == "elevated", risk["reason"]
    assert "0 of 3 clean inspections" in risk["reason"], risk["reason"]


def test_a_failed_item_outside_the_sites_phase_does_not_hold_the_site_up(app, login, world):
    """The site is in its finishing phase, at elevated (credit D). Of four approved compliant
    inspections the latest marks C02 (裸土覆盖, an earthwork item) failed: it counts for nothing
    in the finishing phase (no compliance points, no severe floor), and not against the run of
    clean inspections either. With credit A again the site steps down to medium; before, it
    was held ("0 of 4 clean inspections")."""
    site = str(world.targets["site1"].id)
    start = datetime.now(UTC)
    with time_machine.travel(start):
        leader = login("leader1")
        patch_target(leader, site, {"credit_class": "D", "phase": "finishing"})
        assert risk_of(leader, site)["level"] == "elevated"
    for days in (5, 10, 15):
        approved_and_assessed(app, world, "site1", start + timedelta(days=days))
    approved_and_assessed(
        app, world, "site1", start + timedelta(days=20), failed=("C02",), outcome="compliant"
    )
    with time_machine.travel(start + timedelta(days=35)):
        leader = login("leader1")
        patch_target(leader, site, {"credit_class": "A"})
        risk = risk_of(leader, site)
    assert [f for f in risk["factors"] if f["factor"] == "compliance"] == []
    assert risk["level"] == "medium", risk["reason"]


def test_the_risk_of_another_squadrons_target_is_not_found(login, world):
    response = login("officer3").get(f"/api/v1/targets/{world.targets['shop1'].id}/risk")
    assert_error(response, 404, "not_found")
    assert_error(login("leader1").get(f"/api/v1/targets/{uuid.uuid4()}/risk"), 404, "not_found")


def test_summary_counts_and_shares_per_level_in_the_callers_scope(login, world):
    summary = login("supervisor").get("/api/v1/risk/summary").get_json()
    assert summary["total"] == 3
    assert sum(level["count"] for level in summary["levels"]) == 3
    assert [level["level"] for level in summary["levels"]] == ["low", "medium", "elevated", "high"]
    assert sum(level["share"] for level in summary["levels"]) == pytest.approx(1.0)
    assert {(g["squadron_id"], g["kind"]) for g in summary["groups"]} == {
        (world.squadrons[0].id, "shop"),
        (world.squadrons[0].id, "site"),
        (world.squadrons[1].id, "shop"),
    }
    mine = login("leader1").get("/api/v1/risk/summary?kind=shop").get_json()
    assert mine["total"] == 1
    assert_error(login("leader1").get("/api/v1/risk/summary?kind=boat"), 422, "validation_failed")


def test_an_officers_summary_counts_their_squadron_not_the_targets_of_their_tasks_elsewhere(
    login, world
):
    """officer1 is sent to shop1, which then moves to squadron 2 with its task: officer1 still
    reads shop1 and its risk through the task, but the summary is their squadron's, counted
    whole. Counting shop1 showed squadron 2 as one shop on officer1's chart."""
    shop1 = str(world.targets["shop1"].id)
    task = login("leader1").post(
        "/api/v1/tasks",
        json={
            "target_id": shop1,
            "assignee_ids": [str(world.users["officer1"].id)],
            "due": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            "origin": "manual",
        },
    )
    assert task.status_code == 201, task.get_json()
    move_target(login("admin"), shop1, world.squadrons[1].id)
    officer = login("officer1")
    assert officer.get(f"/api/v1/targets/{shop1}/risk").status_code == 200
    summary = officer.get("/api/v1/risk/summary").get_json()
    assert summary["total"] == 1  # site1, squadron 1's one active target left
    assert {(g["squadron_id"], g["kind"]) for g in summary["groups"]} == {
        (world.squadrons[0].id, "site")
    }
    whole = login("leader2").get("/api/v1/risk/summary").get_json()
    assert whole["total"] == 2  # shop2 and shop1, squadron 2's now


def test_summary_shares_add_up_to_the_whole(app, login, world):
    """Three targets at three levels: a third each would be 0.3333 three times, 99.99% of
    the district on a leader's chart. The shares of the levels add up to exactly 1."""
    with app.app_context():
        for key, level in {"shop1": "high", "site1": "low", "shop2": "medium"}.items():
            db.session.execute(
                sa.update(TargetRisk.__table__)
                .where(TargetRisk.target_id == world.targets[key].id)
                .values(level=level)
            )
        db.session.commit()
    summary = login("supervisor").get("/api/v1/risk/summary").get_json()
    assert [(entry["count"], entry["share"]) for entry in summary["levels"]] == [
        (1, 0.3334),
        (1, 0.3333),
        (0, 0.0),
        (1, 0.3333),
    ]
    for whole in [summary, *summary["groups"]]:
        assert round(sum(entry["share"] for entry in whole["levels"]), 10) == 1.0


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=6))
def test_shares_add_up_to_one_and_each_is_its_count_rounded(counts):
    result = operations.shares(counts)
    if not sum(counts):
        assert result == [0.0] * len(counts)
        return
    units = [round(share * 10_000) for share in result]
    assert sum(units) == 10_000
    for count, unit in zip(counts, units, strict=True):
        exact = count * 10_000 / sum(counts)
        assert abs(unit - exact) < 1  # rounded up or down, never further
        assert unit or not count or exact < 1


def test_summary_leaves_out_closed_targets(login, world):
    leader = login("leader1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    closed = leader.patch(path, json={"active": False}, headers={"If-Match": etag_of(leader, path)})
    assert closed.status_code == 200, closed.get_json()
    # The closed shop is gone from the list; the summary agrees with it.
    assert leader.get("/api/v1/targets?kind=shop").get_json()["items"] == []
    shops = leader.get("/api/v1/risk/summary?kind=shop").get_json()
    assert shops["total"] == 0 and shops["groups"] == []
    assert leader.get("/api/v1/risk/summary").get_json()["total"] == 1  # site1 is still open
    assert login("supervisor").get("/api/v1/risk/summary").get_json()["total"] == 2


def test_recompute_agrees_with_the_incremental_updates(app, ctx, world):
    """Random events over a few months; after each, the one-target update and a full recompute
    at the same moment store exactly the same assessment."""
    rng = random.Random(6)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    keys = ["shop1", "shop2", "site1"]
    for step in range(25):
        now += timedelta(days=rng.choice([1, 7, 20, 45]))
        key = rng.choice(keys)
        target = db.session.get(Target, world.targets[key].id)
        event = rng.choice(["clean", "fail", "severe", "case", "complaint", "credit"])
        if event in ("clean", "fail", "severe"):
            codes = {"clean": (), "fail": ("S01",) if target.kind.value == "shop" else ("C01",)}
            failed = codes.get(event, ("S03",) if target.kind.value == "shop" else ("C02",))
            approved_inspection(world, key, now - timedelta(hours=2), failed=failed)
        elif event == "case":
            db.session.add(
                Case(
                    number=f"case-{step}",
                    target_id=target.id,
                    squadron_id=target.squadron_id,
                    opened_at=now,
                )
            )
        elif event == "complaint":
            db.session.add(
                Complaint(
                    target_id=target.id,
                    squadron_id=target.squadron_id,
                    category="油烟",
                    text="油烟扰民",
                    received_at=now - timedelta(hours=5),
                    substantiated=True,
                    closed_at=now - timedelta(hours=1),
                )
            )
        else:
            target.credit_class = rng.choice("ABCD")
        db.session.flush()
        operations.refresh_target(SYSTEM, target, now)
        incremental = _assessment(target.id)
        savepoint = db.session.begin_nested()
        summary = operations.assess_targets(SYSTEM, now)
        assert _assessment(target.id) == incremental, (step, event)
        assert summary.targets == 3
        savepoint.rollback()
    levels = {change.to_level.value for change in db.session.scalars(sa.select(RiskLevelChange))}
    assert len(levels) >= 2  # the events moved levels, so the comparison meant something


def _assessment(target_id) -> tuple:
    risk = stored(target_id)
    return (
        risk.score,
        risk.level,
        risk.level_since,
        risk.factors,
        risk.floors,
        risk.next_due,
        risk.version,
    )


# -- settings ------------------------------------------------------------------------------------


def test_everyone_reads_the_settings_and_only_admins_change_them(app, login, world):
    leader = login("leader1")
    listed = leader.get("/api/v1/risk/settings")
    assert listed.status_code == 200
    groups = {g["key"]: g for g in listed.get_json()}
    assert groups["levels"]["value"] == {"medium": 30, "elevated": 50, "high": 70}
    assert groups["levels"]["description"]
    assert_error(
        patch_settings(leader, {"credit": groups["credit"]["value"]}),
        403,
        "forbidden",
    )
    admin = login("admin")
    credit = {"cap": 10, "class": {"A": 0, "B": 1, "C": 5, "D": 10}}
    response = patch_settings(admin, {"credit": credit})
    assert response.status_code == 200, response.get_json()
    assert {g["key"]: g["value"] for g in response.get_json()}["credit"] == credit
    with app.app_context():
        entry = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "risk.settings_update")
        ).one()
        assert entry.before["credit"]["class"]["B"] == 2 and entry.after["credit"] == credit


def groups_of(api) -> dict:
    response = api.get(RISK_SETTINGS)
    assert response.status_code == 200, response.get_json()
    return {group["key"]: group for group in response.get_json()}


def test_a_changed_group_says_when_and_by_whom(login, world):
    """updated_at stayed the installation time (nothing set it), so a leader asking since when
    the numbers apply read a wrong date. It is the time of the change now, for the groups that
    changed; the others keep theirs. The answer's ETag is what a GET now sends."""
    admin = login("admin")
    before = groups_of(admin)
    started = datetime.now(UTC)
    credit = {"cap": 10, "class": {"A": 0, "B": 1, "C": 5, "D": 10}}
    response = patch_settings(admin, {"credit": credit})
    assert response.status_code == 200, response.get_json()
    after = groups_of(admin)
    assert after["credit"]["updated_by"] == str(world.users["admin"].id)
    assert datetime.fromisoformat(after["credit"]["updated_at"]) >= started
    assert after["levels"] == before["levels"]
    assert response.headers["ETag"] == admin.get(RISK_SETTINGS).headers["ETag"]


def test_a_stale_settings_edit_does_not_undo_another_admins(login, world):
    """Two admins edit the frequencies: A reads them, B changes the shops' low frequency, then
    A sends the group back (whole, as the PATCH demands) with a site change of their own. It
    was 200, and B's change silently undone. Now the PATCH needs the ETag read (428 without)
    and refuses one read before another change (412), as every other admin edit does."""
    admin_a, admin_b = login("admin", "pad-admin-a"), login("admin", "pad-admin-b")
    read_by_a = admin_a.get(RISK_SETTINGS)
    etag_a = read_by_a.headers["ETag"]
    frequency = {g["key"]: g["value"] for g in read_by_a.get_json()}["frequency"]
    assert_error(
        admin_a.patch(RISK_SETTINGS, json={"frequency": frequency}), 428, "precondition_required"
    )
    by_b = {**frequency, "shop": {**frequency["shop"], "low": 120}}
    assert patch_settings(admin_b, {"frequency": by_b}).status_code == 200
    stale = {**frequency, "site": {**frequency["site"], "low": 45}}
    assert_error(
        patch_settings(admin_a, {"frequency": stale}, if_match=etag_a), 412, "precondition_failed"
    )
    assert groups_of(admin_a)["frequency"]["value"]["shop"]["low"] == 120
    # Read again, A's change goes through on top of B's.
    merged = {**by_b, "site": {**by_b["site"], "low": 45}}
    assert patch_settings(admin_a, {"frequency": merged}).status_code == 200
    assert groups_of(admin_a)["frequency"]["value"] == merged
    # A client holding the current settings is told they are unchanged.
    current = admin_a.get(RISK_SETTINGS).headers["ETag"]
    assert admin_a.get(RISK_SETTINGS, headers={"If-None-Match": current}).status_code == 304


def test_an_unchanged_group_writes_no_change(app, login, world):
    """A form saved without edits sends the group as it is. It wrote a `risk.settings_update`
    entry whose before and after were the same, and moved `updated_by` to this admin; now it
    writes nothing (200, the settings as they are), as every edit that changes nothing."""
    admin = login("admin")
    before = groups_of(admin)
    response = patch_settings(admin, {"credit": before["credit"]["value"]})
    assert response.status_code == 200, response.get_json()
    assert groups_of(admin) == before
    assert audit_entries(app, action="risk.settings_update") == []
    # Only what changed is written, and logged.
    levels = {"medium": 30, "elevated": 55, "high": 70}
    changed = patch_settings(admin, {"credit": before["credit"]["value"], "levels": levels})
    assert changed.status_code == 200
    after = groups_of(admin)
    assert after["credit"] == before["credit"]
    [entry] = audit_entries(app, action="risk.settings_update")
    assert (entry.before, entry.after) == (
        {"levels": before["levels"]["value"]},
        {"levels": levels},
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"draw": {"rates": {"low": 1.5, "medium": 0.1, "elevated": 0.3, "high": 1}}},
            "draw.rates.low",
        ),
        (
            {"draw": {"rates": {"low": 0, "medium": 0.1, "elevated": 0.3, "high": 1}}},
            "draw.rates.low",
        ),
        (
            {"draw": {"rates": {"low": -0.1, "medium": 0.1, "elevated": 0.3, "high": 1}}},
            "draw.rates.low",
        ),
        (
            {"draw": {"rates": {"low": 0.05, "medium": 0.15, "elevated": 0.3, "high": 0}}},
            "draw.rates.high",
        ),
        (
            {"draw": {"rates": {"low": 0.05, "medium": 0.15, "elevated": 0.3, "high": 0.5}}},
            "draw.rates.high",
        ),
        ({"draw": {"rates": {"low": 0.05, "medium": 0.15, "elevated": 0.3}}}, "draw.rates.high"),
        (
            {
                "floors": {
                    "severe_finding": {"level": "extreme", "days": 90},
                    "credit_d": {"level": "elevated"},
                    "new_target": {"level": "medium", "inspections": 2},
                }
            },
            "floors.severe_finding.level",
        ),
        ({"levels": {"medium": 60, "elevated": 50, "high": 70}}, "levels"),
        # A severe finding (油烟直排) weighing less than a minor one: its shop would score less
        # and be inspected less often.
        (
            {"compliance": {"cap": 30, "severity": {"minor": 22, "moderate": 10, "severe": 4}}},
            "compliance.severity",
        ),
        (
            {"compliance": {"cap": 30, "severity": {"minor": 4, "moderate": 12, "severe": 10}}},
            "compliance.severity",
        ),
        # The best credit class scoring the most: the inverse of 分级分类.
        ({"credit": {"cap": 10, "class": {"A": 10, "B": 6, "C": 2, "D": 0}}}, "credit.class"),
        ({"credit": {"cap": 10, "class": {"A": 0, "B": 5, "C": 4, "D": 10}}}, "credit.class"),
        ({"credit": {"cap": 60, "class": {"A": 0, "B": 2, "C": 6, "D": 10}}}, "cap"),
        ({"credit": {"cap": 10, "class": {"A": 0, "B": "two", "C": 6, "D": 10}}}, "credit.class.B"),
        ({"credit": {"cap": 10, "class": {"A": 0, "B": 2, "C": 6}}}, "credit.class.D"),
        (
            {"credit": {"cap": 10, "class": {"A": 0, "B": 2, "C": 6, "D": 10, "E": 20}}},
            "credit.class.E",
        ),
        ({"weather": {"rain": 3}}, "weather"),
        ({"credit": 10}, "credit"),
        ({}, "_schema"),
    ],
)
def test_settings_that_break_the_model_are_refused_field_by_field(login, world, body, field):
    response = patch_settings(login("admin"), body)
    error = assert_error(response, 422, "validation_failed")
    assert field in error["errors"]["json"], error


def test_an_admin_may_add_a_business_type(login, world):
    admin = login("admin")
    inherent = {g["key"]: g["value"] for g in admin.get("/api/v1/risk/settings").get_json()}[
        "inherent"
    ]
    inherent["business_type"]["tea_house"] = 9
    response = patch_settings(admin, {"inherent": inherent})
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("without_other", "inherent.business_type.other"),
        ("empty", "inherent.business_type.other"),
        ("scale_without_micro", "inherent.scale.micro"),
        ("phase_without_finishing", "inherent.phase.finishing"),
    ],
)
def test_an_inherent_table_without_a_key_every_target_needs_is_refused(login, world, table, field):
    """Shops of a type not listed score the business-type table's `other`. An admin could leave
    `other` out (or send {}), and every shop of an unlisted type (with {}, every shop) then
    scored 0 inherent points silently. The fallback is the one key that open table must keep;
    the site tables are closed: each scale and phase must be there."""
    admin = login("admin")

    def stored() -> dict:
        return {g["key"]: g["value"] for g in admin.get(RISK_SETTINGS).get_json()}["inherent"]

    before, inherent = stored(), stored()
    if table == "without_other":
        del inherent["business_type"]["other"]
    elif table == "empty":
        inherent["business_type"] = {}
    elif table == "scale_without_micro":
        del inherent["scale"]["micro"]
    else:
        del inherent["phase"]["finishing"]
    error = assert_error(patch_settings(admin, {"inherent": inherent}), 422, "validation_failed")
    assert field in error["errors"]["json"], error
    assert stored() == before


def _huge(group: dict, path: tuple, value) -> dict:
    """``group`` with the number at ``path`` (inside it) set to ``value``."""
    *inner, last = path
    place = group
    for key in inner:
        place = place[key]
    place[last] = value
    return group


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        (("floors", "severe_finding", "days"), 10_000_000, "at most 3650 days"),
        (("floors", "new_target", "days"), 10_000_000, "at most 3650 days"),
        (("history", "months"), 1_000_000, "at most 120 months"),
        (("complaints", "days"), 10**12, "at most 3650 days"),
        (("downgrade", "complaint_free_days"), 10**9, "at most 3650 days"),
        (("downgrade", "days_at_level"), 3651, "at most 3650 days"),
        (("frequency", "shop", "low"), 10**15, "at most 3650 days"),
        # A float that is whole in name only: far past anything the calendar can count.
        (("floors", "severe_finding", "days"), 1e308, "at most 3650 days"),
        (("credit", "class", "D"), 1e308, "at most 100"),
        (("downgrade", "clean_inspections", "shop"), 10**6, "at most 100"),
    ],
)
def test_settings_too_large_to_count_are_refused_and_targets_stay_assessable(
    login, world, path, value, says
):
    admin = login("admin")
    groups = {g["key"]: g["value"] for g in admin.get("/api/v1/risk/settings").get_json()}
    group = _huge(groups[path[0]], path[1:], value)
    error = assert_error(patch_settings(admin, {path[0]: group}), 422, "validation_failed")
    assert error["errors"]["json"] == {".".join(path): [says]}, error
    # Nothing was stored: adding and changing targets is assessed as before.
    leader = login("leader1")
    created = leader.post("/api/v1/targets", json=shop_payload(world.squadrons[0].id))
    assert created.status_code == 201, created.get_json()
    risk = leader.get(f"/api/v1/targets/{created.get_json()['id']}/risk").get_json()
    assert risk["level"] == "medium"


def test_the_largest_counts_allowed_still_assess(login, world):
    admin = login("admin")
    groups = {g["key"]: g["value"] for g in admin.get("/api/v1/risk/settings").get_json()}
    groups["floors"]["severe_finding"]["days"] = 3650
    groups["history"]["months"] = 120
    groups["frequency"]["shop"] = {"low": 3650, "medium": 3650, "elevated": 3650, "high": 3650}
    for key in ("floors", "history", "frequency"):
        response = patch_settings(admin, {key: groups[key]})
        assert response.status_code == 200, response.get_json()
    leader = login("leader1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    changed = leader.patch(
        path, json={"credit_class": "C"}, headers={"If-Match": etag_of(leader, path)}
    )
    assert changed.status_code == 200, changed.get_json()
    assert leader.get(f"{path}/risk").status_code == 200


# -- schedule ------------------------------------------------------------------------------------


def test_due_lists_never_inspected_first_then_most_overdue(app, login, world):
    with app.app_context():
        long_ago = datetime.now(UTC) - timedelta(days=400)
        recently = datetime.now(UTC) - timedelta(days=3)
        approved_inspection(world, "shop1", long_ago)
        approved_inspection(world, "site1", recently)
        for key in ("shop1", "site1"):
            operations.refresh_target(
                SYSTEM, db.session.get(Target, world.targets[key].id), datetime.now(UTC)
            )
        db.session.commit()
    leader = login("leader1")
    due = leader.get("/api/v1/schedule/due").get_json()
    # site1 was inspected three days ago and is not due; shop1 is overdue by months.
    assert [item["target_id"] for item in due["items"]] == [str(world.targets["shop1"].id)]
    [item] = due["items"]
    assert item["days_overdue"] > 30 and item["level"] == "medium" and item["code"]
    later = leader.get("/api/v1/schedule/due", query_string={"on": "2099-01-01"}).get_json()
    assert [i["target_id"] for i in later["items"]] == [
        str(world.targets["shop1"].id),
        str(world.targets["site1"].id),
    ]
    only_sites = leader.get(
        "/api/v1/schedule/due", query_string={"on": "2099-01-01", "kind": "site"}
    ).get_json()
    assert [i["kind"] for i in only_sites["items"]] == ["site"]
    # Squadron 2's shop was never inspected: due now, first of all, for its own leader only.
    theirs = login("leader2").get("/api/v1/schedule/due").get_json()["items"]
    assert [(i["target_id"], i["days_overdue"]) for i in theirs] == [
        (str(world.targets["shop2"].id), None)
    ]


def test_without_a_date_due_means_due_today_in_shanghai(app, login, world):
    """00:30 on 1 December in Shanghai is still 30 November in UTC: what is due on the 1st is
    listed and dispatched, what is due on the 2nd is not yet."""
    with app.app_context():
        for key, day in (("shop1", date(2026, 12, 1)), ("site1", date(2026, 12, 2))):
            risk = db.session.get(TargetRisk, world.targets[key].id)
            risk.next_due = day
        db.session.commit()
    with time_machine.travel(datetime(2026, 11, 30, 16, 30, tzinfo=UTC)):
        leader = login("leader1")
        due = leader.get("/api/v1/schedule/due").get_json()["items"]
        assert [(i["target_id"], i["days_overdue"]) for i in due] == [
            (str(world.targets["shop1"].id), 0)
        ]
        tasks = leader.post("/api/v1/schedule/tasks", json={"squadron_id": world.squadrons[0].id})
        assert [t["target_id"] for t in tasks.get_json()] == [str(world.targets["shop1"].id)]
        # Planned ahead, a task is due at the end of that working day in Shanghai.
        ahead = leader.post(
            "/api/v1/schedule/tasks",
            json={"squadron_id": world.squadrons[0].id, "on": "2026-12-05"},
        ).get_json()
        assert [t["target_id"] for t in ahead] == [str(world.targets["site1"].id)]
        assert datetime.fromisoformat(ahead[0]["due"]) == datetime(
            2026, 12, 5, 10, tzinfo=UTC
        )  # 18:00 in Shanghai


def _due_shop1(leader, world) -> list:
    body = leader.get("/api/v1/schedule/due").get_json()
    shop = str(world.targets["shop1"].id)
    return [(i["target_id"], i["next_due"]) for i in body["items"] if i["target_id"] == shop]


def _recompute(app) -> None:
    with app.app_context():
        operations.assess_targets(Actor.for_system("risk"), datetime.now(UTC))
        db.session.commit()


def test_a_submitted_inspection_takes_the_target_off_the_schedule_at_once(app, login, world):
    """officer1 and officer2 inspect 老王面馆 (never inspected) on 20 November and submit; the
    leader has not reviewed it yet. The schedule no longer lists the shop as never inspected
    (it is not due for 90 days), and the nightly recompute leaves that as it is: the answer
    does not depend on whether the job has run."""
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC)):
        leader = login("leader1")
        assert _due_shop1(leader, world) == [(str(world.targets["shop1"].id), None)]
        push_inspection(world, FakeDevice(login("officer1")))  # submitted, review pending
        assert _due_shop1(leader, world) == []
        risk = leader.get(f"/api/v1/targets/{world.targets['shop1'].id}/risk").get_json()
        assert risk["next_due"] == "2027-02-18"  # 20 November + 90 days (medium)
        _recompute(app)
        assert _due_shop1(leader, world) == []
        assert leader.get(f"/api/v1/targets/{world.targets['shop1'].id}/risk").get_json() == risk


def test_an_inspection_from_a_device_clock_a_few_minutes_ahead_counts_when_it_arrives(
    app, login, world
):
    """officer1's phone runs 3 minutes ahead: an inspection of 老王面馆 (never inspected)
    submitted a minute after it began says it started 2 minutes after the server received
    it. It counts as made when it arrived: the shop leaves the schedule at once (not due for
    90 days), and approved with a severe finding it raises the shop to high at once, not when
    the server's clock reaches the phone's. An assessment of a moment before it arrived still
    leaves it out."""
    now = datetime(2026, 12, 5, 2, tzinfo=UTC)
    started = now + timedelta(minutes=2)
    shop = str(world.targets["shop1"].id)
    with time_machine.travel(now, tick=False):
        leader = login("leader1")
        assert _due_shop1(leader, world) == [(shop, None)]
        record = push_inspection(
            world,
            FakeDevice(login("officer1")),
            started_at=started.isoformat(),
            ended_at=(started + timedelta(minutes=1)).isoformat(),
            answers={"S01": PASSED, "S02": PASSED, "S03": FAILED},
            outcome="rectification_ordered",
            rectification_deadline="2026-12-20",
        )
        assert _due_shop1(leader, world) == []
        risk = leader.get(f"/api/v1/targets/{shop}/risk").get_json()
        assert risk["next_due"] == "2027-03-05"  # 5 December + 90 days (new target: medium)
        review_ok(leader, record, "approve")
        risk = leader.get(f"/api/v1/targets/{shop}/risk").get_json()
        assert risk["level"] == "high", risk["reason"]
        assert {"entity": "inspection", "id": record} in [f["source"] for f in risk["factors"]]
    with app.app_context():
        earlier = now - timedelta(minutes=1)
        facts, _ = operations.gather_facts(earlier, operations.load_settings(), [uuid.UUID(shop)])[
            shop
        ]
        assert facts.inspections == () and facts.last_inspected_at is None


def test_a_draft_is_no_inspection_done_until_it_is_submitted(app, login, world):
    """A draft synced from the street leaves the shop on the schedule; submitting it takes the
    shop off, and the officers' devices pull the new due date with the risk record."""
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC)):
        leader = login("leader1")
        device = FakeDevice(login("officer1"))
        device.pull_all()
        draft = push_inspection(world, device, status="draft")
        assert _due_shop1(leader, world) == [(str(world.targets["shop1"].id), None)]
        submit = {
            "status": "submitted",
            "ended_at": datetime(2026, 11, 20, 9, 50, tzinfo=UTC).isoformat(),
            "outcome": "compliant",
        }
        [result] = device.push_ok(device.change("inspection", draft, submit, base_version=1))
        assert result["status"] == "applied", result
        assert _due_shop1(leader, world) == []
        pulled = [c for c in device.pull_all() if c["entity"] == "risk"]
        assert [(c["id"], c["data"]["next_due"]) for c in pulled] == [
            (str(world.targets["shop1"].id), "2027-02-18")
        ]
        _recompute(app)
        assert device.pull_all() == []  # the recompute had nothing left to change


@pytest.mark.parametrize(
    "query",
    [
        {"on": "2026-02-30"},
        {"on": "tomorrow"},
        {"per_page": 1000},
        {"kind": "boat"},
        {"squadron_id": "x"},
    ],
)
def test_due_refuses_bad_filters(login, world, query):
    assert_error(
        login("leader1").get("/api/v1/schedule/due", query_string=query), 422, "validation_failed"
    )


def test_due_targets_become_tasks_for_officer_pairs_once(app, login, world):
    leader = login("leader1")
    response = leader.post("/api/v1/schedule/tasks", json={"squadron_id": world.squadrons[0].id})
    assert response.status_code == 201, response.get_json()
    tasks = response.get_json()
    # Both of squadron 1's targets were never inspected: both are due, each to the pair.
    assert sorted(t["target_id"] for t in tasks) == sorted(
        str(world.targets[k].id) for k in ("shop1", "site1")
    )
    pair = sorted(str(world.users[u].id) for u in ("officer1", "officer2"))
    assert all(sorted(t["assignee_ids"]) == pair and t["origin"] == "schedule" for t in tasks)
    # Dispatching again adds nothing: each target already has its open task.
    again = leader.post("/api/v1/schedule/tasks", json={"squadron_id": world.squadrons[0].id})
    assert again.status_code == 201 and again.get_json() == []
    # The officers' devices pull them.
    pulled = {c["id"] for c in FakeDevice(login("officer2")).pull_all() if c["entity"] == "task"}
    assert {t["id"] for t in tasks} <= pulled


def test_two_dispatches_at_once_give_each_due_target_one_task(pg_app, monkeypatch):
    """The leader presses "dispatch what is due" on the office PC while the deputy does the
    same on a pad (or one click is sent twice): every due target gets one task, one pair of
    officers; the dispatch that comes second finds the targets tasked.

    Before, each dispatch read which due targets had no open task before it locked anything,
    so both found the same ones and every due shop got two open tasks: four officers sent to
    the same shop."""
    app, world = pg_app
    leaders = [sign_in(app, "leader1", "pad-disp-1"), sign_in(app, "leader1", "pad-disp-2")]
    add_shop(leaders[0], world.squadrons[0].id, "永和豆浆")  # a new shop is due at once
    arrived = {"first": threading.Event(), "second": threading.Event()}
    build_task = schedule_ops.build_task

    def build_when_both_read(**kwargs):
        name = threading.current_thread().name
        if name in arrived and not arrived[name].is_set():
            arrived[name].set()  # it has read what is due and not yet tasked
            until_there_or_waiting(arrived["second" if name == "first" else "first"])
        return build_task(**kwargs)

    monkeypatch.setattr(schedule_ops, "build_task", build_when_both_read)

    def dispatch(api):
        return lambda: api.post(
            "/api/v1/schedule/tasks", json={"squadron_id": world.squadrons[0].id, "kind": "shop"}
        )

    answers = at_once(("first", dispatch(leaders[0])), ("second", dispatch(leaders[1])))
    monkeypatch.undo()
    assert [status_of(a) for a in answers.values()] == [201, 201], answers
    tasked = [t["target_id"] for answer in answers.values() for t in answer.get_json()]
    assert tasked, answers
    assert len(tasked) == len(set(tasked)), f"{len(tasked) - len(set(tasked))} tasked twice"
    assert [answer.get_json() for answer in answers.values()].count([]) == 1


def test_each_dispatched_task_has_its_own_history_in_the_audit_log(login, world):
    """A supervisor looks a task up in the log by its id and finds who made it, for which
    target and officers: one entry per task, as for a task a leader makes by hand."""
    leader = login("leader1")
    response = leader.post("/api/v1/schedule/tasks", json={"squadron_id": world.squadrons[0].id})
    tasks = response.get_json()
    assert len(tasks) == 2
    supervisor = login("supervisor")
    for task in tasks:
        page = supervisor.get(f"/api/v1/audit?entity=task&record_id={task['id']}").get_json()
        [entry] = page["items"]
        assert entry["action"] == "task.create"
        assert entry["actor_id"] == str(world.users["leader1"].id)
        assert entry["device_id"] == leader.device_id
        assert entry["after"]["target_id"] == task["target_id"]
        assert sorted(entry["after"]["assignee_ids"]) == sorted(task["assignee_ids"])
        assert entry["after"]["origin"] == "schedule"
    # The dispatch itself is still one entry, naming its tasks.
    squadron = world.squadrons[0].id
    [dispatch] = supervisor.get(f"/api/v1/audit?entity=squadron&record_id={squadron}").get_json()[
        "items"
    ][:1]
    assert dispatch["action"] == "schedule.dispatch"
    assert sorted(dispatch["after"]["tasks"]) == sorted(t["id"] for t in tasks)
    assert supervisor.get("/api/v1/audit/verify").get_json()["ok"]


def test_dispatching_to_a_squadron_of_one_officer_is_refused_not_sent_alone(login, world):
    """Squadron 2 (张庙中队) has one officer and a shop that was never inspected (due)."""
    leader = login("leader2")
    body = {"squadron_id": world.squadrons[1].id}
    error = assert_error(leader.post("/api/v1/schedule/tasks", json=body), 422, "validation_failed")
    [why] = error["errors"]["json"]["squadron_id"]
    assert "张庙中队" in why and "1 active officer" in why and "双人执法" in error["message"]
    pulled = FakeDevice(login("officer3")).pull_all()
    assert not [c for c in pulled if c["entity"] == "task"]  # no officer was sent alone
    # Nothing due (it has no site): nothing to send, nothing refused.
    sites = leader.post("/api/v1/schedule/tasks", json={**body, "kind": "site"})
    assert sites.status_code == 201 and sites.get_json() == []
    # A second officer makes a pair.
    second = add_officer(login, world.squadrons[1].id)
    sent = leader.post("/api/v1/schedule/tasks", json=body)
    assert sent.status_code == 201, sent.get_json()
    [task] = sent.get_json()
    assert sorted(task["assignee_ids"]) == sorted([str(world.users["officer3"].id), second["id"]])


def test_a_dispatch_for_a_day_decades_ahead_is_refused_not_sent(login, world):
    """A leader means 2026-12-01 and types 2062-12-01. Every target is due by then, and the
    dispatch would send each of them as a task due on 1 December 2062: tasks that never become
    overdue and keep the schedule from dispatching those targets again (it sends only targets
    with no open task). A task is due at most 366 days ahead however it is made (docs/review.md,
    as POST /tasks refuses one by hand): the day is refused, on ``on``, and nothing is sent. A
    day within the year is planned as ever."""
    with time_machine.travel(datetime(2026, 11, 23, 2, tzinfo=UTC), tick=False):
        leader = login("leader1")
        body = {"squadron_id": world.squadrons[0].id, "on": "2062-12-01"}
        error = assert_error(
            leader.post("/api/v1/schedule/tasks", json=body), 422, "validation_failed"
        )
        assert error["errors"]["json"] == {
            "on": ["its tasks would be due 2062-12-01T18:00:00+08:00: at most 366 days ahead"]
        }
        assert leader.get("/api/v1/tasks").get_json()["items"] == []
        sent = leader.post("/api/v1/schedule/tasks", json={**body, "on": "2027-11-23"})
        assert sent.status_code == 201, sent.get_json()
        due = {datetime.fromisoformat(t["due"]) for t in sent.get_json()}
        assert due == {datetime(2027, 11, 23, 10, tzinfo=UTC)}  # 18:00 in Shanghai


@pytest.mark.parametrize(
    ("user", "body", "status", "error"),
    [
        ("leader2", {"squadron_id": 1}, 403, "forbidden"),
        ("officer1", {"squadron_id": 1}, 403, "forbidden"),
        ("admin", {"squadron_id": NO_SUCH_ID}, 422, "validation_failed"),
        ("leader1", {}, 422, "validation_failed"),
        ("leader1", {"squadron_id": 1, "limit": 0}, 422, "validation_failed"),
        ("leader1", {"squadron_id": 1, "limit": "ten"}, 422, "validation_failed"),
        ("leader1", {"squadron_id": 1, "on": "someday"}, 422, "validation_failed"),
    ],
)
def test_dispatching_is_for_the_squadrons_leader_with_sound_input(
    login, world, user, body, status, error
):
    if "squadron_id" in body and body["squadron_id"] == 1:
        body = {**body, "squadron_id": world.squadrons[0].id}
    assert_error(login(user).post("/api/v1/schedule/tasks", json=body), status, error)


def test_the_target_file_shows_its_risk_and_the_list_filters_by_level(login, world):
    leader = login("leader1")
    file = leader.get(f"/api/v1/targets/{world.targets['shop1'].id}").get_json()
    assert file["risk"]["level"] == "medium"
    assert file["risk"]["score"] == sum(f["points"] for f in file["risk"]["factors"])
    assert "history" not in file["risk"]
    medium = leader.get("/api/v1/targets?level=medium").get_json()["items"]
    assert {t["id"] for t in medium} == {str(world.targets[k].id) for k in ("shop1", "site1")}
    assert leader.get("/api/v1/targets?level=high").get_json()["items"] == []
    assert_error(leader.get("/api/v1/targets?level=extreme"), 422, "validation_failed")


def test_missing_settings_answer_a_clear_503_not_a_500(app, login, world):
    from fieldapp.risk.models import RiskSetting

    with app.app_context():
        db.session.delete(db.session.get(RiskSetting, "credit"))
        db.session.commit()
    leader = login("leader1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    response = leader.patch(
        path, json={"credit_class": "C"}, headers={"If-Match": etag_of(leader, path)}
    )
    error = assert_error(response, 503, "risk_settings_missing")
    assert "credit" in error["message"] and "fieldapp db upgrade" in error["message"]
    # Nothing of the refused edit was kept.
    assert leader.get(path).get_json()["credit_class"] == "B"


@pytest.mark.parametrize("workers", [1, 2])
def test_pushes_go_on_while_the_nightly_recompute_runs(pg_app, monkeypatch, workers):
    """``fieldapp risk recompute`` runs for minutes at city scale while officers sync. Each
    chunk of targets it assesses is committed on its own, so a push waits at most for one
    chunk; and a shop inspected while the recompute runs, before the recompute reaches it, is
    judged with that inspection (not due again), as the push judged it.

    Before, the recompute took the change counter with its first chunk and kept it until its
    one commit at the end: every push waited for the whole recompute."""
    app, world = pg_app
    leader = sign_in(app, "leader1", f"pad-night-l{workers}")
    officer = FakeDevice(sign_in(app, "officer1", f"pad-night-o{workers}"))
    # The later of two new shops in id order: the recompute reaches it after a chunk before it.
    shop = max(add_shop(leader, world.squadrons[0].id, f"夜市{workers}号{n}") for n in range(2))
    with app.app_context():
        ids = db.session.scalars(sa.select(Target.id).order_by(Target.id)).all()
        db.session.remove()
    before_the_shop = ids.index(uuid.UUID(shop))  # chunks of one target: the shop's chunk
    pausing, pushed = threading.Event(), threading.Event()
    pushed_meanwhile: list[bool] = []
    holds = []
    hold = operations.hold

    def hold_once_the_push_is_through(*args, **kwargs):
        if threading.current_thread().name == "recompute":
            holds.append(None)
            if len(holds) == before_the_shop + 1:
                pausing.set()
                until_there_or_waiting(pushed)
                pushed_meanwhile.append(pushed.is_set())
        return hold(*args, **kwargs)

    monkeypatch.setattr(operations, "hold", hold_once_the_push_is_through)

    def recompute():
        from fieldapp.risk.commands import risk_cli

        args = ["recompute", "--workers", str(workers), "--chunk-size", "1"]
        return app.test_cli_runner().invoke(risk_cli, args=args)

    def push():
        pausing.wait(RACE_WAIT)
        now = datetime.now(UTC)
        inspection = new_inspection(
            world,
            ["officer1", "officer2"],
            status="submitted",
            target_id=shop,
            started_at=now.isoformat(),
            ended_at=(now + timedelta(minutes=20)).isoformat(),
        )
        try:
            return officer.push(officer.change("inspection", uuid.uuid4(), inspection))
        finally:
            pushed.set()

    answers = at_once(("recompute", recompute), ("push", push))
    monkeypatch.undo()
    ran = answers["recompute"]
    assert getattr(ran, "exit_code", ran) == 0, getattr(ran, "output", ran)
    assert f"{len(ids):,} of {len(ids):,} targets assessed" in ran.output  # progress, per chunk
    assert status_of(answers["push"]) == 200, answers["push"]
    assert pushed_meanwhile == [True]
    assert leader.get(f"/api/v1/targets/{shop}/risk").get_json()["next_due"] is not None
