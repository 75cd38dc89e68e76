"""Resolving the conflict log: the leader's choice becomes the record's value, and nothing the
choice does not name is lost: not the other answer items, not their clocks, not a value
written after the entry was logged."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import time_machine

from fieldapp.actor import Actor
from fieldapp.db import db
from fieldapp.geo import wgs84_to_gcj02
from fieldapp.inspections.models import Inspection
from fieldapp.risk import operations
from tests.conftest import (
    RACE_WAIT,
    add_shop,
    assert_error,
    at_once,
    audit_entries,
    etag_of,
    sign_in,
    status_of,
    until_there_or_waiting,
)
from tests.review_helpers import FAILED_S03, push_inspection, review_ok
from tests.sync_helpers import FakeDevice, new_inspection, photo_metadata, shared_draft
from tests.test_risk import approved_inspection

T = 1_763_712_000_000  # the devices' clocks (November 2025)


def stored(app, inspection_id) -> Inspection:
    with app.app_context():
        record = db.session.get(Inspection, uuid.UUID(str(inspection_id)))
        db.session.expunge_all()
        return record


def answer(result: str, note: str) -> dict:
    return {"result": result, "note": note, "photo_ids": []}


def later_device_wins(world, officer1: FakeDevice, officer2: FakeDevice):
    """Both officers change the findings of one shared draft from version 1; officer2's clock is
    later, so its value wins and officer1's "早" is logged. Returns (record, officer2's result,
    the logged conflict as the result names it)."""
    record = shared_draft(world, officer1)
    officer1.push_ok(
        officer1.change(
            "inspection", record, {"findings": "早"}, base_version=1, hlc=officer1.clock_at(T + 1)
        )
    )
    [won] = officer2.push_ok(
        officer2.change(
            "inspection", record, {"findings": "晚"}, base_version=1, hlc=officer2.clock_at(T + 2)
        )
    )
    [conflict] = won["conflicts"]
    return record, won, conflict


def resolve(api, conflict_id, keep: str, value=None):
    body = {"keep": keep} | ({"value": value} if keep == "value" else {})
    return api.post(f"/api/v1/conflicts/{conflict_id}/resolve", json=body)


def lost_edit(
    officer1: FakeDevice, officer2: FakeDevice, record, theirs: dict, mine: dict, *, gap_ms=1
) -> dict:
    """On version 1, officer2 writes ``theirs`` ``gap_ms`` later than officer1's ``mine``,
    which arrives after and loses; the answer to officer1's push."""
    officer2.push_ok(
        officer2.change(
            "inspection", record, theirs, base_version=1, hlc=officer2.clock_at(T + 2 * gap_ms)
        )
    )
    [lost] = officer1.push_ok(
        officer1.change(
            "inspection", record, mine, base_version=1, hlc=officer1.clock_at(T + gap_ms)
        )
    )
    assert lost["status"] == "conflict", lost
    return lost


def lost_findings(world, officer1: FakeDevice, officer2: FakeDevice, record) -> str:
    """officer2 writes findings later ("晚"); officer1's earlier "早" arrives after and loses."""
    lost = lost_edit(officer1, officer2, record, {"findings": "晚"}, {"findings": "早"})
    assert lost["conflicts"][0]["kept"] == "server"
    return lost["conflicts"][0]["conflict_id"]


def test_accepting_an_amendment_of_one_answer_keeps_the_other_answers(app, login, world):
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record = push_inspection(world, officer)
    approved = review_ok(leader, record, "approve")
    before = stored(app, record).answers
    fixed = {"S02": answer("fail", "补记：占道堆物")}
    [result] = officer.push_ok(
        officer.change("inspection", record, {"answers": fixed}, base_version=approved["version"])
    )
    assert result["status"] == "conflict"

    response = resolve(leader, result["conflicts"][0]["conflict_id"], "client")

    assert response.status_code == 200, response.get_json()
    answers = stored(app, record).answers
    assert answers == {**before, "S02": fixed["S02"]}
    assert stored(app, record).review_status.value == "pending"  # back to the leader


def test_resolving_one_answer_item_leaves_the_other_items_clocks_alone(app, login, world):
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    tablet = FakeDevice(login("officer1", device_id="dev-officer1-tablet"))
    leader = login("leader1")
    record = shared_draft(world, officer1)
    lost = lost_edit(
        officer1,
        officer2,
        record,
        {"answers": {"S01": answer("fail", "B-S01"), "S03": answer("fail", "B-S03")}},
        {"answers": {"S03": answer("na", "A-S03")}},
        gap_ms=100_000,
    )
    [conflict] = lost["conflicts"]
    assert conflict["field"] == "answers.S03"
    assert resolve(leader, conflict["conflict_id"], "client").status_code == 200
    assert stored(app, record).answers["S03"]["note"] == "A-S03"

    # S01 still carries officer2's clock: an edit made after it (T+300 s) wins it.
    [late] = tablet.push_ok(
        tablet.change(
            "inspection",
            record,
            {"answers": {"S01": answer("pass", "C-S01")}},
            base_version=1,
            hlc=tablet.clock_at(T + 300_000),
        )
    )
    assert [c["kept"] for c in late["conflicts"]] == ["client"]
    assert stored(app, record).answers["S01"]["note"] == "C-S01"


def test_keeping_a_side_over_a_value_written_since_is_refused(app, login, world):
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record = shared_draft(world, officer1)
    conflict_id = lost_findings(world, officer1, officer2, record)
    [newer] = officer2.push_ok(
        officer2.change(
            "inspection", record, {"findings": "新"}, base_version=2, hlc=officer2.clock_at(T + 3)
        )
    )
    assert newer["status"] == "applied"

    refused = resolve(leader, conflict_id, "client")

    assert_error(refused, 409, "version_conflict")
    assert "findings" in refused.get_json()["message"]
    assert stored(app, record).findings == "新"
    # Stating the value outright is the leader's explicit choice, and closes the entry.
    response = resolve(leader, conflict_id, "value", "早")
    assert response.status_code == 200, response.get_json()
    assert stored(app, record).findings == "早"
    assert response.get_json()["status"] == "resolved"


def test_a_value_written_to_another_field_since_does_not_block_the_choice(app, login, world):
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record = shared_draft(world, officer1)
    conflict_id = lost_findings(world, officer1, officer2, record)
    officer2.push_ok(
        officer2.change(
            "inspection", record, {"outcome": "compliant"}, base_version=2, hlc=officer2.clock_at(T)
        )
    )
    assert resolve(leader, conflict_id, "client").status_code == 200
    assert (stored(app, record).findings, stored(app, record).outcome.value) == ("早", "compliant")


def photo_taken_at_conflict(world, officer1: FakeDevice, officer2: FakeDevice):
    """A draft shared by officer1 and officer2 with one photo; both correct the photo's
    capture time from its first version, officer2 later: officer1's 09:38 is logged. Returns
    (the photo's id, officer2's result, the entry's id)."""
    record, photo = uuid.uuid4(), uuid.uuid4()
    officer1.push_ok(
        officer1.change("inspection", record, new_inspection(world, ["officer1", "officer2"]))
    )
    [created] = officer1.push_ok(officer1.change("photo", photo, photo_metadata(record)))
    assert created["status"] == "applied", created
    base = created["version"]
    [won] = officer2.push_ok(
        officer2.change(
            "photo",
            photo,
            {"taken_at": "2026-11-20T09:40:00+08:00"},
            base_version=base,
            hlc=officer2.clock_at(T + 2000),
        )
    )
    assert won["status"] == "applied", won
    [lost] = officer1.push_ok(
        officer1.change(
            "photo",
            photo,
            {"taken_at": "2026-11-20T09:38:00+08:00"},
            base_version=base,
            hlc=officer1.clock_at(T + 1000),
        )
    )
    assert lost["status"] == "conflict", lost
    [conflict] = lost["conflicts"]
    assert conflict["kept"] == "server"
    return photo, won, conflict["conflict_id"]


def test_choosing_a_side_of_a_photo_field_written_again_since_is_refused(app, login, world):
    """README: "a side chosen over a value written since the entry was logged is refused with
    409 rather than silently overwriting it", a photo's metadata as an inspection's fields.
    officer2 corrects the capture time once more (09:45) after officer1's 09:38 was logged:
    keeping officer1's side would overwrite 09:45 unseen. Stated outright, it is applied."""
    from fieldapp.photos.models import Photo

    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    photo, won, conflict_id = photo_taken_at_conflict(world, officer1, officer2)
    [again] = officer2.push_ok(
        officer2.change(
            "photo",
            photo,
            {"taken_at": "2026-11-20T09:45:00+08:00"},
            base_version=won["version"],
            hlc=officer2.clock_at(T + 5000),
        )
    )
    assert again["status"] == "applied", again

    def taken_at() -> datetime:
        with app.app_context():
            return db.session.get(Photo, photo).taken_at.astimezone(UTC)

    refused = resolve(leader, conflict_id, "client")

    assert "taken_at" in assert_error(refused, 409, "version_conflict")["message"]
    assert taken_at() == datetime(2026, 11, 20, 1, 45, tzinfo=UTC)
    stated = resolve(leader, conflict_id, "value", "2026-11-20T09:38:00+08:00")
    assert stated.status_code == 200, stated.get_json()
    assert taken_at() == datetime(2026, 11, 20, 1, 38, tzinfo=UTC)


def test_choosing_a_side_of_a_photo_field_not_written_since_is_applied(app, login, world):
    """Nothing written to the capture time since the entry was logged: keeping officer1's
    side writes it, as for an inspection's field."""
    from fieldapp.photos.models import Photo

    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    photo, _, conflict_id = photo_taken_at_conflict(world, officer1, officer2)

    response = resolve(login("leader1"), conflict_id, "client")

    assert response.status_code == 200, response.get_json()
    with app.app_context():
        taken_at = db.session.get(Photo, photo).taken_at.astimezone(UTC)
    assert taken_at == datetime(2026, 11, 20, 1, 38, tzinfo=UTC)


def test_accepting_a_delete_of_a_record_edited_since_it_was_logged_is_refused(app, login, world):
    """officer1 asks to delete a submitted inspection (it waits in the log); officer2 then adds
    to its findings. Accepting the old delete would throw officer2's work away unseen (a
    device's delete on an old base is not applied either): 409 naming what changed and telling
    the leader to read the record; the entry stays open, and keep: server closes it."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record = push_inspection(world, officer1)
    [deleted] = officer1.push_ok(officer1.change("inspection", record, op="delete", base_version=1))
    assert deleted["status"] == "conflict", deleted
    [edited] = officer2.push_ok(
        officer2.change("inspection", record, {"findings": "复核后补充的违规事实"}, base_version=1)
    )
    assert edited["status"] == "applied", edited
    conflict_id = deleted["conflicts"][0]["conflict_id"]

    refused = resolve(leader, conflict_id, "client")

    message = assert_error(refused, 409, "version_conflict")["message"]
    assert "findings" in message and "Read the record" in message, message
    assert stored(app, record).findings == "复核后补充的违规事实"
    [entry] = leader.get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    assert entry["status"] == "open"
    assert resolve(leader, conflict_id, "server").status_code == 200
    assert stored(app, record).findings == "复核后补充的违规事实"


def test_a_delete_is_accepted_over_a_review_made_since_it_was_logged(app, login, world):
    """A review edits nothing an officer wrote: a record approved after its delete was logged
    loses no one's work by going, and accepting the delete deletes it."""
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record = push_inspection(world, officer, officers=("officer1",))
    [deleted] = officer.push_ok(officer.change("inspection", record, op="delete", base_version=1))
    assert deleted["status"] == "conflict", deleted
    review_ok(leader, record, "approve")

    response = resolve(leader, deleted["conflicts"][0]["conflict_id"], "client")

    assert response.status_code == 200, response.get_json()
    assert stored(app, record) is None


def test_accepting_the_delete_of_a_photo_edited_since_it_was_logged_is_refused(app, login, world):
    """A photo of a submitted inspection: its delete waits for the leader; the officer then
    files it under another item. Accepting the old delete would lose that: 409 naming it."""
    from fieldapp.photos.models import Photo

    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record = push_inspection(world, officer, officers=("officer1",))
    photo = uuid.uuid4()
    [created] = officer.push_ok(
        officer.change("photo", photo, photo_metadata(record, item_code="S01"))
    )
    [deleted] = officer.push_ok(
        officer.change("photo", photo, op="delete", base_version=created["version"])
    )
    assert deleted["status"] == "conflict", deleted
    [edited] = officer.push_ok(
        officer.change("photo", photo, {"item_code": "S02"}, base_version=created["version"])
    )
    assert edited["status"] == "applied", edited

    refused = resolve(leader, deleted["conflicts"][0]["conflict_id"], "client")

    assert "item_code" in assert_error(refused, 409, "version_conflict")["message"]
    with app.app_context():
        assert db.session.get(Photo, photo).item_code == "S02"


def test_keeping_the_server_value_brings_it_back_where_the_device_won(app, login, world):
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record, _, conflict = later_device_wins(world, officer1, officer2)
    assert conflict["kept"] == "client" and stored(app, record).findings == "晚"

    response = resolve(login("leader1"), conflict["conflict_id"], "server")

    assert response.status_code == 200, response.get_json()
    assert stored(app, record).findings == "早"
    assert response.get_json()["resolution"]["value"] == "早"
    assert response.get_json()["resolution"]["applied_version"] == 4


def test_the_date_chosen_for_a_submitted_inspection_moves_the_targets_next_due(app, login, world):
    """The next due date counts from the target's last submitted inspection. Two officers
    correct the start of a submitted one; the leader chooses the side that lost: the schedule
    counts from the date chosen at once, as the nightly recompute does."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    risk_path = f"/api/v1/targets/{world.targets['shop1'].id}/risk"
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC)):
        record = push_inspection(world, officer1)  # started 20 November, submitted
        assert leader.get(risk_path).get_json()["next_due"] == "2027-02-18"
        lost = lost_edit(
            officer1,
            officer2,
            record,
            {"started_at": "2026-11-15T01:30:00+00:00"},
            {"started_at": "2026-11-10T01:30:00+00:00"},
        )
        assert leader.get(risk_path).get_json()["next_due"] == "2027-02-13"  # pushed: at once
        resolved = resolve(leader, lost["conflicts"][0]["conflict_id"], "client")
        assert resolved.status_code == 200, resolved.get_json()
        chosen = leader.get(risk_path).get_json()
        assert chosen["next_due"] == "2027-02-08"  # 10 November + 90 days
        with app.app_context():
            operations.assess_targets(Actor.for_system("risk"), datetime.now(UTC))
            db.session.commit()
        assert leader.get(risk_path).get_json() == chosen


def test_accepting_the_delete_of_a_submitted_inspection_makes_its_target_due_again(
    app, login, world
):
    """老王面馆, never inspected, is inspected and the inspection submitted: the schedule no
    longer lists it. The officer then deletes the inspection (entered by mistake); a submitted
    record's delete waits in the conflict log, and the leader accepts it. The shop is due
    again at once, as the nightly recompute would say, not 90 days after an inspection that
    no longer exists.

    Before, accepting the delete re-assessed nothing: the risk record kept the next due date
    counted from the deleted inspection, and ``/schedule/due`` left the shop out until the
    recompute."""
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    shop = str(world.targets["shop1"].id)
    risk_path = f"/api/v1/targets/{shop}/risk"

    def due() -> list:
        items = leader.get("/api/v1/schedule/due").get_json()["items"]
        return [(i["target_id"], i["next_due"]) for i in items if i["target_id"] == shop]

    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC)):
        record = push_inspection(world, officer)  # started 20 November, submitted
        assert leader.get(risk_path).get_json()["next_due"] == "2027-02-18"
        assert due() == []
        [deleted] = officer.push_ok(
            officer.change("inspection", record, op="delete", base_version=1)
        )
        assert deleted["status"] == "conflict", deleted
        resolved = resolve(leader, deleted["conflicts"][0]["conflict_id"], "client")
        assert resolved.status_code == 200, resolved.get_json()
        assert leader.get(f"/api/v1/inspections/{record}").status_code == 404
        accepted = leader.get(risk_path).get_json()
        assert accepted["next_due"] is None  # never inspected: due now
        assert due() == [(shop, None)]
        with app.app_context():
            operations.assess_targets(Actor.for_system("risk"), datetime.now(UTC))
            db.session.commit()
        assert leader.get(risk_path).get_json() == accepted


SEVERE_S03 = {
    "S01": answer("pass", ""),
    "S02": answer("pass", ""),
    "S03": answer("fail", "油烟直排"),
}


def _approved_severe_finding(world, officer, leader) -> str:
    """老王面馆 (new: medium) inspected with a severe finding (S03) and approved: high."""
    record = push_inspection(
        world,
        officer,
        answers=SEVERE_S03,
        outcome="rectification_ordered",
        rectification_deadline="2026-12-20",
    )
    review_ok(leader, record, "approve")
    return record


def test_accepting_the_delete_of_an_approved_inspection_judges_its_target_without_it(
    app, login, world
):
    """老王面馆 (new, medium) gets an inspection with a severe finding, approved: high. It
    was entered by mistake; the officer deletes it and the leader accepts the delete. The
    shop is judged without it: medium again (new target), with the drop in its level history
    and the audit log, as the nightly recompute would leave it. Before, it stayed high ("held
    at high: 0 of 3 clean inspections at this level; 0 of 30 days"), inspected every 14 days
    for a finding that no longer exists."""
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    shop = str(world.targets["shop1"].id)
    risk_path = f"/api/v1/targets/{shop}/risk"
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC)):
        record = _approved_severe_finding(world, officer, leader)
        raised = leader.get(risk_path).get_json()
        assert raised["level"] == "high"
        [deleted] = officer.push_ok(
            officer.change("inspection", record, op="delete", base_version=2)
        )
        assert deleted["status"] == "conflict", deleted
        resolved = resolve(leader, deleted["conflicts"][0]["conflict_id"], "client")
        assert resolved.status_code == 200, resolved.get_json()
        risk = leader.get(risk_path).get_json()
        assert risk["level"] == "medium", risk["reason"]
        assert risk["reason"] == "new target: 0 of 2 inspections so far"
        [added] = [h for h in raised["history"] if h["from"] is None]
        assert risk["level_since"] == added["at"]  # medium since it was added, as before
        # In any order: the shop was added on the real clock, the rest on the travelled one.
        changes = [(h["from"], h["to"]) for h in risk["history"]]
        assert sorted(changes, key=str) == [
            ("high", "medium"),
            ("medium", "high"),
            (None, "medium"),
        ]
        [drop] = [h for h in risk["history"] if h["from"] == "high"]
        assert f"inspection {record} corrected" in drop["reason"]
        entry = audit_entries(app, action="risk.level_change")[-1]
        assert (entry.record_id, entry.before, entry.after["level"]) == (
            shop,
            {"level": "high"},
            "medium",
        )
        with app.app_context():
            operations.assess_targets(Actor.for_system("risk"), datetime.now(UTC))
            db.session.commit()
        assert leader.get(risk_path).get_json() == risk


def test_a_deleted_inspection_s_rise_stays_where_another_reason_for_it_holds(app, login, world):
    """Two approved inspections of 老王面馆 found S03 (severe): the second's approval is the
    one the level history names. Its delete accepted, the first still keeps the shop high:
    no change of level, and the days at high still count from the rise."""
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    shop = str(world.targets["shop1"].id)
    risk_path = f"/api/v1/targets/{shop}/risk"
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC)):
        with app.app_context():  # approved without a re-assessment: the rise names the second
            first = approved_inspection(
                world, "shop1", datetime(2026, 11, 10, 2, tzinfo=UTC), failed=("S03",)
            )
            db.session.commit()
            first_id = str(first.id)
        record = _approved_severe_finding(world, officer, leader)
        raised = leader.get(risk_path).get_json()
        assert raised["level"] == "high"
        assert {"entity": "inspection", "id": record} in [f["source"] for f in raised["floors"]]
        [deleted] = officer.push_ok(
            officer.change("inspection", record, op="delete", base_version=2)
        )
        resolved = resolve(leader, deleted["conflicts"][0]["conflict_id"], "client")
        assert resolved.status_code == 200, resolved.get_json()
        risk = leader.get(risk_path).get_json()
    assert (risk["level"], risk["level_since"]) == ("high", raised["level_since"])
    assert risk["history"] == raised["history"]
    assert [f["source"] for f in risk["floors"] if f["level"] == "high"] == [
        {"entity": "inspection", "id": first_id}
    ]


@pytest.mark.parametrize(
    ("amendment", "level"),
    [
        ({"answers": {"S03": answer("pass", "复核: 已安装油烟净化器")}}, "medium"),
        ({"findings": "补记: 油烟直排, 已责令整改"}, "high"),
    ],
)
def test_an_inspection_approved_again_after_an_amendment_is_judged_as_amended(
    app, login, world, amendment, level
):
    """The severe finding that raised 老王面馆 to high goes back to the leader with an
    accepted amendment. While it waits for review it does not count in the score, and the
    level holds as for any fall. Approved again with S03 amended to passed, the shop is medium
    as before the rise, not held at high for a finding the record no longer has; approved
    again with its finding standing, it stays high, its days at high counted from the rise."""
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    shop = str(world.targets["shop1"].id)
    risk_path = f"/api/v1/targets/{shop}/risk"
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC)):
        record = _approved_severe_finding(world, officer, leader)
        raised = leader.get(risk_path).get_json()
        assert raised["level"] == "high"
        [amended] = officer.push_ok(officer.change("inspection", record, amendment, base_version=2))
        assert amended["status"] == "conflict", amended
        resolved = resolve(leader, amended["conflicts"][0]["conflict_id"], "client")
        assert resolved.status_code == 200, resolved.get_json()
        assert stored(app, record).review_status.value == "pending"
        waiting = leader.get(risk_path).get_json()
        assert waiting["level"] == "high" and "held at high" in waiting["reason"]
        review_ok(leader, record, "approve")
        risk = leader.get(risk_path).get_json()
    assert risk["level"] == level, risk["reason"]
    # In any order: the shop was added on the real clock, the rest on the travelled one.
    changes = [(h["from"], h["to"]) for h in risk["history"]]
    if level == "medium":
        [added] = [h for h in raised["history"] if h["from"] is None]
        assert risk["level_since"] == added["at"]
        assert sorted(changes, key=str) == [
            ("high", "medium"),
            ("medium", "high"),
            (None, "medium"),
        ]
    else:
        assert risk["level_since"] == raised["level_since"]
        assert risk["history"] == raised["history"]


def test_an_approved_inspection_amended_to_another_shop_takes_its_rise_from_the_first(
    app, login, world
):
    """老王面馆 (new: medium) is raised to high by an approved inspection with a severe finding
    (S03). It was the shop next door: the officer amends target_id and the leader accepts the
    amendment. 老王面馆 no longer has the record, whatever its review as amended decides: it is
    medium again at once, as after a delete, not held at high ("0 of 3 clean inspections")
    for a finding that is not its own; approved again, the record counts for the shop next
    door."""
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    shop = str(world.targets["shop1"].id)
    risk_path = f"/api/v1/targets/{shop}/risk"
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC)):
        other = add_shop(leader, world.squadrons[0].id, "隔壁小吃店")
        officer.pull_all()
        record = _approved_severe_finding(world, officer, leader)
        assert leader.get(risk_path).get_json()["level"] == "high"
        [amended] = officer.push_ok(
            officer.change("inspection", record, {"target_id": other}, base_version=2)
        )
        assert amended["status"] == "conflict", amended
        resolved = resolve(leader, amended["conflicts"][0]["conflict_id"], "client")
        assert resolved.status_code == 200, resolved.get_json()
        assert leader.get(f"/api/v1/inspections/{record}").get_json()["target_id"] == other
        risk = leader.get(risk_path).get_json()
        assert risk["level"] == "medium", risk["reason"]
        [drop] = [h for h in risk["history"] if h["from"] == "high"]
        assert f"inspection {record} corrected" in drop["reason"]
        review_ok(leader, record, "approve")
        assert leader.get(risk_path).get_json() == risk
        assert leader.get(f"/api/v1/targets/{other}/risk").get_json()["level"] == "high"
        with app.app_context():
            operations.assess_targets(Actor.for_system("risk"), datetime.now(UTC))
            db.session.commit()
        assert leader.get(risk_path).get_json() == risk


def test_a_reopened_inspection_pushed_to_another_shop_takes_its_rise_from_the_first(
    app, login, world
):
    """The severe finding that raised 老王面馆 to high goes back to the leader with an accepted
    amendment (a note: the shop stays held at high while it waits). The officer then moves the
    record, waiting for review, to the shop next door from the pad: 老王面馆 is judged without
    it at once, medium as before the rise."""
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    shop = str(world.targets["shop1"].id)
    risk_path = f"/api/v1/targets/{shop}/risk"
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC)):
        other = add_shop(leader, world.squadrons[0].id, "隔壁小吃店")
        officer.pull_all()
        record = _approved_severe_finding(world, officer, leader)
        [amended] = officer.push_ok(
            officer.change("inspection", record, {"findings": "补记"}, base_version=2)
        )
        resolved = resolve(leader, amended["conflicts"][0]["conflict_id"], "client")
        assert resolved.status_code == 200, resolved.get_json()
        assert leader.get(risk_path).get_json()["level"] == "high"
        version = leader.get(f"/api/v1/inspections/{record}").get_json()["version"]
        [moved] = officer.push_ok(
            officer.change("inspection", record, {"target_id": other}, base_version=version)
        )
        assert moved["status"] == "applied", moved
        risk = leader.get(risk_path).get_json()
    assert risk["level"] == "medium", risk["reason"]
    [drop] = [h for h in risk["history"] if h["from"] == "high"]
    assert f"inspection {record} corrected" in drop["reason"]


def _approved_case(world, officer, leader) -> tuple[str, dict, dict]:
    """老王面馆 inspected, S03 failed, outcome 立案, approved: the case opens. (record id, the
    approval's answer, the case as the shop's file lists it)."""
    record = push_inspection(
        world, officer, officers=("officer1",), answers=FAILED_S03, outcome="case_opened"
    )
    approved = review_ok(leader, record, "approve")
    shop = str(world.targets["shop1"].id)
    [case] = leader.get(f"/api/v1/targets/{shop}").get_json()["cases"]
    return record, approved, case


def case_factors(api, target_id: str) -> list:
    """The ids of the cases the target's risk counts (its history factor's sources)."""
    risk = api.get(f"/api/v1/targets/{target_id}/risk").get_json()
    sources = [f.get("source") or {} for f in risk["factors"]]
    return [source["id"] for source in sources if source.get("entity") == "case"]


def test_a_case_goes_with_an_approved_inspection_amended_to_another_shop(app, login, world):
    """The case (立案) is about the shop the violation was found at. The record was the shop
    next door: accepting the amendment of its target_id moves the case along at once, with an
    audit entry: 老王面馆's file no longer lists it, nor does its risk count it ("judged
    without it at once, as after a delete", docs/risk.md); the shop next door's does both.
    Approved again, the record opens no second case."""
    leader, officer = login("leader1"), FakeDevice(login("officer1"))
    other = add_shop(leader, world.squadrons[0].id, "老王面馆隔壁")
    shop = str(world.targets["shop1"].id)
    record, approved, case = _approved_case(world, officer, leader)
    assert case_factors(leader, shop) == [case["id"]]
    [amended] = officer.push_ok(
        officer.change("inspection", record, {"target_id": other}, base_version=approved["version"])
    )
    assert amended["status"] == "conflict", amended

    response = resolve(leader, amended["conflicts"][0]["conflict_id"], "client")

    assert response.status_code == 200, response.get_json()
    assert leader.get(f"/api/v1/targets/{shop}").get_json()["cases"] == []
    assert [c["id"] for c in leader.get(f"/api/v1/targets/{other}").get_json()["cases"]] == [
        case["id"]
    ]
    assert case_factors(leader, shop) == []
    assert case_factors(leader, other) == [case["id"]]
    [moved] = audit_entries(app, action="case.move")
    assert (moved.record_id, moved.before, moved.after["target_id"]) == (
        case["id"],
        {"target_id": shop},
        other,
    )
    review_ok(leader, record, "approve")
    assert leader.get(f"/api/v1/targets/{shop}").get_json()["cases"] == []
    assert [c["id"] for c in leader.get(f"/api/v1/targets/{other}").get_json()["cases"]] == [
        case["id"]
    ]
    assert case_factors(leader, shop) == []


def test_a_case_goes_with_a_reopened_inspection_pushed_to_another_shop(app, login, world):
    """Reopened by an accepted amendment, the record waits for review and its officer moves it
    to the shop next door from the pad: its case goes along, as when the leader accepts the
    move."""
    leader, officer = login("leader1"), FakeDevice(login("officer1"))
    other = add_shop(leader, world.squadrons[0].id, "老王面馆隔壁")
    shop = str(world.targets["shop1"].id)
    record, approved, case = _approved_case(world, officer, leader)
    [amended] = officer.push_ok(
        officer.change("inspection", record, {"findings": "补记"}, base_version=approved["version"])
    )
    assert resolve(leader, amended["conflicts"][0]["conflict_id"], "client").status_code == 200
    version = leader.get(f"/api/v1/inspections/{record}").get_json()["version"]

    [moved] = officer.push_ok(
        officer.change("inspection", record, {"target_id": other}, base_version=version)
    )

    assert moved["status"] == "applied", moved
    assert leader.get(f"/api/v1/targets/{shop}").get_json()["cases"] == []
    assert [c["id"] for c in leader.get(f"/api/v1/targets/{other}").get_json()["cases"]] == [
        case["id"]
    ]
    assert case_factors(leader, shop) == []
    assert [e.record_id for e in audit_entries(app, action="case.move")] == [case["id"]]


def test_keeping_the_server_value_where_it_was_kept_writes_nothing(app, login, world):
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer1)
    conflict_id = lost_findings(world, officer1, officer2, record)
    version = stored(app, record).version

    response = resolve(login("leader1"), conflict_id, "server")

    assert response.status_code == 200
    assert response.get_json()["resolution"] == {
        "keep": "server",
        "value": None,
        "applied_version": None,
    }
    assert (stored(app, record).findings, stored(app, record).version) == ("晚", version)


def test_a_location_given_in_gcj02_is_stored_in_wgs84_with_the_original(app, login, world):
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record = push_inspection(world, officer)
    approved = review_ok(leader, record, "approve")
    [amendment] = officer.push_ok(
        officer.change("inspection", record, {"findings": "补"}, base_version=approved["version"])
    )
    given = {"lon": 121.47, "lat": 31.37, "accuracy_m": 5.0, "crs": "gcj02"}

    response = resolve(
        leader, amendment["conflicts"][0]["conflict_id"], "value", {"location": given}
    )

    assert response.status_code == 200, response.get_json()
    location = leader.get(f"/api/v1/inspections/{record}").get_json()["location"]
    assert location["crs"] == "wgs84" and location["lon"] != 121.47
    assert location["original"] == {"lon": 121.47, "lat": 31.37, "crs": "gcj02"}


def test_accepting_a_devices_gcj02_target_point_from_the_log_keeps_what_it_sent(login, world):
    """officer1 corrects 老王面馆's point from the pad's map (GCJ-02) on a base the leader has
    written since, later by the clocks (he moved the point by hand): the leader's point stays,
    the officer's goes to the log, as the device sent it. The leader accepts it: the target
    stands at the officer's point with ``location.original`` (what the device sent), as when a
    push applies the same point."""
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    shop = str(world.targets["shop1"].id)
    path = f"/api/v1/targets/{shop}"
    base = [c for c in officer.pull_all() if (c["entity"], c["id"]) == ("target", shop)][-1]
    device_clock = officer.tick()  # the officer's edit, made before the leader's
    moved = leader.patch(
        path,
        json={"location": {"lon": 121.4705, "lat": 31.3705}},
        headers={"If-Match": etag_of(leader, path)},
    )
    assert moved.status_code == 200, moved.get_json()
    lon, lat = wgs84_to_gcj02(121.4712, 31.3711)
    sent = {"lon": round(lon, 7), "lat": round(lat, 7), "crs": "gcj02"}
    [result] = officer.push_ok(
        officer.change(
            "target", shop, {"location": sent}, base_version=base["version"], hlc=device_clock
        )
    )
    [conflict] = result["conflicts"]
    assert (result["status"], conflict["kept"]) == ("conflict", "server")
    [logged] = leader.get(f"/api/v1/conflicts?record_id={shop}").get_json()["items"]
    assert logged["client_value"] == sent

    resolved = resolve(leader, conflict["conflict_id"], "client")

    assert resolved.status_code == 200, resolved.get_json()
    location = leader.get(path).get_json()["location"]
    assert location["lon"] == pytest.approx(121.4712, abs=1e-5)
    assert location["lat"] == pytest.approx(31.3711, abs=1e-5)
    assert location["original"] == sent


def test_accepting_a_devices_gcj02_inspection_point_from_the_log_keeps_what_it_sent(login, world):
    """Two officers set the place of one shared draft from version 1: officer2's (WGS-84) is
    later and stays, officer1's GCJ-02 fix goes to the log as the device sent it. Accepted, the
    record holds officer1's point with its original, as a push applying it would."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record = shared_draft(world, officer1)
    later = {"lon": 121.4703, "lat": 31.3703, "accuracy_m": 6.0, "crs": "wgs84"}
    officer2.push_ok(
        officer2.change(
            "inspection", record, {"location": later}, base_version=1, hlc=officer2.clock_at(T + 2)
        )
    )
    lon, lat = wgs84_to_gcj02(121.4708, 31.3709)
    sent = {"lon": round(lon, 7), "lat": round(lat, 7), "accuracy_m": 4.0, "crs": "gcj02"}
    [result] = officer1.push_ok(
        officer1.change(
            "inspection", record, {"location": sent}, base_version=1, hlc=officer1.clock_at(T + 1)
        )
    )
    [conflict] = result["conflicts"]
    assert (result["status"], conflict["kept"]) == ("conflict", "server")

    resolved = resolve(leader, conflict["conflict_id"], "client")

    assert resolved.status_code == 200, resolved.get_json()
    location = leader.get(f"/api/v1/inspections/{record}").get_json()["location"]
    assert location["lon"] == pytest.approx(121.4708, abs=1e-5)
    assert location["lat"] == pytest.approx(31.3709, abs=1e-5)
    assert location["accuracy_m"] == 4.0
    assert location["original"] == {"lon": sent["lon"], "lat": sent["lat"], "crs": "gcj02"}


def test_a_value_of_the_wrong_type_for_the_field_is_422(app, login, world):
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer1)
    conflict_id = lost_findings(world, officer1, officer2, record)

    response = resolve(login("leader1"), conflict_id, "value", {"lon": 121.47})

    assert_error(response, 422, "validation_failed")
    assert "findings" in response.get_json()["errors"]["json"]["value"]
    assert stored(app, record).findings == "晚"


def test_two_leaders_resolving_one_entry_at_once_one_wins(pg_app, monkeypatch):
    from sync import resolution

    app, world = pg_app
    officer = FakeDevice(sign_in(app, "officer1", "race-res-officer"))
    leader_a = sign_in(app, "leader1", "race-res-a")
    leader_b = sign_in(app, "leader1", "race-res-b")
    inspection_id = push_inspection(world, officer, officers=("officer1",))
    review_ok(leader_a, inspection_id, "approve")
    [result] = officer.push_ok(
        officer.change("inspection", inspection_id, {"findings": "补记"}, base_version=2)
    )
    conflict_id = result["conflicts"][0]["conflict_id"]
    barrier = threading.Barrier(2, timeout=10)
    original = resolution.resolve

    def racing(*args, **kwargs):  # both requests have read the entry as open
        barrier.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(resolution, "resolve", racing)
    answers = {}

    def send(api, keep):
        answers[keep] = resolve(api, conflict_id, keep)

    threads = [
        threading.Thread(target=send, args=(leader_a, "server")),
        threading.Thread(target=send, args=(leader_b, "client")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.status_code for r in answers.values()) == [200, 409]
    [winner] = [keep for keep, r in answers.items() if r.status_code == 200]
    entry = leader_a.get(f"/api/v1/conflicts?record_id={inspection_id}").get_json()["items"][0]
    assert entry["resolution"]["keep"] == winner
    findings = leader_a.get(f"/api/v1/inspections/{inspection_id}").get_json()["findings"]
    assert findings == ("补记" if winner == "client" else "")


def test_a_resolve_that_meets_its_target_moving_away_is_refused(pg_app, monkeypatch):
    """leader1 may settle the shop's entry when the request starts; before it writes, an admin
    moves the shop to Zhangmiao. Asked again once the entry is locked, the answer is 403 and
    the shop keeps its name: leader1 no longer writes it."""
    from sync import resolution

    app, world = pg_app
    first = FakeDevice(sign_in(app, "officer1", "race-move-1"))
    second = FakeDevice(sign_in(app, "officer2", "race-move-2"))
    leader, admin = sign_in(app, "leader1", "race-move-l"), sign_in(app, "admin", "race-move-a")
    shop = world.targets["shop1"].id
    first.push_ok(first.change("target", shop, {"name": "老王面馆(总店)"}, base_version=1))
    [result] = second.push_ok(second.change("target", shop, {"name": "王记面馆"}, base_version=1))
    assert result["status"] == "conflict", result
    conflict_id = result["conflicts"][0]["conflict_id"]
    entered, moved = threading.Event(), threading.Event()
    original = resolution.resolve

    def held(*args, **kwargs):  # the view has checked the squadron already
        entered.set()
        assert moved.wait(timeout=10)
        return original(*args, **kwargs)

    monkeypatch.setattr(resolution, "resolve", held)
    answers = []
    thread = threading.Thread(
        target=lambda: answers.append(resolve(leader, conflict_id, "value", "吴淞改的名字"))
    )
    thread.start()
    assert entered.wait(timeout=10)
    path = f"/api/v1/targets/{shop}"
    etag = admin.get(path).headers["ETag"]
    response = admin.patch(
        path, json={"squadron_id": world.squadrons[1].id}, headers={"If-Match": etag}
    )
    assert response.status_code == 200, response.get_json()
    moved.set()
    thread.join()

    assert_error(answers[0], 403, "forbidden")
    assert admin.get(path).get_json()["name"] == "王记面馆"


def test_a_resolve_and_a_move_of_its_target_at_the_same_moment_take_turns(pg_app, monkeypatch):
    """Two officers renamed a shop offline and the name conflict waits for the leader. The
    leader accepts the other officer's name while the admin moves the shop to another
    squadron: the resolve that got there first is waited for, and the move, whose ETag the
    new name made stale meanwhile, is told to read again (409); sent again it moves the shop,
    and the entry stays resolved where it was.

    Before, resolving locked the entry and then waited for the change counter, which the move
    held while it waited for the entry (to take it along to the new squadron): a deadlock, and
    one of them answered 503 ``database_unavailable``."""
    from sync import resolution

    app, world = pg_app
    leader, admin = sign_in(app, "leader1", "pad-move-l"), sign_in(app, "admin", "pc-move-a")
    shop = add_shop(leader, world.squadrons[0].id, "老街坊面馆")
    first = FakeDevice(sign_in(app, "officer1", "pad-move-o1"))
    second = FakeDevice(sign_in(app, "officer2", "pad-move-o2"))
    first.push_ok(
        first.change(
            "target", shop, {"name": "老街坊手工面馆"}, base_version=1, hlc=first.clock_at(T + 600)
        )
    )
    [lost] = second.push_ok(  # written earlier: the later name stands, this one waits
        second.change(
            "target", shop, {"name": "老街坊拉面"}, base_version=1, hlc=second.clock_at(T + 300)
        )
    )
    assert lost["status"] == "conflict", lost
    conflict_id = lost["conflicts"][0]["conflict_id"]
    path = f"/api/v1/targets/{shop}"
    etag = etag_of(admin, path)

    locked = threading.Event()  # the resolve holds the entry's lock
    moved = threading.Event()  # the move has answered
    chosen = resolution._chosen

    def chosen_once_the_move_waits(*args, **kwargs):
        if threading.current_thread().name == "resolve":
            locked.set()
            until_there_or_waiting(moved)
        return chosen(*args, **kwargs)

    monkeypatch.setattr(resolution, "_chosen", chosen_once_the_move_waits)

    def move():
        locked.wait(RACE_WAIT)
        try:
            return admin.patch(
                path, json={"squadron_id": world.squadrons[1].id}, headers={"If-Match": etag}
            )
        finally:
            moved.set()

    answers = at_once(("resolve", lambda: resolve(leader, conflict_id, "client")), ("move", move))
    monkeypatch.undo()
    assert status_of(answers["resolve"]) == 200, answers["resolve"].get_json()
    assert_error(answers["move"], 409, "version_conflict")
    etag = etag_of(admin, path)
    again = admin.patch(
        path, json={"squadron_id": world.squadrons[1].id}, headers={"If-Match": etag}
    )
    assert again.status_code == 200, again.get_json()
    shop_now = admin.get(path).get_json()
    assert (shop_now["name"], shop_now["squadron_id"]) == ("老街坊拉面", world.squadrons[1].id)
    # Resolved, the entry stays in the old squadron's log (its leader still reads it).
    [entry] = leader.get(f"/api/v1/conflicts?record_id={shop}").get_json()["items"]
    assert (entry["status"], entry["resolution"]["keep"]) == ("resolved", "client")


def approved_with_amendment(login, world, officer: FakeDevice) -> tuple[str, str]:
    record = push_inspection(world, officer, officers=("officer1",))
    approved = review_ok(login("leader1"), record, "approve")
    [result] = officer.push_ok(
        officer.change("inspection", record, {"findings": "补记"}, base_version=approved["version"])
    )
    assert result["status"] == "conflict"
    return record, result["conflicts"][0]["conflict_id"]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"target_id": "SHOP2"}, "target_id"),
        ({"target_id": "RANDOM"}, "target_id"),
        ({"officer_ids": ["RANDOM"]}, "officer_ids"),
        ({"answers": {"X99": {"result": "pass", "note": "", "photo_ids": []}}}, "answers"),
        ({"checklist_version": 9}, "checklist_version"),
        ({"task_id": "RANDOM"}, "task_id"),
        ({"follow_up_of": "RANDOM"}, "follow_up_of"),
        ({"outcome": None}, "outcome"),
        ({"outcome": "rectification_ordered"}, "rectification_deadline"),
        ({"started_at": "2026-11-20T10:30:00+00:00"}, "ended_at"),
        ({"follow_up_of": "SELF"}, "follow_up_of"),
        (
            {"outcome": "rectification_ordered", "rectification_deadline": "2026-11-19"},
            "rectification_deadline",
        ),
        ({"outcome": "penalty_waived", "legal_basis": "  "}, "legal_basis"),
        ({"location": {"lon": -180.0, "lat": 0.0, "crs": "bd09"}}, "location"),
    ],
)
def test_a_chosen_value_is_checked_as_a_device_edit_is(app, login, world, value, field):
    officer = FakeDevice(login("officer1"))
    record, conflict_id = approved_with_amendment(login, world, officer)
    text = json.dumps(value).replace("SHOP2", str(world.targets["shop2"].id))
    text = text.replace("SELF", record)
    chosen = json.loads(text.replace("RANDOM", str(uuid.uuid4())))
    before = stored(app, record)

    response = resolve(login("leader1"), conflict_id, "value", chosen)

    errors = assert_error(response, 422, "validation_failed")["errors"]["json"]["value"]
    assert field in errors, errors
    after = stored(app, record)
    assert (after.version, after.review_status) == (before.version, before.review_status)
    entry = login("leader1").get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    assert entry[0]["status"] == "open"


def test_a_chosen_site_location_is_held_to_the_sites_boundary(login, world):
    """Two officers correct a site's gate; the earlier correction loses and is logged. The
    leader's chosen value is checked as a device's correction is: a point far from the site's
    boundary is 422 on the value's ``location``; the logged correction itself may be kept."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    site = world.targets["site1"].id  # boundary square(121.455, 31.355, 0.01)
    officer2.push_ok(
        officer2.change(
            "target",
            site,
            {"location": {"lon": 121.457, "lat": 31.357}},
            base_version=1,
            hlc=officer2.clock_at(T + 2),
        )
    )
    [lost] = officer1.push_ok(
        officer1.change(
            "target",
            site,
            {"location": {"lon": 121.458, "lat": 31.358}},
            base_version=1,
            hlc=officer1.clock_at(T + 1),
        )
    )
    conflict_id = lost["conflicts"][0]["conflict_id"]
    leader = login("leader1")
    response = resolve(leader, conflict_id, "value", {"lon": 121.60, "lat": 31.50})
    errors = assert_error(response, 422, "validation_failed")["errors"]["json"]["value"]
    assert "outside the site's boundary" in errors["location"][0]
    assert resolve(leader, conflict_id, "client").status_code == 200
    location = leader.get(f"/api/v1/targets/{site}").get_json()["location"]
    assert location == {"lon": 121.458, "lat": 31.358}


@pytest.mark.parametrize("value", [{}, {"status": "submitted"}, {"answers": {}}])
def test_a_value_that_writes_nothing_is_422_and_leaves_the_record_approved(
    app, login, world, value
):
    """Accepting nothing (no field, only the status a resolution never sets, no answer item)
    would only reopen the approved record for review with nothing to review."""
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record, conflict_id = approved_with_amendment(login, world, officer)
    before = stored(app, record)

    response = resolve(leader, conflict_id, "value", value)

    [why] = assert_error(response, 422, "validation_failed")["errors"]["json"]["value"]
    assert why.startswith("nothing to apply")
    after = stored(app, record)
    assert (after.version, after.review_status.value) == (before.version, "approved")
    [entry] = leader.get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    assert entry["status"] == "open"


def test_accepting_an_amendment_that_only_resubmits_closes_it_leaving_the_record_approved(
    app, login, world
):
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record = push_inspection(world, officer, officers=("officer1",))
    approved = review_ok(leader, record, "approve")
    [result] = officer.push_ok(
        officer.change(
            "inspection", record, {"status": "submitted"}, base_version=approved["version"]
        )
    )
    assert result["status"] == "conflict", result

    response = resolve(leader, result["conflicts"][0]["conflict_id"], "client")

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["resolution"]["applied_version"] is None
    after = stored(app, record)
    assert (after.version, after.review_status.value) == (approved["version"], "approved")


def test_a_value_the_approved_record_already_holds_closes_the_entry_leaving_it_approved(
    app, login, world
):
    """docs/sync.md: an accepted amendment reopens review "when it writes something". Values
    equal to what the approved record holds (a time given in another offset is the same
    instant) write nothing: the entry closes with nothing applied, the record stays approved
    at its version."""
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record, conflict_id = approved_with_amendment(login, world, officer)
    before = stored(app, record)
    shanghai = timezone(timedelta(hours=8))

    response = resolve(
        leader,
        conflict_id,
        "value",
        {
            "findings": before.findings,
            "started_at": before.started_at.astimezone(shanghai).isoformat(),
        },
    )

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "resolved"
    assert response.get_json()["resolution"]["applied_version"] is None
    after = stored(app, record)
    assert (after.version, after.review_status.value) == (before.version, "approved")


def test_accepting_a_photo_amendment_the_photo_already_holds_leaves_the_record_approved(
    app, login, world
):
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record = push_inspection(world, officer, officers=("officer1",))
    photo = uuid.uuid4()
    [created] = officer.push_ok(
        officer.change("photo", photo, photo_metadata(record, item_code="S01"))
    )
    approved = review_ok(leader, record, "approve")
    [again] = officer.push_ok(
        officer.change(
            "photo",
            photo,
            {"item_code": "S01", "taken_at": "2026-11-20T01:35:00+00:00"},
            base_version=created["version"],
        )
    )
    assert again["status"] == "conflict", again

    response = resolve(leader, again["conflicts"][0]["conflict_id"], "client")

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["resolution"]["applied_version"] is None
    after = stored(app, record)
    assert (after.version, after.review_status.value) == (approved["version"], "approved")


def approved_after_a_won_field(login, world) -> tuple[uuid.UUID, str, int]:
    """officer2's later "晚" wins over officer1's "早" (an entry kept ``client``); officer2
    submits and leader1 approves. Returns (record, the entry's id, the approved version)."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record, won, entry = later_device_wins(world, officer1, officer2)
    assert entry["kept"] == "client", won
    [submitted] = officer2.push_ok(
        officer2.change(
            "inspection", record, SUBMIT, base_version=won["version"], hlc=officer2.clock_at(T + 3)
        )
    )
    assert submitted["status"] == "applied", submitted
    approved = review_ok(login("leader1"), record, "approve")
    return record, entry["conflict_id"], approved["version"]


@pytest.mark.parametrize(
    ("keep", "value"),
    [("client", None), ("value", "晚")],
    ids=["the-device-value-it-holds", "a-value-equal-to-it"],
)
def test_a_field_choice_the_approved_record_already_holds_leaves_it_approved(
    app, login, world, keep, value
):
    """README: "An approved record goes back to review only when the choice changes it."
    Confirming the device value the approved record holds (or giving that value) changes
    nothing: the entry closes with nothing applied, and the record stays approved at its
    version (it was reopened at a new version with nothing to review)."""
    record, entry_id, approved_version = approved_after_a_won_field(login, world)

    response = resolve(login("leader1"), entry_id, keep, value)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["resolution"]["applied_version"] is None
    after = stored(app, record)
    assert (after.review_status.value, after.version, after.findings) == (
        "approved",
        approved_version,
        "晚",
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"started_at": "tuesday"}, "started_at"),
        ({"findings": 17}, "findings"),
    ],
)
def test_an_amendment_with_bad_fields_is_refused_not_logged(login, world, fields, field):
    officer = FakeDevice(login("officer1"))
    record = push_inspection(world, officer, officers=("officer1",))
    approved = review_ok(login("leader1"), record, "approve")

    [result] = officer.push_ok(
        officer.change("inspection", record, fields, base_version=approved["version"])
    )

    assert result["status"] == "rejected"
    assert field in result["error"]["errors"]["json"]
    assert login("leader1").get(f"/api/v1/conflicts?record_id={record}").get_json()["items"] == []


def test_an_edit_of_a_record_deleted_meanwhile_waits_in_the_conflict_log(app, login, world):
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer1)
    [deleted] = officer1.push_ok(officer1.change("inspection", record, op="delete", base_version=1))
    assert deleted["status"] == "applied"

    [edit] = officer2.push_ok(
        officer2.change("inspection", record, {"findings": "离线时记下的违规"}, base_version=1)
    )

    assert edit["status"] == "conflict" and edit["version"] == deleted["version"]
    [logged] = login("leader1").get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    assert logged["kind"] == "delete" and logged["kept"] == "server"
    assert logged["client_value"] == {"findings": "离线时记下的违规"}
    assert stored(app, record) is None
    # Bad input is still bad input; a stranger's edit is an out-of-scope write (403), told
    # nothing of the record (no version, no conflict).
    [bad] = officer2.push_ok(
        officer2.change("inspection", record, {"findings": 17}, base_version=1)
    )
    assert bad["status"] == "rejected" and "findings" in bad["error"]["errors"]["json"]
    stranger = FakeDevice(login("officer3"))
    [theirs] = stranger.push_ok(
        stranger.change("inspection", record, {"findings": "x"}, base_version=1)
    )
    assert theirs["error"]["error"] == "forbidden"
    assert (theirs["version"], theirs["conflicts"]) == (None, [])


def test_an_edit_of_a_photo_deleted_meanwhile_waits_in_the_conflict_log(app, login, world):
    """As an inspection's (docs/sync.md: photo metadata follows the same rules). officer1
    deletes the draft's photo; officer2 had filed it under S02 offline. That edit was refused
    as a create missing its fields (nothing reached the log), or, sent with all of them,
    brought the deleted photo back. It waits as a ``delete`` entry with what it wrote, which
    the leader closes by keeping the server's side."""
    from fieldapp.photos.models import Photo

    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record, photo = shared_draft(world, officer1), uuid.uuid4()
    officer1.push_ok(officer1.change("photo", photo, photo_metadata(record, item_code="S01")))
    [deleted] = officer1.push_ok(officer1.change("photo", photo, op="delete", base_version=1))
    assert deleted["status"] == "applied"

    edit, whole = officer2.push_ok(
        officer2.change("photo", photo, {"item_code": "S02"}, base_version=1),
        officer2.change("photo", photo, photo_metadata(record, item_code="S03"), base_version=1),
    )

    for result in (edit, whole):
        assert (result["status"], result["version"]) == ("conflict", deleted["version"]), result
    with app.app_context():
        assert db.session.get(Photo, photo) is None
    logged = leader.get(f"/api/v1/conflicts?record_id={photo}").get_json()["items"]
    assert sorted((c["kind"], c["kept"], c["client_value"]["item_code"]) for c in logged) == [
        ("delete", "server", "S02"),
        ("delete", "server", "S03"),
    ]
    entries = audit_entries(app, record_id=str(photo), action="photo.edit_of_deleted_logged")
    assert len(entries) == 2
    # The device's edit has no photo left to go to; keeping the server's side closes it.
    first = edit["conflicts"][0]["conflict_id"]
    assert_error(resolve(leader, first, "client"), 409, "version_conflict")
    assert resolve(leader, first, "server").status_code == 200


def test_a_new_photo_of_an_inspection_deleted_meanwhile_waits_in_the_conflict_log(
    app, login, world
):
    """officer2 deletes the shared draft; officer1, offline, had added a photo to it. The
    photo can never be stored, and was told `not_found` ("its inspection is not there (yet)"):
    the pad sent it again with every sync for nothing, then set it aside, and nothing of it
    reached the leader. It waits as a ``delete`` entry beside the deletion, with what it held."""
    from fieldapp.photos.models import Photo

    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record, photo = shared_draft(world, officer1), uuid.uuid4()
    [deleted] = officer2.push_ok(officer2.change("inspection", record, op="delete", base_version=1))
    assert deleted["status"] == "applied"

    change = officer1.change("photo", photo, photo_metadata(record, item_code="S01"))
    [result] = officer1.push_ok(change)

    assert (result["status"], result["error"]) == ("conflict", None), result
    with app.app_context():
        assert db.session.get(Photo, photo) is None
    [entry] = leader.get(f"/api/v1/conflicts?record_id={photo}").get_json()["items"]
    assert (entry["entity"], entry["kind"], entry["kept"]) == ("photo", "delete", "server")
    assert entry["client_value"]["item_code"] == "S01"
    assert entry["server_value"] == {"deleted": True, "inspection_id": str(record)}
    assert audit_entries(app, record_id=str(photo), action="photo.edit_of_deleted_logged")
    # Sent again (the answer was lost), it is the same entry, replayed.
    [again] = officer1.push_ok(change)
    assert (again["status"], again["replayed"]) == ("conflict", True)
    assert len(leader.get(f"/api/v1/conflicts?record_id={photo}").get_json()["items"]) == 1
    assert resolve(leader, entry["id"], "server").status_code == 200


def test_a_photo_s_create_sent_again_after_its_delete_waits_and_does_not_bring_it_back(
    app, login, world
):
    """officer2 deletes a photo; officer1's pad, which lost the answer to its create, sends it
    again under a new change id. It waits beside the deletion: brought back (as it was), the
    photo stood in the record again, and a second delete hit the tombstone's key, a 409 the
    pad retried for ever."""
    from fieldapp.photos.models import Photo

    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record, photo = shared_draft(world, officer1), uuid.uuid4()
    meta = photo_metadata(record, item_code="S01")
    officer1.push_ok(officer1.change("photo", photo, meta))
    [deleted] = officer2.push_ok(officer2.change("photo", photo, op="delete", base_version=1))
    assert deleted["status"] == "applied"

    [again] = officer1.push_ok(officer1.change("photo", photo, meta))
    [second] = officer2.push_ok(officer2.change("photo", photo, op="delete", base_version=1))

    assert (again["status"], again["error"]) == ("conflict", None), again
    with app.app_context():
        assert db.session.get(Photo, photo) is None
    assert (second["status"], second["error"]) == ("applied", None), second
    [entry] = login("leader1").get(f"/api/v1/conflicts?record_id={photo}").get_json()["items"]
    assert (entry["kind"], entry["client_value"]["item_code"]) == ("delete", "S01")


def test_a_create_arriving_after_its_inspection_was_deleted_waits_in_the_conflict_log(
    app, login, world
):
    """officer1's pad created the draft; officer2 deleted it. officer1's pad, which lost the
    answer to its create (or was reset), sends the create again under a new change id. It can
    never be applied, and was told `not_found`, the code that says "its create is still to
    come": sent again and again for nothing. What it holds waits beside the deletion."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record = shared_draft(world, officer1)
    officer2.push_ok(officer2.change("inspection", record, op="delete", base_version=1))
    again = new_inspection(world, ["officer1", "officer2"]) | {"findings": "补拍门头"}

    [result] = officer1.push_ok(officer1.change("inspection", record, again))

    assert (result["status"], result["error"]) == ("conflict", None), result
    assert stored(app, record) is None
    [entry] = leader.get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    assert (entry["kind"], entry["kept"]) == ("delete", "server")
    assert entry["client_value"]["findings"] == "补拍门头"
    assert audit_entries(app, record_id=str(record), action="inspection.edit_of_deleted_logged")


def test_accepting_a_delete_takes_the_inspection_s_photos_off_devices(app, login, world):
    """A leader accepts an officer's delete of a submitted inspection: its photo metadata goes
    with it, and a colleague's device that pulled the photo is told so. The shop, inspected
    by nothing else, is due again there too (its risk record)."""
    officer, colleague = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record, photo = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(
        officer.change(
            "inspection", record, new_inspection(world, ["officer1"], status="submitted")
        )
    )
    [added] = officer.push_ok(officer.change("photo", photo, photo_metadata(record)))
    assert added["status"] == "applied", added
    assert str(photo) in {c["id"] for c in colleague.pull_all()}
    [result] = officer.push_ok(officer.change("inspection", record, op="delete", base_version=1))
    assert result["status"] == "conflict", result

    resolved = resolve(login("leader1"), result["conflicts"][0]["conflict_id"], "client")

    assert resolved.status_code == 200, resolved.get_json()
    pulled = colleague.pull_all()
    assert sorted((c["entity"], c["id"], c["op"]) for c in pulled) == [
        ("inspection", str(record), "delete"),
        ("photo", str(photo), "delete"),
        ("risk", str(world.targets["shop1"].id), "upsert"),
    ]
    [risk] = [c for c in pulled if c["entity"] == "risk"]
    assert risk["data"]["next_due"] is None


def test_a_field_entry_of_a_record_deleted_since_is_closed_with_keep_server(app, login, world):
    """The device's later findings won; then the officer deleted the draft. The server's side
    is now "deleted": keeping it closes the entry and writes nothing. Keeping the device's
    value or giving one has no record to go to: 409, saying how to close the entry."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record, won, conflict = later_device_wins(world, officer1, officer2)
    assert conflict["kept"] == "client"
    [deleted] = officer2.push_ok(
        officer2.change("inspection", record, op="delete", base_version=won["version"])
    )
    assert deleted["status"] == "applied"

    for keep, value in (("client", None), ("value", "早")):
        refused = assert_error(
            resolve(leader, conflict["conflict_id"], keep, value), 409, "version_conflict"
        )
        assert "keep 'server' closes the entry" in refused["message"]
    closed = resolve(leader, conflict["conflict_id"], "server")

    assert closed.status_code == 200, closed.get_json()
    assert closed.get_json()["status"] == "resolved"
    assert closed.get_json()["resolution"] == {
        "keep": "server",
        "value": None,
        "applied_version": None,
    }
    assert stored(app, record) is None
    assert leader.get(f"/api/v1/conflicts?record_id={record}&status=open").get_json()["items"] == []


def test_accepting_a_delete_of_a_record_deleted_since_closes_the_entry(app, login, world):
    """Both officers deleted the submitted record; the leader accepted one delete. The other
    asked for what is now the case: accepting it closes it, applying nothing."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record = push_inspection(world, officer1)
    entries = [
        device.push_ok(device.change("inspection", record, op="delete", base_version=1))[0]
        for device in (officer1, officer2)
    ]
    first, second = (entry["conflicts"][0]["conflict_id"] for entry in entries)
    assert resolve(leader, first, "client").status_code == 200

    response = resolve(leader, second, "client")

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["resolution"]["applied_version"] is None
    assert stored(app, record) is None


def test_an_approved_inspection_that_others_refer_to_is_not_deleted_by_accepting(app, login, world):
    """The check for a complaint's task failed an item and opened a case; once approved it
    closed the task, settled the complaint and opened the case, and a supervisor reviewed its
    file. Its officer then deletes it. Accepting that delete would leave the task done by
    nothing and the case opened on nothing: refused (422 on keep) naming each of them; the
    inspection, task and entry stay as they were, and keep: server closes the entry."""
    leader, officer = login("leader1"), FakeDevice(login("officer1"))
    complaint = leader.post(
        "/api/v1/complaints",
        json={
            "target_id": str(world.targets["shop1"].id),
            "category": "油烟",
            "text": "面馆油烟直排",
            "reference": "2026112100777",
        },
    ).get_json()
    task = leader.post(
        "/api/v1/tasks",
        json={
            "target_id": str(world.targets["shop1"].id),
            "assignee_ids": [str(world.users["officer1"].id)],
            "due": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            "note": "复查油烟",
            "origin": "complaint",
            "complaint_id": complaint["id"],
        },
    ).get_json()
    record = push_inspection(
        world,
        officer,
        task_id=task["id"],
        origin="task",
        answers=FAILED_S03,
        outcome="case_opened",
    )
    approved = review_ok(leader, record, "approve")
    case_review = login("supervisor").post(
        "/api/v1/supervision/case-reviews",
        json={"inspection_id": record, "verdict": "compliant"},
    )
    assert case_review.status_code == 201, case_review.get_json()
    [deleted] = officer.push_ok(
        officer.change("inspection", record, op="delete", base_version=approved["version"])
    )
    assert deleted["status"] == "conflict", deleted
    conflict_id = deleted["conflicts"][0]["conflict_id"]

    refused = assert_error(resolve(leader, conflict_id, "client"), 422, "validation_failed")

    [why] = refused["errors"]["json"]["keep"]
    for named in (
        f"task {task['id']}",
        "case 沪宝城管罚字",
        f"complaint {complaint['id']}",
        f"case review {case_review.get_json()['id']}",
    ):
        assert named in why, why
    assert "keep 'server' closes this entry" in why
    assert leader.get(f"/api/v1/inspections/{record}").get_json()["review"]["status"] == "approved"
    assert leader.get(f"/api/v1/tasks/{task['id']}").get_json()["status"] == "done"
    [entry] = leader.get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    assert entry["status"] == "open"
    closed = resolve(leader, conflict_id, "server")
    assert closed.status_code == 200, closed.get_json()
    assert leader.get(f"/api/v1/inspections/{record}").status_code == 200


def _approved_for_a_task(world, officer, leader) -> tuple[dict, str, dict]:
    """A task sent to 老王面馆 and the inspection made for it, approved: the task is done.
    (the task, the record's id, the approval's answer)."""
    task = leader.post(
        "/api/v1/tasks",
        json={
            "target_id": str(world.targets["shop1"].id),
            "assignee_ids": [str(world.users["officer1"].id)],
            "due": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            "note": "检查",
            "origin": "manual",
        },
    ).get_json()
    record = push_inspection(
        world, officer, officers=("officer1",), task_id=task["id"], origin="task"
    )
    approved = review_ok(leader, record, "approve")
    assert leader.get(f"/api/v1/tasks/{task['id']}").get_json()["status"] == "done"
    return task, record, approved


def test_an_amendment_taking_an_approved_inspection_off_the_task_it_closed_is_refused(
    app, login, world
):
    """Its approval closed the task, and a done task stays done (docs/review.md, "Deleting an
    inspection"): an amendment that takes the task_id off would leave the task done by a record
    that no longer carries it, as accepting its delete would leave it done by nothing. An
    amendment is checked like an edit before it is logged, so the pad's push is refused (422
    on task_id naming the task) and nothing waits that could not be accepted; a leader's own
    value taking the task off is refused the same way (422 on value.task_id). Record, task and
    entry stay as they were, and the rest of an amendment can still be accepted."""
    leader, officer = login("leader1"), FakeDevice(login("officer1"))
    task, record, approved = _approved_for_a_task(world, officer, leader)
    [pushed] = officer.push_ok(
        officer.change(
            "inspection",
            record,
            {"task_id": None, "origin": "patrol", "findings": "补记"},
            base_version=approved["version"],
        )
    )
    assert pushed["status"] == "rejected"
    [why] = pushed["error"]["errors"]["json"]["task_id"]
    assert f"task {task['id']}" in why, why
    assert leader.get(f"/api/v1/conflicts?record_id={record}").get_json()["items"] == []

    [amended] = officer.push_ok(
        officer.change("inspection", record, {"findings": "补记"}, base_version=approved["version"])
    )
    conflict_id = amended["conflicts"][0]["conflict_id"]
    refused = resolve(leader, conflict_id, "value", {"findings": "补记", "task_id": None})

    errors = assert_error(refused, 422, "validation_failed")["errors"]["json"]["value"]
    [why] = errors["task_id"]
    assert f"task {task['id']}" in why, why
    inspection = leader.get(f"/api/v1/inspections/{record}").get_json()
    assert (inspection["task_id"], inspection["review"]["status"]) == (task["id"], "approved")
    assert leader.get(f"/api/v1/tasks/{task['id']}").get_json()["status"] == "done"
    [entry] = leader.get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    assert entry["status"] == "open"
    accepted = resolve(leader, conflict_id, "value", {"findings": "补记"})
    assert accepted.status_code == 200, accepted.get_json()
    assert stored(app, record).findings == "补记"


def test_an_amendment_moving_an_approved_inspection_off_its_task_s_shop_is_refused(
    app, login, world
):
    """A task is closed only by an inspection of its target: moved to the shop next door, the
    record would leave the task done by an inspection of another shop. The pad's amendment is
    refused (422 on target_id), and so is a leader's value moving it; the record stays where
    the task sent the officers."""
    leader, officer = login("leader1"), FakeDevice(login("officer1"))
    other = add_shop(leader, world.squadrons[0].id, "老王面馆隔壁")
    task, record, approved = _approved_for_a_task(world, officer, leader)
    [pushed] = officer.push_ok(
        officer.change("inspection", record, {"target_id": other}, base_version=approved["version"])
    )
    assert pushed["status"] == "rejected"
    [why] = pushed["error"]["errors"]["json"]["target_id"]
    assert f"task {task['id']}" in why, why

    [amended] = officer.push_ok(
        officer.change("inspection", record, {"findings": "补记"}, base_version=approved["version"])
    )
    refused = resolve(
        leader, amended["conflicts"][0]["conflict_id"], "value", {"target_id": str(other)}
    )

    [why] = assert_error(refused, 422, "validation_failed")["errors"]["json"]["value"]["target_id"]
    assert f"task {task['id']}" in why, why
    assert stored(app, record).target_id == world.targets["shop1"].id


def test_a_reopened_inspection_pushed_off_the_task_it_closed_is_rejected(app, login, world):
    """The same holds for the officer's pad while the reopened record waits for review: the
    change is rejected, 422 on task_id, and the task stays done by the record."""
    leader, officer = login("leader1"), FakeDevice(login("officer1"))
    task, record, approved = _approved_for_a_task(world, officer, leader)
    [amended] = officer.push_ok(
        officer.change("inspection", record, {"findings": "补记"}, base_version=approved["version"])
    )
    assert resolve(leader, amended["conflicts"][0]["conflict_id"], "client").status_code == 200
    version = stored(app, record).version

    [rejected] = officer.push_ok(
        officer.change("inspection", record, {"task_id": None}, base_version=version)
    )

    assert (rejected["status"], rejected["error"]["error"]) == ("rejected", "validation_failed")
    [why] = rejected["error"]["errors"]["json"]["task_id"]
    assert f"task {task['id']}" in why, why
    assert str(stored(app, record).task_id) == task["id"]


def order_and_follow_up(world, device: FakeDevice, status: str) -> tuple[str, str]:
    """A rectification order and a follow-up of it, both ``status``; their ids."""
    order = push_inspection(
        world,
        device,
        status=status,
        outcome="rectification_ordered",
        rectification_deadline="2026-12-30",
    )
    return order, push_inspection(world, device, status=status, follow_up_of=order)


def test_a_draft_order_a_follow_up_refers_to_is_not_deleted_by_a_push(app, login, world):
    """Refused for good (422 on op, naming the follow-up), not as a version_conflict the
    device would send again and again; once the follow-up is gone the order may go."""
    device = FakeDevice(login("officer1"))
    order, follow_up = order_and_follow_up(world, device, "draft")

    [refused] = device.push_ok(device.change("inspection", order, op="delete", base_version=1))

    assert (refused["status"], refused["error"]["error"]) == ("rejected", "validation_failed")
    [why] = refused["error"]["errors"]["json"]["op"]
    assert f"inspection {follow_up} is a follow-up of it" in why
    assert stored(app, order) is not None
    [gone] = device.push_ok(device.change("inspection", follow_up, op="delete", base_version=1))
    assert gone["status"] == "applied", gone
    [applied] = device.push_ok(device.change("inspection", order, op="delete", base_version=1))
    assert applied["status"] == "applied", applied
    assert stored(app, order) is None


def test_accepting_the_delete_of_an_order_a_follow_up_refers_to_is_refused(app, login, world):
    device, leader = FakeDevice(login("officer1")), login("leader1")
    order, follow_up = order_and_follow_up(world, device, "submitted")
    [logged] = device.push_ok(device.change("inspection", order, op="delete", base_version=1))
    assert logged["status"] == "conflict", logged

    refused = resolve(leader, logged["conflicts"][0]["conflict_id"], "client")

    [why] = assert_error(refused, 422, "validation_failed")["errors"]["json"]["keep"]
    assert f"inspection {follow_up} is a follow-up of it" in why
    assert stored(app, order) is not None


def test_a_photo_added_to_an_approved_inspection_can_be_accepted(app, login, world):
    from fieldapp.photos.models import Photo

    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record = push_inspection(world, officer, officers=("officer1",))
    review_ok(leader, record, "approve")
    photo = uuid.uuid4()
    [result] = officer.push_ok(
        officer.change("photo", photo, photo_metadata(record, item_code="S01"))
    )
    assert result["status"] == "conflict"
    with app.app_context():
        assert db.session.get(Photo, photo) is None  # waits for the leader

    response = resolve(leader, result["conflicts"][0]["conflict_id"], "client")

    assert response.status_code == 200, response.get_json()
    with app.app_context():
        stored_photo = db.session.get(Photo, photo)
        assert (stored_photo.item_code, stored_photo.inspection_id) == ("S01", uuid.UUID(record))
        assert stored_photo.created_by_id == world.users["officer1"].id
    inspection = stored(app, record)
    assert inspection.review_status.value == "pending"  # the leader looks again
    history = leader.get(f"/api/v1/inspections/{record}/history").get_json()
    assert [h["version"] for h in history] == list(range(1, inspection.version + 1))
    pulled = FakeDevice(login("officer1", device_id="dev-officer1-2")).pull_all()
    assert any(c["entity"] == "photo" and c["id"] == str(photo) for c in pulled)
    # The log holds the metadata the leader accepted, not only the names of its fields.
    [entry] = audit_entries(app, action="photo.resolve")
    assert entry.actor_id == world.users["leader1"].id and entry.before is None
    assert (entry.after["item_code"], entry.after["taken_at"]) == (
        "S01",
        "2026-11-20T01:35:00+00:00",
    )


def test_accepting_the_delete_of_a_photo_of_an_approved_inspection_reopens_it(app, login, world):
    """An approved record is frozen; accepting a change to it sends it back to the leader, and
    taking a photo away is a change as adding one is: the record is pending again, with a
    version of its own in its history."""
    from fieldapp.photos.models import Photo

    leader, officer = login("leader1"), FakeDevice(login("officer1"))
    record = push_inspection(world, officer, officers=("officer1",))
    photo = uuid.uuid4()
    [created] = officer.push_ok(officer.change("photo", photo, photo_metadata(record)))
    assert created["status"] == "applied", created
    approved = review_ok(leader, record, "approve")
    [deleted] = officer.push_ok(
        officer.change("photo", photo, op="delete", base_version=created["version"])
    )
    assert deleted["status"] == "conflict", deleted

    response = resolve(leader, deleted["conflicts"][0]["conflict_id"], "client")

    assert response.status_code == 200, response.get_json()
    with app.app_context():
        assert db.session.get(Photo, photo) is None
    after = stored(app, record)
    assert (after.review_status.value, after.version) == ("pending", approved["version"] + 1)
    [reopened] = audit_entries(app, action="inspection.reopen")
    assert reopened.record_id == record


def test_a_photo_amendment_chosen_without_its_required_fields_is_422(app, login, world):
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record = push_inspection(world, officer, officers=("officer1",))
    review_ok(leader, record, "approve")
    [result] = officer.push_ok(
        officer.change("photo", uuid.uuid4(), photo_metadata(record, item_code="S01"))
    )

    response = resolve(
        leader, result["conflicts"][0]["conflict_id"], "value", {"inspection_id": record}
    )

    errors = assert_error(response, 422, "validation_failed")["errors"]["json"]["value"]
    assert {"sha256", "size", "taken_at", "content_type"} <= errors.keys()
    assert stored(app, record).review_status.value == "approved"


def test_a_photo_amendment_chosen_under_an_item_the_checklist_lacks_is_422(app, login, world):
    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record = push_inspection(world, officer, officers=("officer1",))
    review_ok(leader, record, "approve")
    [result] = officer.push_ok(
        officer.change("photo", uuid.uuid4(), photo_metadata(record, item_code="S01"))
    )

    response = resolve(
        leader,
        result["conflicts"][0]["conflict_id"],
        "value",
        photo_metadata(record, item_code="S99"),
    )

    errors = assert_error(response, 422, "validation_failed")["errors"]["json"]["value"]
    assert list(errors) == ["item_code"]
    assert stored(app, record).review_status.value == "approved"


def test_accepting_an_old_amendment_of_a_photo_deleted_since_is_409(app, login, world):
    from fieldapp.photos.models import Photo

    officer, leader = FakeDevice(login("officer1")), login("leader1")
    record = push_inspection(world, officer, officers=("officer1",))
    photo = uuid.uuid4()
    [created] = officer.push_ok(officer.change("photo", photo, photo_metadata(record)))
    review_ok(leader, record, "approve")
    [amended] = officer.push_ok(
        officer.change("photo", photo, {"item_code": "S02"}, base_version=created["version"])
    )
    [deleted] = officer.push_ok(
        officer.change("photo", photo, op="delete", base_version=created["version"])
    )
    assert (amended["status"], deleted["status"]) == ("conflict", "conflict")
    assert resolve(leader, deleted["conflicts"][0]["conflict_id"], "client").status_code == 200

    response = resolve(leader, amended["conflicts"][0]["conflict_id"], "client")

    assert_error(response, 409, "version_conflict")
    with app.app_context():
        assert db.session.get(Photo, photo) is None


def test_keep_client_of_an_item_photo_removal_does_not_drop_a_photo_added_since(app, login, world):
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = uuid.uuid4()
    fields = new_inspection(world, ["officer1", "officer2"])
    kept, later = str(uuid.uuid4()), str(uuid.uuid4())
    item = {"result": "fail", "note": "占道", "photo_ids": [kept]}
    fields["answers"]["S01"] = item
    officer1.push_ok(officer1.change("inspection", record, fields))  # v1
    # officer2 takes the photo off the item (v2) and puts it back (v3).
    for base, photos in ((1, []), (2, [kept])):
        [r] = officer2.push_ok(
            officer2.change(
                "inspection",
                record,
                {"answers": {"S01": {**item, "photo_ids": photos}}},
                base_version=base,
            )
        )
        assert r["status"] == "applied", r
    # officer1, offline since v1, took it off: kept, and the removal logged.
    [stale] = officer1.push_ok(
        officer1.change(
            "inspection", record, {"answers": {"S01": {**item, "photo_ids": []}}}, base_version=1
        )
    )
    assert [(c["field"], c["kept"]) for c in stale["conflicts"]] == [
        ("answers.S01.photo_ids", "server")
    ]
    conflict_id = stale["conflicts"][0]["conflict_id"]
    # officer2 then adds a new photo of the same item (result and note unchanged).
    version = stored(app, record).version
    [added] = officer2.push_ok(
        officer2.change(
            "inspection",
            record,
            {"answers": {"S01": {**item, "photo_ids": [kept, later]}}},
            base_version=version,
        )
    )
    assert added["status"] == "applied", added
    assert stored(app, record).answers["S01"]["photo_ids"] == [kept, later]

    # The leader sides with officer1's removal of ``kept``.
    leader = login("leader1")
    response = leader.post(f"/api/v1/conflicts/{conflict_id}/resolve", json={"keep": "client"})
    # The removal applies, and nothing else: officer2's later photo stays.
    assert response.status_code == 200, response.get_json()
    assert stored(app, record).answers["S01"] == {**item, "photo_ids": [later]}


def test_choosing_a_side_of_an_answer_item_writes_its_result_and_note_not_its_photos(
    app, login, world
):
    """The item's photos merged as a set when the conflict was logged; choosing the device's
    note must not take away the photo the colleague added meanwhile."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer1)
    photo = str(uuid.uuid4())
    lost = lost_edit(
        officer1,
        officer2,
        record,
        {"answers": {"S01": {"result": "fail", "note": "晚", "photo_ids": [photo]}}},
        {"answers": {"S01": answer("fail", "早")}},
    )
    [entry] = lost["conflicts"]
    assert (entry["field"], entry["kept"]) == ("answers.S01", "server")

    response = resolve(login("leader1"), entry["conflict_id"], "client")

    assert response.status_code == 200, response.get_json()
    assert stored(app, record).answers["S01"] == {
        "result": "fail",
        "note": "早",
        "photo_ids": [photo],
    }


def test_accepting_an_old_amendment_of_an_item_keeps_a_photo_accepted_into_it_since(
    app, login, world
):
    """An approved record; officer1 amends S01's note (its item as it saw it: no photos);
    officer2 amends S01 adding photo q; the leader accepts officer2's first (q is on S01, the
    record reopened), then officer1's. officer1 never removed q: photo lists merge as sets and
    a removal applies only where that side removed the photo, so q stays."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record = push_inspection(world, officer1)
    approved = review_ok(leader, record, "approve")["version"]
    q = str(uuid.uuid4())
    [note] = officer1.push_ok(
        officer1.change(
            "inspection",
            record,
            {"answers": {"S01": {"result": "fail", "note": "补记：占道", "photo_ids": []}}},
            base_version=approved,
        )
    )
    [photo] = officer2.push_ok(
        officer2.change(
            "inspection",
            record,
            {"answers": {"S01": {"result": "pass", "note": "", "photo_ids": [q]}}},
            base_version=approved,
        )
    )
    assert note["status"] == photo["status"] == "conflict"
    first = resolve(leader, photo["conflicts"][0]["conflict_id"], "client")
    assert first.status_code == 200, first.get_json()
    assert stored(app, record).answers["S01"]["photo_ids"] == [q]

    second = resolve(leader, note["conflicts"][0]["conflict_id"], "client")

    assert second.status_code == 200, second.get_json()
    s01 = stored(app, record).answers["S01"]
    assert s01["note"] == "补记：占道"
    assert q in s01["photo_ids"], s01


@pytest.mark.parametrize(
    "value",
    [
        {"result": "fail", "note": "x", "photo_ids": [], "extra": 1},  # unknown field
        {"result": "fail", "note": "x", "photo_ids": {str(uuid.UUID(int=1)): 1}},  # not a list
        {"result": "fail", "note": None, "photo_ids": []},  # a null note
    ],
    ids=["unknown-field", "photo_ids-object", "null-note"],
)
def test_keep_value_of_an_answer_item_is_checked_as_a_push_would_be(app, login, world, value):
    """API.md: "Unknown JSON fields are rejected (422), never silently dropped"; the choice
    is checked as a device's edit would be, and a push refuses each of these items."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer1)
    lost = lost_edit(
        officer1,
        officer2,
        record,
        {"answers": {"S01": answer("fail", "晚")}},
        {"answers": {"S01": answer("fail", "早")}},
    )
    [entry] = lost["conflicts"]
    # The same item pushed by a device is refused:
    [pushed] = officer1.push_ok(
        officer1.change("inspection", record, {"answers": {"S02": value}}, base_version=2)
    )
    assert pushed["status"] == "rejected", pushed

    response = resolve(login("leader1"), entry["conflict_id"], "value", value)

    assert response.status_code == 422, (response.status_code, response.get_json())


SUBMIT = {"status": "submitted", "ended_at": "2026-11-20T09:50:00+00:00", "outcome": "compliant"}


def submitted_twice_around_a_return(login, world) -> tuple[str, dict, dict]:
    """officer1 and officer2 both hold the draft at version 1. officer2 submits it; leader1
    returns it with a reason; officer1's pad, offline on version 1, had submitted the draft
    too, and syncs now. Returns (record, the return's answer, officer1's push answer)."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = str(shared_draft(world, officer1))
    [submitted] = officer2.push_ok(officer2.change("inspection", record, SUBMIT, base_version=1))
    assert submitted["status"] == "applied"
    returned = review_ok(login("leader1"), record, "return", "请补充现场照片")
    [late] = officer1.push_ok(officer1.change("inspection", record, SUBMIT, base_version=1))
    return record, returned, late


def test_a_submit_made_before_the_leader_s_return_does_not_undo_the_return(app, login, world):
    """API.md: a device may submit a draft or resubmit a returned one. officer1 submitted the
    draft it saw, not the returned record: applied as a resubmission, it put the record back
    in the queue and cleared the leader's reason, unread, answered `merged`. The return stays;
    the submission waits in the conflict log (on `review`, the server's kept), and the answer
    says `conflict`."""
    record, returned, late = submitted_twice_around_a_return(login, world)

    assert late["status"] == "conflict", late
    assert [(c["field"], c["kept"]) for c in late["conflicts"]] == [("review", "server")]
    after = stored(app, record)
    assert (after.review_status.value, after.review_comment) == ("returned", "请补充现场照片")
    assert (after.outcome.value, after.status.value) == ("compliant", "submitted")
    [entry] = login("leader1").get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    assert (entry["kind"], entry["field"], entry["kept"]) == ("field", "review", "server")
    assert entry["server_value"] == returned["review"]
    assert entry["client_value"]["status"] == "pending"
    assert entry["base_value"]["status"] == "pending"  # the draft's


def test_a_submit_made_after_seeing_the_return_resubmits(app, login, world):
    """The pad that pulled the return (its base is the returned version) resubmits as before,
    and so does one whose base is later than the return (a colleague's edit since)."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = str(shared_draft(world, officer1))
    officer2.push_ok(officer2.change("inspection", record, SUBMIT, base_version=1))
    returned = review_ok(login("leader1"), record, "return", "请补充现场照片")
    [edited] = officer2.push_ok(
        officer2.change(
            "inspection", record, {"findings": "已补拍"}, base_version=returned["version"]
        )
    )
    [resubmitted] = officer1.push_ok(
        officer1.change("inspection", record, SUBMIT, base_version=returned["version"])
    )
    assert (resubmitted["status"], resubmitted["conflicts"]) == ("merged", []), resubmitted
    after = stored(app, record)
    assert (after.review_status.value, after.review_comment) == ("pending", None)
    assert after.version == edited["version"] + 1


def test_accepting_a_submit_logged_before_the_return_resubmits_the_record(app, login, world):
    """The leader reads the submission in the queue: keeping the server's side closes the entry
    with the record still returned; accepting the device's resubmits it (pending again, the
    reason cleared), as the submission would have."""
    record, _, late = submitted_twice_around_a_return(login, world)
    leader = login("leader1")
    entry_id = late["conflicts"][0]["conflict_id"]

    value = resolve(leader, entry_id, "value", {"status": "approved"})
    assert "review" in assert_error(value, 422, "validation_failed")["errors"]["json"]["value"]
    response = resolve(leader, entry_id, "client")

    assert response.status_code == 200, response.get_json()
    after = stored(app, record)
    assert (after.review_status.value, after.review_comment) == ("pending", None)
    assert after.version == late["version"] + 1
    assert response.get_json()["resolution"]["applied_version"] == after.version
    queue = leader.get("/api/v1/review/queue").get_json()["items"]
    assert record in [item["id"] for item in queue]


def test_keeping_the_return_over_a_stale_submit_closes_the_entry(app, login, world):
    record, returned, late = submitted_twice_around_a_return(login, world)
    leader = login("leader1")

    response = resolve(leader, late["conflicts"][0]["conflict_id"], "server")

    assert response.status_code == 200, response.get_json()
    after = stored(app, record)
    assert (after.review_status.value, after.version) == ("returned", late["version"])
    # A return decided since the entry was logged is not undone by accepting it either.
    record, returned, late = submitted_twice_around_a_return(login, world)
    officer2 = FakeDevice(login("officer2"))
    officer2.push_ok(
        officer2.change("inspection", record, SUBMIT, base_version=returned["version"])
    )
    review_ok(leader, record, "approve")
    refused = resolve(leader, late["conflicts"][0]["conflict_id"], "client")
    assert_error(refused, 409, "version_conflict")
    assert stored(app, record).review_status.value == "approved"
