"""Offline sync, scenario by scenario, as officers and leaders live it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from fieldapp.actor import Actor
from fieldapp.db import db, utcnow
from fieldapp.inspections.models import Inspection
from sync.engine import _stdlib_body_hash, body_hash
from sync.models import Conflict, SyncChange
from tests.conftest import assert_error, audit_entries, etag_of, move_target
from tests.review_helpers import review_ok
from tests.sync_helpers import (
    NEW_SHOP,
    SHOP_ANSWERS,
    FakeDevice,
    new_inspection,
    photo_metadata,
    shared_draft,
)

SYSTEM = Actor.for_system("test")


def inspection_in_db(app, inspection_id) -> Inspection:
    with app.app_context():
        record = db.session.get(Inspection, inspection_id)
        db.session.expunge_all()
        return record


def set_review(app, inspection_id, status: str, comment: str | None = None):
    """Stand in for the leader's review (its own feature) by writing the review state; an
    approval with its time, as a review writes it (risk counts an approval from then)."""
    with app.app_context():
        record = db.session.get(Inspection, inspection_id)
        record.status = "submitted"
        record.review_status = status
        record.review_comment = comment
        if status == "approved":
            record.reviewed_at = utcnow()
        db.session.commit()
        return record.version


def logged_values(app, record_id) -> list:
    """Every value in the conflict log for ``record_id``, either side."""
    with app.app_context():
        entries = db.session.scalars(sa.select(Conflict).where(Conflict.record_id == record_id))
        return [value for e in entries for value in (e.server_value, e.client_value)]


def now_ms() -> int:
    return int(utcnow().timestamp() * 1000)


def test_offline_create_then_edits_on_two_devices_merge_field_by_field(app, login, world):
    officer, co_officer = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    inspection_id = uuid.uuid4()
    fields = new_inspection(world, ["officer1", "officer2"])
    [created] = officer.push_ok(officer.change("inspection", inspection_id, fields))
    assert created["status"] == "applied" and created["version"] == 1

    # Both worked offline from version 1: one wrote the findings, the other an answer.
    [first] = officer.push_ok(
        officer.change("inspection", inspection_id, {"findings": "店门外堆放纸箱"}, base_version=1)
    )
    [second] = co_officer.push_ok(
        co_officer.change(
            "inspection",
            inspection_id,
            {"answers": {"S02": {"result": "fail", "note": "占道堆物约3平方米", "photo_ids": []}}},
            base_version=1,
        )
    )
    assert first["status"] == "applied" and first["version"] == 2
    assert second["status"] == "merged" and second["version"] == 3 and second["conflicts"] == []
    record = inspection_in_db(app, inspection_id)
    assert record.findings == "店门外堆放纸箱"
    assert record.answers["S02"]["result"] == "fail"
    assert record.answers["S01"]["result"] == "pass"


def test_same_field_on_both_devices_later_clock_wins_and_the_other_is_logged(app, login, world):
    officer, co_officer = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    inspection_id = shared_draft(world, officer)
    early = officer.change(
        "inspection",
        inspection_id,
        {"findings": "早"},
        base_version=1,
        hlc=officer.clock_at(1_763_712_100_000),
    )
    late = co_officer.change(
        "inspection",
        inspection_id,
        {"findings": "晚"},
        base_version=1,
        hlc=co_officer.clock_at(1_763_712_200_000),
    )
    # The later edit arrives first; the earlier one arrives after and loses.
    co_officer.push_ok(late)
    [result] = officer.push_ok(early)
    assert result["status"] == "conflict"
    [conflict] = result["conflicts"]
    assert conflict["field"] == "findings" and conflict["kept"] == "server"
    assert inspection_in_db(app, inspection_id).findings == "晚"

    leader = login("leader1")
    logged = leader.get(f"/api/v1/conflicts?record_id={inspection_id}").get_json()["items"]
    assert [(c["field"], c["server_value"], c["client_value"], c["status"]) for c in logged] == [
        ("findings", "晚", "早", "open")
    ]
    # The leader decides the earlier text was right: a new version, the entry closed.
    version_before = inspection_in_db(app, inspection_id).version
    response = leader.post(
        f"/api/v1/conflicts/{conflict['conflict_id']}/resolve", json={"keep": "client"}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "resolved"
    record = inspection_in_db(app, inspection_id)
    assert record.findings == "早" and record.version == version_before + 1
    again = leader.post(
        f"/api/v1/conflicts/{conflict['conflict_id']}/resolve", json={"keep": "server"}
    )
    assert_error(again, 409, "version_conflict")


def test_an_approved_inspection_is_frozen_and_edits_become_amendments(app, login, world):
    officer = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    officer.push_ok(
        officer.change(
            "inspection", inspection_id, new_inspection(world, ["officer1"], status="submitted")
        )
    )
    version = set_review(app, inspection_id, "approved")
    [result] = officer.push_ok(
        officer.change(
            "inspection", inspection_id, {"findings": "补记：当事人已整改"}, base_version=version
        )
    )
    assert result["status"] == "conflict" and result["conflicts"][0]["kept"] == "server"
    assert inspection_in_db(app, inspection_id).findings == ""
    leader = login("leader1")
    [amendment] = leader.get(
        f"/api/v1/conflicts?kind=amendment&record_id={inspection_id}"
    ).get_json()["items"]
    assert amendment["client_value"] == {"findings": "补记：当事人已整改"}
    # Accepting the amendment applies it and sends the record back to review.
    assert (
        leader.post(
            f"/api/v1/conflicts/{amendment['id']}/resolve", json={"keep": "client"}
        ).status_code
        == 200
    )
    record = inspection_in_db(app, inspection_id)
    assert record.findings == "补记：当事人已整改"
    assert record.review_status.value == "pending"


def test_reopening_an_approved_inspection_takes_it_out_of_the_risk_score(app, login, world):
    """Only approved inspections feed risk: an amendment that sends one back to review takes
    its findings out of the target's score until it is approved again."""
    from fieldapp.risk import operations as risk
    from fieldapp.targets.models import Target

    officer = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    failed = {**SHOP_ANSWERS, "S03": {"result": "fail", "note": "油烟直排", "photo_ids": []}}
    officer.push_ok(
        officer.change(
            "inspection",
            inspection_id,
            new_inspection(world, ["officer1"], status="submitted", answers=failed),
        )
    )
    version = set_review(app, inspection_id, "approved")
    with app.app_context():
        risk.refresh_target(SYSTEM, db.session.get(Target, world.targets["shop1"].id), utcnow())
        db.session.commit()
    leader = login("leader1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}/risk"
    assert leader.get(path).get_json()["level"] == "high"  # the severe finding's floor
    officer.push_ok(
        officer.change("inspection", inspection_id, {"findings": "补记"}, base_version=version)
    )
    [amendment] = leader.get(
        f"/api/v1/conflicts?kind=amendment&record_id={inspection_id}"
    ).get_json()["items"]
    leader.post(f"/api/v1/conflicts/{amendment['id']}/resolve", json={"keep": "client"})
    reopened = leader.get(path).get_json()
    assert all(f["factor"] != "compliance" for f in reopened["factors"])
    # Levels fall one step at a time, and only after clean inspections: it stays high for now.
    assert reopened["level"] == "high" and "held at high" in reopened["reason"]


def test_deleting_a_record_changed_since_is_a_conflict_not_a_delete(app, login, world):
    officer, co_officer = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    inspection_id = shared_draft(world, officer)
    co_officer.push_ok(
        co_officer.change("inspection", inspection_id, {"findings": "x"}, base_version=1)
    )
    [result] = officer.push_ok(
        officer.change("inspection", inspection_id, op="delete", base_version=1)
    )
    assert result["status"] == "conflict"
    assert inspection_in_db(app, inspection_id) is not None
    conflicts = (
        login("leader1").get(f"/api/v1/conflicts?kind=delete&record_id={inspection_id}").get_json()
    )
    assert len(conflicts["items"]) == 1


def test_deleting_an_unchanged_draft_deletes_it_and_devices_learn_by_pull(app, login, world):
    officer, co_officer = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    inspection_id = shared_draft(world, officer)
    co_officer.pull_all()
    [result] = officer.push_ok(
        officer.change("inspection", inspection_id, op="delete", base_version=1)
    )
    assert result["status"] == "applied"
    assert inspection_in_db(app, inspection_id) is None
    deltas = co_officer.pull_all()
    assert [(c["entity"], c["id"], c["op"]) for c in deltas] == [
        ("inspection", str(inspection_id), "delete")
    ]


def test_deleting_a_draft_takes_its_photos_off_a_colleague_s_device(app, login, world):
    """The photos' metadata goes with the draft on the server; a colleague's device that
    pulled it is told so, photo by photo, and the officer's own queued delete of a photo that
    went with the draft is answered as done."""
    officer, colleague = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record, photo = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    [added] = officer.push_ok(officer.change("photo", photo, photo_metadata(record)))
    assert added["status"] == "applied", added
    assert [(c["entity"], c["op"]) for c in colleague.pull_all() if c["id"] == str(photo)] == [
        ("photo", "upsert")
    ]

    [deleted] = officer.push_ok(officer.change("inspection", record, op="delete", base_version=1))

    assert deleted["status"] == "applied", deleted
    assert login("officer2").get(f"/api/v1/photos/{photo}?size=thumb").status_code == 404
    assert sorted((c["entity"], c["id"], c["op"]) for c in colleague.pull_all()) == [
        ("inspection", str(record), "delete"),
        ("photo", str(photo), "delete"),
    ]
    [again] = officer.push_ok(officer.change("photo", photo, op="delete", base_version=1))
    assert again["status"] == "applied", again


def test_a_submitted_record_cannot_be_deleted(app, login, world):
    officer = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    officer.push_ok(
        officer.change(
            "inspection", inspection_id, new_inspection(world, ["officer1"], status="submitted")
        )
    )
    [result] = officer.push_ok(
        officer.change("inspection", inspection_id, op="delete", base_version=1)
    )
    assert result["status"] == "conflict"
    assert inspection_in_db(app, inspection_id) is not None


def test_a_returned_record_reaches_the_device_and_is_resubmitted(app, login, world):
    officer = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    officer.push_ok(
        officer.change(
            "inspection", inspection_id, new_inspection(world, ["officer1"], status="submitted")
        )
    )
    officer.pull_all()
    version = set_review(app, inspection_id, "returned", "请补充现场照片")
    [returned] = [c for c in officer.pull_all() if c["entity"] == "inspection"]
    assert returned["data"]["review"] == {
        "status": "returned",
        "comment": "请补充现场照片",
        "reviewed_by": None,
        "reviewed_at": None,
    }
    [result] = officer.push_ok(
        officer.change(
            "inspection",
            inspection_id,
            {"findings": "已补拍照片", "photo_ids": [str(uuid.uuid4())], "status": "submitted"},
            base_version=version,
        )
    )
    assert result["status"] == "applied"
    record = inspection_in_db(app, inspection_id)
    assert record.review_status.value == "pending" and record.findings == "已补拍照片"


def test_the_same_batch_three_times_changes_nothing_more(app, login, world):
    officer = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    batch = [
        officer.change("inspection", inspection_id, new_inspection(world, ["officer1"])),
        officer.change("inspection", inspection_id, {"findings": "一"}, base_version=1),
        officer.change("inspection", inspection_id, {"findings": "二"}, base_version=2),
    ]
    first = officer.push_ok(*batch)
    for _ in range(2):
        again = officer.push_ok(*batch)
        assert [r["replayed"] for r in again] == [True, True, True]
        assert [{**r, "replayed": False} for r in again] == first
    record = inspection_in_db(app, inspection_id)
    assert record.version == 3 and record.findings == "二"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Conflict)) == 0


def test_a_change_id_reused_for_another_change_is_id_conflict(app, login, world):
    officer = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    change = officer.change("inspection", inspection_id, new_inspection(world, ["officer1"]))
    officer.push_ok(change)
    [result] = officer.push_ok({**change, "fields": {**change["fields"], "findings": "别的"}})
    assert result["status"] == "rejected"
    assert result["error"]["error"] == "id_conflict" and result["error"]["code"] == 409


def test_a_change_recorded_under_the_earlier_hash_still_replays(app, login, world):
    """Changes applied before the body hash was written by orjson carry the standard library's
    hash; a device re-sending one after the upgrade gets its result replayed, not id_conflict.
    (The two texts differ in how some floats are spelled: an accuracy of 1e-05 metres.)"""
    officer = FakeDevice(login("officer1"))
    fields = new_inspection(world, ["officer1"])
    fields["location"] = {**fields["location"], "accuracy_m": 0.00001}
    change = officer.change("inspection", uuid.uuid4(), fields)
    [first] = officer.push_ok(change)
    earlier = _stdlib_body_hash(change)
    assert earlier != body_hash(change)
    with app.app_context():
        db.session.execute(
            sa.update(SyncChange)
            .where(SyncChange.change_id == uuid.UUID(change["change_id"]))
            .values(body_hash=earlier)
        )
        db.session.commit()
    [again] = officer.push_ok(change)
    assert again == {**first, "replayed": True}
    [other] = officer.push_ok({**change, "fields": {**fields, "findings": "别的"}})
    assert other["status"] == "rejected" and other["error"]["error"] == "id_conflict"


def test_batches_arriving_out_of_order_end_as_one_clean_delivery(app, login, world):
    officer = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    create = officer.change("inspection", inspection_id, new_inspection(world, ["officer1"]))
    edit = officer.change("inspection", inspection_id, {"findings": "后到的修改"}, base_version=1)
    [early] = officer.push_ok(edit)  # the edit overtakes the create
    assert early["status"] == "rejected" and early["error"]["error"] == "not_found"
    officer.push_ok(create)
    [retried] = officer.push_ok(edit)  # the outbox sends it again
    assert retried["status"] == "applied"
    record = inspection_in_db(app, inspection_id)
    assert record.findings == "后到的修改" and record.version == 2


def test_a_follow_up_arriving_before_the_order_it_follows_is_applied_when_sent_again(
    app, login, world
):
    """Out-of-order batches: the follow-up (复查) overtakes the inspection that ordered the
    rectification. It is refused as naming an inspection not there yet (`not_found`, not
    remembered), and sent again once the order is in, it is applied."""
    officer = FakeDevice(login("officer1"))
    order_id, follow_up_id = uuid.uuid4(), uuid.uuid4()
    order = officer.change(
        "inspection",
        order_id,
        new_inspection(
            world,
            ["officer1", "officer2"],
            status="submitted",
            outcome="rectification_ordered",
            rectification_deadline="2026-11-27",
        ),
    )
    follow_up = officer.change(
        "inspection",
        follow_up_id,
        new_inspection(world, ["officer1", "officer2"], started_at="2026-11-28T01:30:00+00:00")
        | {"follow_up_of": str(order_id)},
    )
    [early] = officer.push_ok(follow_up)
    assert (early["status"], early["error"]["error"]) == ("rejected", "not_found"), early
    assert "follow_up_of" in early["error"]["errors"]["json"]
    assert officer.push_ok(order)[0]["status"] == "applied"
    [retried] = officer.push_ok(follow_up)
    assert (retried["status"], retried["replayed"]) == ("applied", False), retried
    assert inspection_in_db(app, follow_up_id).follow_up_of == order_id


def test_one_bad_change_never_blocks_the_others(app, login, world):
    officer = FakeDevice(login("officer1"))
    good, bad = uuid.uuid4(), uuid.uuid4()
    results = officer.push_ok(
        officer.change("inspection", bad, new_inspection(world, ["officer1"], origin="teleport")),
        officer.change("inspection", good, new_inspection(world, ["officer1"])),
    )
    assert [r["status"] for r in results] == ["rejected", "applied"]
    assert results[0]["error"]["errors"]["json"]["origin"]
    assert inspection_in_db(app, good) is not None and inspection_in_db(app, bad) is None


def test_history_lists_every_version_with_who_and_which_device(app, login, world):
    officer, co_officer = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    inspection_id = shared_draft(world, officer)
    co_officer.push_ok(
        co_officer.change("inspection", inspection_id, {"findings": "门前有堆物"}, base_version=1)
    )
    history = login("leader1").get(f"/api/v1/inspections/{inspection_id}/history").get_json()
    assert [h["version"] for h in history] == [1, 2]
    assert history[1]["device_id"] == co_officer.device_id
    assert history[1]["user_id"] == str(world.users["officer2"].id)
    assert history[1]["changes"]["findings"] == {"from": "", "to": "门前有堆物"}
    # Another squadron does not even learn that it exists.
    assert_error(
        login("officer3").get(f"/api/v1/inspections/{inspection_id}/history"), 404, "not_found"
    )


def test_history_pages_read_each_version_against_the_one_before_it(app, login, world):
    """A long history comes a page at a time, the ``Link`` header naming the next; the first
    version of a later page still says what changed since the last of the page before."""
    officer = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    officer.push_ok(
        officer.change("inspection", inspection_id, new_inspection(world, ["officer1"]))
    )
    for version, findings in enumerate(["一", "二", "三", "四"], start=1):
        officer.push_ok(
            officer.change(
                "inspection", inspection_id, {"findings": findings}, base_version=version
            )
        )
    leader = login("leader1")
    path = f"/api/v1/inspections/{inspection_id}/history"
    whole = leader.get(path)
    assert [h["version"] for h in whole.get_json()] == [1, 2, 3, 4, 5]
    assert "Link" not in whole.headers

    first = leader.get(f"{path}?per_page=2")
    assert [h["version"] for h in first.get_json()] == [1, 2]
    next_page = first.headers["Link"].split(">")[0].lstrip("<")
    second = leader.get(next_page)
    assert [h["version"] for h in second.get_json()] == [3, 4]
    assert second.get_json()[0]["changes"] == {"findings": {"from": "一", "to": "二"}}
    last = leader.get(second.headers["Link"].split(">")[0].lstrip("<"))
    assert [h["version"] for h in last.get_json()] == [5]
    assert "Link" not in last.headers


@pytest.mark.parametrize(
    "query, field",
    [
        ("per_page=0", "per_page"),
        ("per_page=201", "per_page"),
        ("page=0", "page"),
        ("page=x", "page"),
    ],
)
def test_a_history_page_out_of_range_is_refused_by_name(login, world, query, field):
    officer = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    officer.push_ok(
        officer.change("inspection", inspection_id, new_inspection(world, ["officer1"]))
    )
    response = login("leader1").get(f"/api/v1/inspections/{inspection_id}/history?{query}")
    body = assert_error(response, 422, "validation_failed")
    assert field in body["errors"]["query"]


def test_gcj02_locations_are_stored_as_wgs84_and_the_original_kept(app, login, world):
    officer = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    fields = new_inspection(world, ["officer1"])
    fields["location"] = {"lon": 121.4747, "lat": 31.3683, "accuracy_m": 5.0, "crs": "gcj02"}
    officer.push_ok(officer.change("inspection", inspection_id, fields))
    record = inspection_in_db(app, inspection_id)
    assert record.location_original == {"lon": 121.4747, "lat": 31.3683, "crs": "gcj02"}
    assert abs(record.lon - 121.4747) > 0.003  # Shanghai's GCJ-02 offset is about 400 m
    assert record.location_crs.value == "gcj02"


def test_a_clock_far_ahead_is_clamped_and_flagged(app, login, world):
    officer = FakeDevice(login("officer1"), clock_ms=4_000_000_000_000)  # the year 2096
    inspection_id = uuid.uuid4()
    [result] = officer.push_ok(
        officer.change("inspection", inspection_id, new_inspection(world, ["officer1"]))
    )
    assert result["status"] == "applied"
    record = inspection_in_db(app, inspection_id)
    assert "clock_skew" in record.flags
    assert (
        record.field_clocks["findings" if "findings" in record.field_clocks else "status"] < "0004"
    )
    # The device is flagged, and the flag is audited with when it was set: once per batch.
    officer.push_ok(
        officer.change("inspection", inspection_id, {"findings": "一"}, base_version=1),
        officer.change("inspection", inspection_id, {"findings": "二"}, base_version=2),
    )
    first, second = audit_entries(app, action="device.clock_skew")
    assert (first.entity, first.record_id, first.device_id) == (
        "device",
        "dev-officer1",
        "dev-officer1",
    )
    assert first.before == {"clock_skew_at": None}
    assert (
        second.before == first.after
        and second.after["clock_skew_at"] > first.after["clock_skew_at"]
    )


def test_replaying_a_skewed_change_does_not_flag_the_device_again(app, login, world):
    """API.md: a change_id seen before returns the first result again and changes nothing. A
    replayed batch of a pad with a fast clock wrote the device's clock-skew flag and its
    `device.clock_skew` audit entry again, each time the outbox sent it."""
    officer = FakeDevice(login("officer1"), clock_ms=now_ms() + 3_600_000)
    change = officer.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
    [first] = officer.push_ok(change)
    assert first["status"] == "applied"
    [flagged] = [e.seq for e in audit_entries(app, action="device.clock_skew")]
    [again] = officer.push_ok(change)  # the answer was lost; the outbox sends it again
    assert again == {**first, "replayed": True}
    assert [e.seq for e in audit_entries(app, action="device.clock_skew")] == [flagged]


def test_a_skewed_device_s_later_edit_still_wins_over_its_earlier_one(app, login, world):
    officer1 = FakeDevice(login("officer1"))
    record = shared_draft(world, officer1)
    skewed = FakeDevice(login("officer2"), clock_ms=4_000_000_000_000)  # the year 2096
    first, second = skewed.push_ok(
        skewed.change("inspection", record, {"findings": "一"}, base_version=1),
        skewed.change("inspection", record, {"findings": "二"}, base_version=1),
    )
    stored = inspection_in_db(app, record)
    assert "clock_skew" in stored.flags
    assert stored.findings == "二"
    assert first["status"] == "applied"
    # The device replaces its own value: nothing of anyone else's to log.
    assert (second["status"], second["conflicts"]) == ("merged", [])


def test_a_skewed_device_s_later_edit_arriving_first_is_not_lost(app, login, world):
    """A pad whose clock runs an hour ahead writes the findings twice ("先" then "后"); the
    batch with the later edit reaches the server first. Both clocks are clamped to the time
    each batch arrived, which orders them by arrival, not as the pad wrote them: the earlier
    edit, arriving last, took "后"'s place as the device replacing its own value, unlogged.
    Against a value clamped in an earlier push the order is not known, so the value replaced
    goes to the conflict log: "后" is in the record or in the log."""
    officer1 = FakeDevice(login("officer1"))
    record = shared_draft(world, officer1)
    skewed = FakeDevice(login("officer2"))
    ahead = now_ms() + 3_600_000
    earlier = skewed.change(
        "inspection", record, {"findings": "先"}, base_version=1, hlc=skewed.clock_at(ahead)
    )
    later = skewed.change(
        "inspection",
        record,
        {"findings": "后"},
        base_version=1,
        hlc=skewed.clock_at(ahead + 10_000),
    )
    skewed.push_ok(later)
    [arrived_last] = skewed.push_ok(earlier)
    assert arrived_last["status"] == "conflict", arrived_last
    stored = inspection_in_db(app, record).findings
    assert stored == "后" or "后" in logged_values(app, record), stored


def test_a_fast_pad_s_later_clamped_edit_wins_over_its_earlier_unclamped_one(app, login, world):
    """A pad whose clock runs fast: its first edit arrives 50 s ahead (not clamped), its later
    one 120 s ahead (clamped). Both are on the draft as officer1 saw it (v1; officer2 changed
    an answer meanwhile). docs/sync.md: the later clamped clock wins as against anyone's. It
    was clamped to the server's time, earlier than the first edit's clock, so the record kept
    the pad's earlier value and the officer's correction went to the log (kept: server)."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer1)
    officer2.push_ok(
        officer2.change(
            "inspection",
            record,
            {"answers": {"S02": {"result": "fail", "note": "占道", "photo_ids": []}}},
            base_version=1,
        )
    )
    server_ms = now_ms()
    [first] = officer1.push_ok(
        officer1.change(
            "inspection",
            record,
            {"findings": "甲"},
            base_version=1,
            hlc=officer1.clock_at(server_ms + 50_000),
        )
    )
    assert first["status"] == "merged", first
    [later] = officer1.push_ok(
        officer1.change(
            "inspection",
            record,
            {"findings": "乙"},
            base_version=1,
            hlc=officer1.clock_at(server_ms + 120_000),
        )
    )

    assert inspection_in_db(app, record).findings == "乙", later
    assert [entry["kept"] for entry in later["conflicts"]] != ["server"], later


def test_a_fast_pads_earlier_edit_does_not_beat_a_colleagues_later_one(app, login, world):
    """officer1's pad runs an hour fast. At 10:00:00 (server time) it pushes findings "甲":
    the server knows that edit was made no later than 10:00:00, and clamps its clock there.
    officer2's pad, with a correct clock, had not pulled it, changes findings at 10:00:30 and
    pushes at 10:00:40. Its edit is the later one by any clock the server can trust, and wins;
    "甲" goes to the conflict log. (Clamped a minute past arrival, to 10:01:00, the pad's
    older value stayed and the colleague's later one was logged instead.)"""
    start = datetime(2026, 3, 2, 2, 0, 0, tzinfo=UTC)  # 10:00 in Shanghai
    start_ms = int(start.timestamp() * 1000)
    with time_machine.travel(start, tick=False) as traveller:
        fast = FakeDevice(login("officer1"), clock_ms=start_ms + 3_600_000)
        right = FakeDevice(login("officer2"), clock_ms=start_ms)
        record = shared_draft(world, fast)
        [first] = fast.push_ok(
            fast.change("inspection", record, {"findings": "甲"}, base_version=1)
        )
        assert first["status"] == "applied", first
        traveller.move_to(start + timedelta(seconds=40))
        [later] = right.push_ok(
            right.change(
                "inspection",
                record,
                {"findings": "乙"},
                base_version=1,
                hlc=right.clock_at(start_ms + 30_000),
            )
        )
    assert inspection_in_db(app, record).findings == "乙", later
    assert "甲" in logged_values(app, record)


def test_a_skewed_device_s_batch_is_ordered_by_its_own_clocks(app, login, world):
    """Within one batch the pad's clocks are known: clamped, they keep the pad's order, not the
    order of the changes in the batch. Its later edit wins; the earlier one, applied after it,
    loses as any earlier edit does, and is logged."""
    officer1 = FakeDevice(login("officer1"))
    record = shared_draft(world, officer1)
    skewed = FakeDevice(login("officer2"))
    ahead = now_ms() + 3_600_000
    results = skewed.push_ok(
        skewed.change(
            "inspection", record, {"findings": "后"}, base_version=1, hlc=skewed.clock_at(ahead + 1)
        ),
        skewed.change(
            "inspection", record, {"findings": "先"}, base_version=1, hlc=skewed.clock_at(ahead)
        ),
    )
    assert inspection_in_db(app, record).findings == "后"
    assert [r["status"] for r in results] == ["applied", "conflict"], results
    assert [c["kept"] for c in results[1]["conflicts"]] == ["server"]
    assert logged_values(app, record) == ["后", "先"]


def test_a_device_s_second_edit_on_the_same_base_replaces_its_first_without_a_log_entry(
    app, login, world
):
    """Two edits a device queued on one base (the first merged with a colleague's): the second
    replaces the device's own first value, which is no one else's to lose; a colleague's value
    is still logged."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer1)
    officer2.push_ok(
        officer2.change("inspection", record, {"outcome": "compliant"}, base_version=1)
    )
    first, second = officer1.push_ok(
        officer1.change("inspection", record, {"findings": "先写"}, base_version=1),
        officer1.change("inspection", record, {"findings": "改写"}, base_version=1),
    )
    assert (first["status"], second["status"]) == ("merged", "merged")
    assert inspection_in_db(app, record).findings == "改写"
    assert login("leader1").get(f"/api/v1/conflicts?record_id={record}").get_json()["items"] == []
    # Over a colleague's value, the same edit is a conflict as before.
    officer2.push_ok(officer2.change("inspection", record, {"findings": "同事"}, base_version=4))
    [third] = officer1.push_ok(
        officer1.change("inspection", record, {"findings": "再改"}, base_version=1)
    )
    assert third["status"] == "conflict"


def test_a_skewed_edit_that_loses_every_field_still_leaves_every_version_in_history(
    app, login, world
):
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer1)
    soon = now_ms() + 50_000  # ahead, but within the minute allowed
    officer1.push_ok(
        officer1.change(
            "inspection", record, {"findings": "晚"}, base_version=1, hlc=officer1.clock_at(soon)
        )
    )
    skewed = FakeDevice(login("officer2", device_id="dev-officer2-skewed"), clock_ms=4 * 10**12)
    [lost] = skewed.push_ok(skewed.change("inspection", record, {"findings": "早"}, base_version=1))
    assert lost["status"] == "conflict"  # the clamped clock is earlier than officer1's
    version = inspection_in_db(app, record).version
    assert [v for v, _ in history_versions(login, record)] == list(range(1, version + 1))
    # An edit based on that version finds its base: only the outcome changed since.
    [mine] = officer2.push_ok(
        officer2.change("inspection", record, {"findings": "只有我改了"}, base_version=version)
    )
    assert mine["status"] == "applied" and mine["conflicts"] == []
    assert inspection_in_db(app, record).findings == "只有我改了"


def test_deleting_a_photo_another_device_edited_since_is_a_conflict(app, login, world):
    from fieldapp.photos.models import Photo

    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record, photo = uuid.uuid4(), uuid.uuid4()
    officer1.push_ok(
        officer1.change("inspection", record, new_inspection(world, ["officer1", "officer2"])),
        officer1.change("photo", photo, photo_metadata(record, item_code="S01")),
    )
    [edit] = officer2.push_ok(officer2.change("photo", photo, {"item_code": "S03"}, base_version=1))
    assert edit["status"] == "applied"

    [delete] = officer1.push_ok(officer1.change("photo", photo, op="delete", base_version=1))

    assert delete["status"] == "conflict"
    with app.app_context():
        assert db.session.get(Photo, photo).item_code == "S03"
    [logged] = login("leader1").get(f"/api/v1/conflicts?record_id={photo}").get_json()["items"]
    assert logged["kind"] == "delete"
    # Its own photo, at the version it knows, the device deletes.
    [again] = officer2.push_ok(officer2.change("photo", photo, op="delete", base_version=2))
    assert again["status"] == "applied"


def test_deleting_a_colleague_s_photo_whose_bytes_arrived_since_is_applied(app, login, world):
    from fieldapp.photos.models import Photo
    from tests import evidence_helpers

    uploader = login("officer1")
    officer1, officer2 = FakeDevice(uploader), FakeDevice(login("officer2"))
    record, photo = uuid.uuid4(), uuid.uuid4()
    data = evidence_helpers.make_image(64, 48)
    _, created = officer1.push_ok(
        officer1.change("inspection", record, new_inspection(world, ["officer1", "officer2"])),
        officer1.change("photo", photo, evidence_helpers.photo_metadata(record, data)),
    )
    assert evidence_helpers.put_photo(uploader, photo, data).status_code in (200, 201)
    with app.app_context():
        assert db.session.get(Photo, photo).version > created["version"]  # the bytes moved it

    [delete] = officer2.push_ok(
        officer2.change("photo", photo, op="delete", base_version=created["version"])
    )

    assert delete["status"] == "applied"
    with app.app_context():
        assert db.session.get(Photo, photo) is None


def test_a_stale_edit_does_not_silently_undo_a_later_write_back_to_the_base_value(
    app, login, world
):
    """Colleagues set findings and then set it back to the base's value; an older offline
    edit of findings must not pass as a one-sided change."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer1)
    t = 1_763_712_000_000
    for base, value, at in ((1, "甲", t + 200_000), (2, "", t + 300_000)):
        officer2.push_ok(
            officer2.change(
                "inspection",
                record,
                {"findings": value},
                base_version=base,
                hlc=officer2.clock_at(at),
            )
        )
    answer_back = {"S01": {"result": "fail", "note": "x", "photo_ids": []}}
    original = new_inspection(world, ["officer1"])["answers"]["S01"]
    for base, answer, at in ((3, answer_back, t + 400_000), (4, {"S01": original}, t + 500_000)):
        officer2.push_ok(
            officer2.change(
                "inspection",
                record,
                {"answers": answer},
                base_version=base,
                hlc=officer2.clock_at(at),
            )
        )

    [stale] = officer1.push_ok(
        officer1.change(
            "inspection",
            record,
            {
                "findings": "乙",
                "answers": {"S01": {"result": "fail", "note": "旧", "photo_ids": []}},
            },
            base_version=1,
            hlc=officer1.clock_at(t + 100_000),
        )
    )

    assert stale["status"] == "conflict"
    assert sorted((c["field"], c["kept"]) for c in stale["conflicts"]) == [
        ("answers.S01", "server"),
        ("findings", "server"),
    ]
    stored = inspection_in_db(app, record)
    assert (stored.findings, stored.answers["S01"]) == ("", original)
    # A field no one wrote since the base still merges cleanly.
    [clean] = officer1.push_ok(
        officer1.change("inspection", record, {"legal_basis": "条例第十条"}, base_version=1)
    )
    assert clean["status"] == "merged"


def test_a_photo_added_back_meanwhile_is_kept_over_an_offline_removal_and_logged(app, login, world):
    """A colleague took a photo off the inspection and put it back; the officer, offline since
    before both, took it off too. The photo stays, the removal waits in the log, and the leader
    can still apply it."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = uuid.uuid4()
    fields = new_inspection(world, ["officer1", "officer2"])
    kept, other = str(uuid.uuid4()), str(uuid.uuid4())
    fields["photo_ids"] = [kept, other]
    fields["answers"]["S01"]["photo_ids"] = [kept]
    officer1.push_ok(officer1.change("inspection", record, fields))
    for base, photos, item_photos in ((1, [other], []), (2, [other, kept], [kept])):
        [applied] = officer2.push_ok(
            officer2.change(
                "inspection",
                record,
                {
                    "photo_ids": photos,
                    "answers": {"S01": {**fields["answers"]["S01"], "photo_ids": item_photos}},
                },
                base_version=base,
            )
        )
        assert applied["status"] == "applied"

    [stale] = officer1.push_ok(
        officer1.change(
            "inspection",
            record,
            {
                "photo_ids": [other],
                "answers": {"S01": {**fields["answers"]["S01"], "photo_ids": []}},
            },
            base_version=1,
        )
    )

    assert stale["status"] == "conflict"
    assert sorted((c["field"], c["kept"]) for c in stale["conflicts"]) == [
        ("answers.S01.photo_ids", "server"),
        ("photo_ids", "server"),
    ]
    stored = inspection_in_db(app, record)
    assert stored.photo_ids == [other, kept] and stored.answers["S01"]["photo_ids"] == [kept]
    leader = login("leader1")
    logged = leader.get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    by_field = {entry["field"]: entry for entry in logged}
    assert by_field["photo_ids"]["client_value"] == [other]
    # The leader sides with the officer: the removal applies, nothing else changes.
    response = leader.post(
        f"/api/v1/conflicts/{by_field['photo_ids']['id']}/resolve", json={"keep": "client"}
    )
    assert response.status_code == 200, response.get_json()
    stored = inspection_in_db(app, record)
    assert stored.photo_ids == [other] and stored.answers["S01"]["photo_ids"] == [kept]
    # With no removal and re-adding in between, an offline removal simply merges.
    seen = stored.version
    officer1.push_ok(officer1.change("inspection", record, {"findings": "补拍"}, base_version=seen))
    [removed] = officer2.push_ok(
        officer2.change(
            "inspection",
            record,
            {"answers": {"S01": {**fields["answers"]["S01"], "photo_ids": []}}},
            base_version=seen,
        )
    )
    assert removed["status"] == "merged" and removed["conflicts"] == []
    assert inspection_in_db(app, record).answers["S01"]["photo_ids"] == []


def test_a_value_written_again_later_beats_an_offline_edit_made_in_between(app, login, world):
    """officer1 writes findings at 09:01; their phone, offline, writes other findings at 09:02;
    officer2 writes officer1's words again at 09:03. The 09:03 write is the last: it stays."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    phone = FakeDevice(login("officer1", device_id="phone-officer1"))
    record = shared_draft(world, officer1)
    t = 1_763_712_000_000
    officer1.push_ok(
        officer1.change(
            "inspection", record, {"findings": "甲"}, base_version=1, hlc=officer1.clock_at(t + 1)
        )
    )
    [again] = officer2.push_ok(
        officer2.change(
            "inspection", record, {"findings": "甲"}, base_version=1, hlc=officer2.clock_at(t + 3)
        )
    )
    assert again["status"] == "merged" and again["version"] == 3  # its clock is the news

    [between] = phone.push_ok(
        phone.change(
            "inspection", record, {"findings": "丙"}, base_version=1, hlc=phone.clock_at(t + 2)
        )
    )

    assert between["status"] == "conflict"
    assert [(c["field"], c["kept"]) for c in between["conflicts"]] == [("findings", "server")]
    assert inspection_in_db(app, record).findings == "甲"
    assert (3, ["findings"]) in history_versions(login, record)  # officer2's write, listed


def test_a_device_sending_its_own_answer_item_again_takes_no_version(app, login, world):
    """As for a plain field (test_an_edit_that_changes_nothing_takes_no_version): an outbox
    replaying an answer under a new change id moves nothing and takes no version."""
    officer = FakeDevice(login("officer1"))
    record = uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    same = {"S01": dict(SHOP_ANSWERS["S01"])}
    [result] = officer.push_ok(
        officer.change("inspection", record, {"answers": same}, base_version=1)
    )
    assert (result["status"], result["version"]) == ("applied", 1), result
    assert [v for v, _ in history_versions(login, record)] == [1]


def test_resending_a_leader_s_answer_with_an_earlier_clock_does_not_move_its_clock_back(
    app, login, world
):
    """officer2 writes S01 at 09:05. officer1's pad (its clock behind) pulls that version
    and sends the same S01 back at 09:01 (pad time). An offline edit of S01 officer1's
    phone made at 09:03, on the version before, must still lose to the 09:05 write."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    phone = FakeDevice(login("officer1", device_id="phone-officer1"))
    record = shared_draft(world, officer1)
    t = 1_763_712_000_000
    value = {"result": "fail", "note": "乙", "photo_ids": []}
    [v2] = officer2.push_ok(
        officer2.change(
            "inspection",
            record,
            {"answers": {"S01": value}},
            base_version=1,
            hlc=officer2.clock_at(t + 5 * 60_000),
        )
    )
    assert v2["version"] == 2
    # officer1's pad, current (base 2), sends the same item with its lagging clock.
    officer1.push_ok(
        officer1.change(
            "inspection",
            record,
            {"answers": {"S01": value}},
            base_version=2,
            hlc=officer1.clock_at(t + 1 * 60_000),
        )
    )
    [between] = phone.push_ok(
        phone.change(
            "inspection",
            record,
            {"answers": {"S01": {"result": "pass", "note": "丙", "photo_ids": []}}},
            base_version=1,
            hlc=phone.clock_at(t + 3 * 60_000),
        )
    )
    assert inspection_in_db(app, record).answers["S01"]["note"] == "乙", between
    assert [(c["field"], c["kept"]) for c in between["conflicts"]] == [("answers.S01", "server")]


def test_replacing_a_value_one_saw_after_a_colleague_wrote_it_again_is_not_a_conflict(
    app, login, world
):
    """officer1 writes 甲 (v2). officer2, offline on v1, writes 甲 too (re-assert, v3).
    officer1, on v2 (which it made and saw), replaces its 甲 with 乙 later. Nothing anyone
    wrote is lost (甲 was in officer1's base): as before the re-assert rule, no log entry."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer1)
    t = 1_763_712_000_000
    [mine] = officer1.push_ok(
        officer1.change(
            "inspection", record, {"findings": "甲"}, base_version=1, hlc=officer1.clock_at(t + 1)
        )
    )
    assert (mine["status"], mine["version"]) == ("applied", 2)
    officer2.push_ok(
        officer2.change(
            "inspection", record, {"findings": "甲"}, base_version=1, hlc=officer2.clock_at(t + 2)
        )
    )
    [replaced] = officer1.push_ok(
        officer1.change(
            "inspection", record, {"findings": "乙"}, base_version=2, hlc=officer1.clock_at(t + 3)
        )
    )
    assert inspection_in_db(app, record).findings == "乙"
    assert replaced["conflicts"] == [], replaced


def test_a_photo_item_sent_again_with_an_earlier_clock_does_not_let_an_older_edit_win(
    app, login, world
):
    """A pad whose clock runs behind sends the item the photo already has: that moves no clock
    (only a later write by another device re-asserts a value), so an offline edit made between
    the two clocks still loses to the first write."""
    from fieldapp.photos.models import Photo

    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    phone = FakeDevice(login("officer1", device_id="phone-officer1"))
    record, photo = uuid.uuid4(), uuid.uuid4()
    officer1.push_ok(
        officer1.change("inspection", record, new_inspection(world, ["officer1", "officer2"])),
        officer1.change("photo", photo, photo_metadata(record, item_code="S01")),
    )
    t = 1_763_712_000_000
    # officer1 files the photo under S02 at t+500 (version 2 of its metadata).
    officer1.push_ok(
        officer1.change(
            "photo", photo, {"item_code": "S02"}, base_version=1, hlc=officer1.clock_at(t + 500)
        )
    )
    with app.app_context():
        current = db.session.get(Photo, photo).version
    # officer2's pad, current, sends the same S02 with a clock behind (t+100).
    officer2.push_ok(
        officer2.change(
            "photo",
            photo,
            {"item_code": "S02"},
            base_version=current,
            hlc=officer2.clock_at(t + 100),
        )
    )
    # officer1's phone, offline on version 1, had filed it under S03 at t+300.
    [older] = phone.push_ok(
        phone.change(
            "photo", photo, {"item_code": "S03"}, base_version=1, hlc=phone.clock_at(t + 300)
        )
    )
    assert [(c["field"], c["kept"]) for c in older["conflicts"]] == [("item_code", "server")]
    with app.app_context():
        assert db.session.get(Photo, photo).item_code == "S02"  # the t+500 write stands


def test_two_devices_editing_one_photo_s_item_follow_the_field_rules(app, login, world):
    from fieldapp.photos.models import Photo

    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record, photo = uuid.uuid4(), uuid.uuid4()
    officer1.push_ok(
        officer1.change("inspection", record, new_inspection(world, ["officer1", "officer2"])),
        officer1.change("photo", photo, photo_metadata(record, item_code="S01")),
    )
    t = 1_763_712_000_000
    [late] = officer1.push_ok(
        officer1.change(
            "photo", photo, {"item_code": "S02"}, base_version=1, hlc=officer1.clock_at(t + 200)
        )
    )
    assert late["status"] == "applied"

    # An earlier edit of the item arrives after: the later one stays, the earlier is logged.
    [early] = officer2.push_ok(
        officer2.change(
            "photo",
            photo,
            {"item_code": "S03", "taken_at": "2026-11-20T09:40:00+08:00"},
            base_version=1,
            hlc=officer2.clock_at(t + 100),
        )
    )

    assert early["status"] == "conflict"
    assert [(c["field"], c["kept"]) for c in early["conflicts"]] == [("item_code", "server")]
    with app.app_context():
        stored = db.session.get(Photo, photo)
        assert stored.item_code == "S02"  # the later edit
        assert stored.taken_at.isoformat() == "2026-11-20T01:40:00+00:00"  # no one else's
    [logged] = login("leader1").get(f"/api/v1/conflicts?record_id={photo}").get_json()["items"]
    assert (logged["server_value"], logged["client_value"]) == ("S02", "S03")
    # A later edit on the same stale base wins the item, and the value it replaces is logged.
    [latest] = officer2.push_ok(
        officer2.change(
            "photo", photo, {"item_code": "S03"}, base_version=1, hlc=officer2.clock_at(t + 300)
        )
    )
    assert [(c["field"], c["kept"]) for c in latest["conflicts"]] == [("item_code", "client")]
    with app.app_context():
        assert db.session.get(Photo, photo).item_code == "S03"


def test_two_devices_moving_one_photo_s_place_follow_the_field_rules(app, login, world):
    """Both officers of the pair correct where a photo was taken, offline: the later place
    stands and the other waits in the conflict log. Before, the second push was a 500."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record, photo = uuid.uuid4(), uuid.uuid4()
    officer1.push_ok(
        officer1.change("inspection", record, new_inspection(world, ["officer1", "officer2"])),
        officer1.change(
            "photo", photo, photo_metadata(record, location={"lon": 121.40, "lat": 31.30})
        ),
    )
    t = 1_763_712_000_000
    later = {"lon": 121.41, "lat": 31.31, "accuracy_m": 6.0}
    officer1.push_ok(
        officer1.change(
            "photo", photo, {"location": later}, base_version=1, hlc=officer1.clock_at(t + 200)
        )
    )
    [early] = officer2.push_ok(
        officer2.change(
            "photo",
            photo,
            {"location": {"lon": 121.42, "lat": 31.32}},
            base_version=1,
            hlc=officer2.clock_at(t + 100),
        )
    )
    assert early["status"] == "conflict", early
    assert [(c["field"], c["kept"]) for c in early["conflicts"]] == [("location", "server")]
    [logged] = login("leader1").get(f"/api/v1/conflicts?record_id={photo}").get_json()["items"]
    assert logged["server_value"] == {**later, "crs": "wgs84"}
    assert logged["client_value"] == {
        "lon": 121.42,
        "lat": 31.32,
        "accuracy_m": None,
        "crs": "wgs84",
    }
    [pulled] = [c for c in officer2.pull_all() if c["id"] == str(photo)]
    assert pulled["data"]["location"] == later


def test_a_photo_edit_on_a_stale_base_that_overlaps_nothing_is_merged(app, login, world):
    """API.md: ``applied`` when the base was current, ``merged`` when it was stale and no field
    changed on both sides. officer1 files the photo under S02 (version 2); officer2, still on
    version 1, corrects only its capture time: both stand, and the answer says ``merged`` (a
    pad told ``applied`` takes its own copy for the server's new version, without S02)."""
    from fieldapp.photos.models import Photo

    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record, photo = uuid.uuid4(), uuid.uuid4()
    officer1.push_ok(
        officer1.change("inspection", record, new_inspection(world, ["officer1", "officer2"])),
        officer1.change("photo", photo, photo_metadata(record, item_code="S01")),
    )
    [moved] = officer1.push_ok(
        officer1.change("photo", photo, {"item_code": "S02"}, base_version=1)
    )
    assert (moved["status"], moved["version"]) == ("applied", 2)

    [late] = officer2.push_ok(
        officer2.change("photo", photo, {"taken_at": "2026-11-20T09:40:00+08:00"}, base_version=1)
    )

    assert (late["status"], late["version"], late["conflicts"]) == ("merged", 3, [])
    with app.app_context():
        stored = db.session.get(Photo, photo)
        assert (stored.item_code, stored.taken_at.isoformat()) == (
            "S02",
            "2026-11-20T01:40:00+00:00",
        )


# -- every change that fills the leader's queue is audited ---------------------------------------


def test_an_edit_whose_every_field_loses_to_a_later_one_is_audited_as_logged(app, login, world):
    """An earlier offline edit that arrives after a colleague's later one changes nothing on
    the record (no version) but adds to the leader's queue: that is a state change, audited
    once (``<entity>.conflict_logged``, naming the entries), for inspections, targets and
    photos alike."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record, photo = uuid.uuid4(), uuid.uuid4()
    shop = world.targets["shop1"].id
    officer1.push_ok(
        officer1.change("inspection", record, new_inspection(world, ["officer1", "officer2"])),
        officer1.change("photo", photo, photo_metadata(record, item_code="S01")),
    )
    t = 1_763_712_000_000
    officer2.push_ok(
        officer2.change(
            "inspection", record, {"findings": "晚"}, base_version=1, hlc=officer2.clock_at(t + 200)
        ),
        officer2.change(
            "target",
            shop,
            {"name": "老王面馆（新）"},
            base_version=1,
            hlc=officer2.clock_at(t + 201),
        ),
        officer2.change(
            "photo", photo, {"item_code": "S02"}, base_version=1, hlc=officer2.clock_at(t + 202)
        ),
    )
    before = {i: len(audit_entries(app, record_id=str(i))) for i in (record, shop, photo)}

    results = officer1.push_ok(
        officer1.change(
            "inspection", record, {"findings": "早"}, base_version=1, hlc=officer1.clock_at(t + 100)
        ),
        officer1.change(
            "target",
            shop,
            {"name": "老王面馆（旧）"},
            base_version=1,
            hlc=officer1.clock_at(t + 101),
        ),
        officer1.change(
            "photo", photo, {"item_code": "S03"}, base_version=1, hlc=officer1.clock_at(t + 102)
        ),
    )

    for (entity, record_id), result in zip(
        [("inspection", record), ("target", shop), ("photo", photo)], results, strict=True
    ):
        assert result["status"] == "conflict" and result["version"] == 2, result
        [logged] = result["conflicts"]
        entries = audit_entries(app, record_id=str(record_id))
        assert len(entries) == before[record_id] + 1, [e.action for e in entries]
        assert entries[-1].action == f"{entity}.conflict_logged"
        assert entries[-1].after == {"conflict_ids": [logged["conflict_id"]]}


def test_a_photo_change_waiting_for_the_leader_is_audited(app, login, world):
    """As an inspection's: a photo edit of an approved inspection waits as an amendment
    (``photo.amendment_logged``), a refused delete of a photo as a delete
    (``photo.delete_logged``), each entry naming the conflict log entry."""
    officer = FakeDevice(login("officer1"))
    approved, submitted = uuid.uuid4(), uuid.uuid4()
    kept, refused = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(
        officer.change(
            "inspection", approved, new_inspection(world, ["officer1"], status="submitted")
        ),
        officer.change(
            "inspection", submitted, new_inspection(world, ["officer1"], status="submitted")
        ),
        officer.change("photo", kept, photo_metadata(approved)),
        officer.change("photo", refused, photo_metadata(submitted)),
    )
    set_review(app, approved, "approved")

    amendment, delete = officer.push_ok(
        officer.change("photo", kept, {"item_code": "S03"}, base_version=1),
        officer.change("photo", refused, op="delete", base_version=1),
    )

    for photo, result, action in (
        (kept, amendment, "photo.amendment_logged"),
        (refused, delete, "photo.delete_logged"),
    ):
        assert result["status"] == "conflict", result
        [entry] = audit_entries(app, record_id=str(photo), action=action)
        assert entry.after == {"conflict_id": result["conflicts"][0]["conflict_id"]}


def test_only_officers_and_leaders_record_tracks(login, world):
    device = FakeDevice(login("supervisor"))
    points = [{"t": "2026-11-20T09:30:00+08:00", "lon": 121.47, "lat": 31.37}]
    [result] = device.push_ok(
        device.change(
            "track",
            uuid.uuid4(),
            {"officer_id": str(world.users["supervisor"].id), "points": points},
        )
    )
    assert result["status"] == "rejected" and result["error"]["error"] == "forbidden"


def test_officers_report_a_new_shop_and_correct_it(app, login, world):
    officer = FakeDevice(login("officer1"))
    shop_id = uuid.uuid4()
    [created] = officer.push_ok(
        officer.change(
            "target",
            shop_id,
            NEW_SHOP,
        )
    )
    assert created["status"] == "applied"
    [fixed] = officer.push_ok(
        officer.change("target", shop_id, {"name": "鲜果多水果店"}, base_version=1)
    )
    assert fixed["version"] == 2
    target = login("leader1").get(f"/api/v1/targets/{shop_id}").get_json()
    assert target["name"] == "鲜果多水果店" and target["squadron_id"] == world.squadrons[0].id
    assert target["code"].startswith("S")


def test_a_shop_reported_in_gcj02_keeps_the_original_coordinates(app, login, world):
    """DESIGN.md: devices may send GCJ-02 or BD-09; the server converts and keeps the original.
    A shop reported from a device's map (GCJ-02) is stored in WGS-84 and keeps what the device
    sent as ``location.original``, as an inspection does: in its file, in what devices pull,
    in its version history and in its audit entry. A correction from a Baidu map (BD-09, on a
    stale base) replaces it without a conflict; a leader moving the point by hand drops it."""
    from fieldapp.geo import gcj02_to_bd09, wgs84_to_gcj02
    from sync.models import RecordVersion

    officer, colleague = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    shop_id = uuid.uuid4()
    lon, lat = wgs84_to_gcj02(121.48, 31.38)
    sent = {"lon": round(lon, 7), "lat": round(lat, 7), "crs": "gcj02"}
    [result] = officer.push_ok(officer.change("target", shop_id, NEW_SHOP | {"location": sent}))
    assert result["status"] == "applied", result
    leader = login("leader1")
    file = leader.get(f"/api/v1/targets/{shop_id}").get_json()
    assert file["location"]["lon"] == pytest.approx(121.48, abs=1e-6)
    assert file["location"]["lat"] == pytest.approx(31.38, abs=1e-6)
    assert file["location"]["original"] == sent
    pulled = [c for c in colleague.pull_all() if (c["entity"], c["id"]) == ("target", str(shop_id))]
    assert pulled[-1]["data"]["location"]["original"] == sent
    [reported] = audit_entries(app, action="target.report", record_id=str(shop_id))
    assert reported.after["location_original"] == sent
    with app.app_context():
        snapshot = db.session.scalar(
            sa.select(RecordVersion.data).where(
                RecordVersion.entity == "target", RecordVersion.record_id == shop_id
            )
        )
    assert snapshot["location"]["original"] == sent

    colleague.push_ok(colleague.change("target", shop_id, {"name": "鲜果多"}, base_version=1))
    bd_lon, bd_lat = gcj02_to_bd09(*wgs84_to_gcj02(121.4805, 31.3804))
    baidu = {"lon": round(bd_lon, 7), "lat": round(bd_lat, 7), "crs": "bd09"}
    [moved] = officer.push_ok(
        officer.change("target", shop_id, {"location": baidu}, base_version=1)
    )
    assert (moved["status"], moved["conflicts"]) == ("merged", [])
    file = leader.get(f"/api/v1/targets/{shop_id}").get_json()
    assert file["location"]["lon"] == pytest.approx(121.4805, abs=1e-5)
    assert (file["name"], file["location"]["original"]) == ("鲜果多", baidu)

    path = f"/api/v1/targets/{shop_id}"
    response = leader.patch(
        path,
        json={"location": {"lon": 121.481, "lat": 31.381}},
        headers={"If-Match": etag_of(leader, path)},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["location"] == {"lon": 121.481, "lat": 31.381}


def test_an_inspection_made_before_its_shop_moved_is_filed_where_the_shop_now_is(app, login, world):
    """officer1 inspects shop1 (squadron 1) offline with officer2; before the pad syncs, the
    admin moves shop1 to squadron 2. The inspection was made while the shop was squadron 1's
    and an officer never loses an offline edit (DESIGN.md): it is applied, filed in squadron 2
    as every inspection of shop1 now is (leader2 reviews it), and officer1 reads and edits it
    as their own inspection elsewhere."""
    admin, officer = login("admin"), FakeDevice(login("officer1"))
    officer.pull_all()
    move_target(admin, world.targets["shop1"].id, world.squadrons[1].id)

    inspection_id = uuid.uuid4()
    made = new_inspection(world, ["officer1", "officer2"], status="submitted")
    [result] = officer.push_ok(officer.change("inspection", inspection_id, made))
    assert result["status"] == "applied", result["error"]
    assert inspection_in_db(app, inspection_id).squadron_id == world.squadrons[1].id
    path = f"/api/v1/inspections/{inspection_id}"
    assert login("leader2").get(path).status_code == 200
    assert_error(login("leader1").get(path), 404, "not_found")
    assert login("officer1").get(path).status_code == 200

    [edited] = officer.push_ok(
        officer.change("inspection", inspection_id, {"findings": "门前已清理"}, base_version=1)
    )
    assert (edited["status"], edited["version"]) == ("applied", 2), edited["error"]
    assert login("officer1").get(path).get_json()["findings"] == "门前已清理"


def test_a_shop_inspected_after_it_moved_counts_as_the_officer_s_until_the_pad_is_told(
    app, login, world
):
    """The move reaches the pad by pull (a removal). Until then the pad shows shop1 as
    officer1's, and an inspection begun after the move but before the pad heard of it was
    made in good faith: it is applied, filed in squadron 2. Once the pad has pulled the move,
    an inspection it begins of shop1 is refused: the officer was told the shop is not theirs."""
    admin, officer = login("admin"), FakeDevice(login("officer1"))
    officer.pull_all()
    move_target(admin, world.targets["shop1"].id, world.squadrons[1].id)
    unaware_id = uuid.uuid4()
    unaware = new_inspection(world, ["officer1"], started_at=utcnow().isoformat())

    [result] = officer.push_ok(officer.change("inspection", unaware_id, unaware))
    assert result["status"] == "applied", result["error"]
    assert inspection_in_db(app, unaware_id).squadron_id == world.squadrons[1].id

    removals = [(c["entity"], c["id"]) for c in officer.pull_all() if c["op"] == "delete"]
    assert ("target", str(world.targets["shop1"].id)) in removals
    told_id = uuid.uuid4()
    told = new_inspection(world, ["officer1"], started_at=utcnow().isoformat())
    [refused] = officer.push_ok(officer.change("inspection", told_id, told))
    assert refused["status"] == "rejected"
    assert refused["error"]["errors"]["json"] == {"target_id": ["no such target in your scope"]}
    assert inspection_in_db(app, told_id) is None

    # Another pad of the same officer was never told: its inspection is still made in good faith.
    other_pad = FakeDevice(login("officer1", device_id="d-second-pad"))
    other_id = uuid.uuid4()
    [other] = other_pad.push_ok(
        other_pad.change(
            "inspection",
            other_id,
            new_inspection(world, ["officer1"], started_at=utcnow().isoformat()),
        )
    )
    assert other["status"] == "applied", other["error"]


@pytest.mark.parametrize("change", [{"active": False}, {"role": "supervisor"}])
def test_an_inspection_with_a_colleague_who_has_since_left_the_squadron_s_roles_is_applied(
    app, login, world, change
):
    """officer1 and officer2 inspect together (双人执法) on officer1's pad, offline. Before the
    pad syncs, officer2 leaves the force (disabled) or is made a supervisor. officer2 was an
    active officer when the inspection was made, so it is applied with both officers: refused,
    it could only be sent again without the colleague who was there. An inspection begun after
    the change cannot name officer2."""
    admin, officer = login("admin"), FakeDevice(login("officer1"))
    path = f"/api/v1/users/{world.users['officer2'].id}"
    response = admin.patch(path, json=change, headers={"If-Match": etag_of(admin, path)})
    assert response.status_code == 200, response.get_json()

    made_before, made_after = uuid.uuid4(), uuid.uuid4()
    both = ["officer1", "officer2"]
    results = officer.push_ok(
        officer.change("inspection", made_before, new_inspection(world, both, status="submitted")),
        officer.change(
            "inspection",
            made_after,
            new_inspection(world, both, started_at=utcnow().isoformat()),
        ),
    )
    assert results[0]["status"] == "applied", results[0]["error"]["errors"]
    record = inspection_in_db(app, made_before)
    assert {str(i) for i in record.officer_ids} == {str(world.users[u].id) for u in both}
    assert results[1]["status"] == "rejected"
    [why] = results[1]["error"]["errors"]["json"]["officer_ids"]
    assert str(world.users["officer2"].id) in why


def _send_to_shop1(leader, world, *officers: str) -> str:
    """leader1 sends ``officers`` to shop1 (a task due in two days); the task's id."""
    body = {
        "target_id": str(world.targets["shop1"].id),
        "assignee_ids": [str(world.users[name].id) for name in officers],
        "due": (utcnow() + timedelta(days=2)).isoformat(),
        "origin": "manual",
    }
    response = leader.post("/api/v1/tasks", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_an_inspection_naming_another_squadrons_task_is_refused_like_an_unknown_task(login, world):
    """officer3 (squadron 2) pushes an inspection of shop2 naming a task of squadron 1, a
    record officer3 cannot read (GET /tasks/<id> is 404). It is refused as an id that names no
    task is, word for word: a push must not tell officer3 the task exists (out-of-scope reads
    do not reveal existence), nor file an inspection whose task leader2 cannot open. The
    target_id next to it is checked "in your scope"; the task_id is too."""
    task = _send_to_shop1(login("leader1"), world, "officer1", "officer2")
    officer3 = login("officer3")
    assert_error(officer3.get(f"/api/v1/tasks/{task}"), 404, "not_found")
    device = FakeDevice(officer3)

    def push_naming(task_id):
        fields = new_inspection(
            world, ["officer3"], status="submitted", target="shop2", origin="task", task_id=task_id
        )
        [result] = device.push_ok(device.change("inspection", uuid.uuid4(), fields))
        return result

    unknown = push_naming(str(uuid.uuid4()))
    assert unknown["status"] == "rejected"
    assert unknown["error"]["errors"]["json"] == {"task_id": ["no such task"]}
    foreign = push_naming(task)
    assert (foreign["status"], foreign["error"]) == ("rejected", unknown["error"])


def test_a_task_that_followed_its_shop_is_still_named_by_an_inspection_made_before_the_move(
    app, login, world
):
    """leader1 sends officer1 to shop1; officer2's pad holds the task too (squadron 1's). The
    admin moves shop1 to squadron 2 and the open task follows it. An inspection officer2 made
    of shop1 before the move, carrying the task, is applied in good faith like its target:
    officer2 no longer reads the task (not one of its assignees), but their pad held it. It is
    filed in squadron 2, whose leader approves it and closes the task. officer1, whom the task
    names, still reads it and names it too."""
    task = _send_to_shop1(login("leader1"), world, "officer1")
    colleague = FakeDevice(login("officer2"))
    assert ("task", task) in {(c["entity"], c["id"]) for c in colleague.pull_all()}
    move_target(login("admin"), world.targets["shop1"].id, world.squadrons[1].id)
    assert_error(login("officer2").get(f"/api/v1/tasks/{task}"), 404, "not_found")

    made_before = new_inspection(world, ["officer2"], status="submitted", origin="task")
    inspection_id = uuid.uuid4()
    [result] = colleague.push_ok(
        colleague.change("inspection", inspection_id, made_before | {"task_id": task})
    )
    assert result["status"] == "applied", result["error"]
    assert inspection_in_db(app, inspection_id).squadron_id == world.squadrons[1].id
    leader2 = login("leader2")
    review_ok(leader2, str(inspection_id), "approve")
    assert leader2.get(f"/api/v1/tasks/{task}").get_json()["status"] == "done"

    sent = FakeDevice(login("officer1"))
    assert sent.api.get(f"/api/v1/tasks/{task}").status_code == 200
    own_inspection = new_inspection(world, ["officer1"], origin="task", task_id=task)
    [own] = sent.push_ok(sent.change("inspection", uuid.uuid4(), own_inspection))
    assert own["status"] == "applied", own["error"]


def test_a_new_shop_and_its_first_inspection_in_one_batch_are_both_applied(app, login, world):
    """Saved offline together, so they arrive in one batch: the inspection finds the shop."""
    officer = FakeDevice(login("officer1"))
    shop_id, inspection_id = uuid.uuid4(), uuid.uuid4()

    results = officer.push_ok(
        officer.change("target", shop_id, NEW_SHOP),
        officer.change(
            "inspection",
            inspection_id,
            new_inspection(world, ["officer1"]) | {"target_id": str(shop_id)},
        ),
    )
    assert [r["status"] for r in results] == ["applied", "applied"], results
    record = inspection_in_db(app, inspection_id)
    assert record.target_id == shop_id
    assert record.squadron_id == world.squadrons[0].id


def test_an_inspection_arriving_before_its_new_shop_is_applied_when_sent_again(app, login, world):
    """docs/sync.md: a change that arrived before the record it depends on is applied when the
    device sends it again, "so out-of-order delivery ends in the same state as a clean one".
    The officer reports a new shop and inspects it offline; the inspection's batch overtakes the
    shop's. It was refused for good (422 on target_id, remembered), and sent again after the
    shop arrived it was replayed as refused: the inspection never landed."""
    officer = FakeDevice(login("officer1"))
    shop_id, inspection_id = uuid.uuid4(), uuid.uuid4()
    shop = officer.change("target", shop_id, NEW_SHOP)
    inspection = officer.change(
        "inspection",
        inspection_id,
        new_inspection(world, ["officer1"]) | {"target_id": str(shop_id)},
    )
    [early] = officer.push_ok(inspection)
    assert (early["status"], early["error"]["error"]) == ("rejected", "not_found"), early
    assert early["error"]["errors"]["json"] == {"target_id": ["no such target in your scope"]}
    [created] = officer.push_ok(shop)
    assert created["status"] == "applied"
    [retried] = officer.push_ok(inspection)
    assert (retried["status"], retried["replayed"]) == ("applied", False), retried
    assert inspection_in_db(app, inspection_id).target_id == shop_id


def test_a_shop_corrected_twice_in_one_batch_merges_against_the_batch_s_own_version(
    app, login, world
):
    """As for inspections: the third correction is based on version 2, which the batch made
    (and whose snapshot is written only when the batch ends)."""
    officer = FakeDevice(login("officer1"))
    shop_id = uuid.uuid4()

    officer.push_ok(officer.change("target", shop_id, NEW_SHOP))
    results = officer.push_ok(
        officer.change("target", shop_id, {"name": "鲜果多水果店"}, base_version=1),
        officer.change("target", shop_id, {"address": "宝山区淞滨路90号"}, base_version=1),
        officer.change("target", shop_id, {"name": "鲜果多"}, base_version=2),
    )
    assert [r["status"] for r in results] == ["applied", "merged", "merged"]
    assert [r["conflicts"] for r in results] == [[], [], []]
    target = login("leader1").get(f"/api/v1/targets/{shop_id}").get_json()
    assert (target["name"], target["address"]) == ("鲜果多", "宝山区淞滨路90号")


def test_tracks_append_and_a_repeated_batch_adds_nothing(app, login, world):
    from fieldapp.tracks.models import TrackPoint

    officer = FakeDevice(login("officer1"))
    points = [
        {
            "t": f"2026-11-20T09:{m:02d}:00+08:00",
            "lon": 121.47 + m / 1e4,
            "lat": 31.37,
            "accuracy_m": 6.0,
        }
        for m in range(10)
    ]
    fields = {"officer_id": str(world.users["officer1"].id), "points": points}
    officer.push_ok(officer.change("track", uuid.uuid4(), fields))
    officer.push_ok(officer.change("track", uuid.uuid4(), fields))  # another batch, same points
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(TrackPoint)) == 10
    [other] = officer.push_ok(
        officer.change(
            "track", uuid.uuid4(), {**fields, "officer_id": str(world.users["officer2"].id)}
        )
    )
    assert other["status"] == "rejected" and other["error"]["error"] == "forbidden"


def test_photo_metadata_follows_its_inspection(app, login, world):
    officer = FakeDevice(login("officer1"))
    inspection_id, photo_id = uuid.uuid4(), uuid.uuid4()
    photo = {
        "inspection_id": str(inspection_id),
        "item_code": "S01",
        "taken_at": "2026-11-20T09:35:00+08:00",
        "sha256": "ab" * 32,
        "size": 123456,
        "content_type": "image/jpeg",
    }
    [early] = officer.push_ok(officer.change("photo", photo_id, photo))
    assert early["status"] == "rejected" and early["error"]["error"] == "not_found"
    results = officer.push_ok(
        officer.change(
            "inspection",
            inspection_id,
            new_inspection(world, ["officer1"], photo_ids=[str(photo_id)]),
        ),
        officer.change("photo", photo_id, photo),
    )
    assert [r["status"] for r in results] == ["applied", "applied"]
    pulled = [c for c in FakeDevice(login("leader1")).pull_all() if c["entity"] == "photo"]
    assert pulled[0]["data"]["uploaded"] is False and pulled[0]["data"]["sha256"] == "ab" * 32


def test_creates_racing_another_writer_fall_back_to_one_savepoint_each(
    app, login, world, monkeypatch
):
    """Creates are written together; if another writer stored one of the ids in between (here:
    the batch's look-ups are made to miss it), each create is retried on its own, and only the
    one that collided is refused (retryably)."""
    from sync import engine

    officer = FakeDevice(login("officer1"))
    taken, fresh = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(officer.change("inspection", taken, new_inspection(world, ["officer1"])))
    monkeypatch.setattr(engine, "_preload", lambda ctx, changes: None)
    results = officer.push_ok(
        officer.change("inspection", fresh, new_inspection(world, ["officer1"])),
        officer.change("inspection", taken, new_inspection(world, ["officer1"], findings="并发")),
    )
    assert results[0]["status"] == "applied"
    assert results[1]["status"] == "rejected" and results[1]["error"]["code"] == 409
    assert inspection_in_db(app, fresh) is not None
    assert inspection_in_db(app, taken).findings == ""


def test_edits_racing_the_same_batch_elsewhere_replay_instead_of_applying_twice(
    app, login, world, monkeypatch
):
    """An edit's exactly-once record is written with the rest of its batch. If another push of
    the same changes committed first (here: the batch's look-ups are made to miss it), that write
    fails, the batch is undone and applied again change by change, and every change replays."""
    from sync import engine

    officer = FakeDevice(login("officer1"))
    record = uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    batch = [
        officer.change("inspection", record, {"findings": "一"}, base_version=1),
        officer.change("inspection", record, {"outcome": "corrected_on_site"}, base_version=2),
    ]
    first = officer.push_ok(*batch)
    preload = engine._preload

    def forgetting(ctx, changes):
        preload(ctx, changes)
        ctx.seen_changes.clear()

    monkeypatch.setattr(engine, "_preload", forgetting)
    again = officer.push_ok(*batch)
    assert [r["replayed"] for r in again] == [True, True]
    assert [{**r, "replayed": False} for r in again] == first
    stored = inspection_in_db(app, record)
    assert (stored.version, stored.findings, stored.outcome.value) == (3, "一", "corrected_on_site")
    history = officer.api.get(f"/api/v1/inspections/{record}/history").get_json()
    assert [entry["version"] for entry in history] == [1, 2, 3]


def test_an_edit_based_on_a_version_made_earlier_in_its_batch_merges_against_it(app, login, world):
    """The second device edits findings on version 2, which the same batch made; the batch's
    other edit (outcome) made version 3 meanwhile. Against version 2 only the device changed
    findings: it merges with no conflict."""
    officer = FakeDevice(login("officer1"))
    record = uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    results = officer.push_ok(
        officer.change("inspection", record, {"findings": "一"}, base_version=1),
        officer.change("inspection", record, {"outcome": "corrected_on_site"}, base_version=1),
        officer.change("inspection", record, {"findings": "二"}, base_version=2),
    )
    assert [r["status"] for r in results] == ["applied", "merged", "merged"]
    assert results[2]["conflicts"] == []
    stored = inspection_in_db(app, record)
    assert (stored.version, stored.findings) == (4, "二")


def test_a_record_deleted_earlier_in_the_same_batch_stays_deleted(app, login, world):
    officer = FakeDevice(login("officer1"))
    record = uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    results = officer.push_ok(
        officer.change("inspection", record, op="delete", base_version=1),
        officer.change("inspection", record, {"findings": "删了又改"}, base_version=1),
        officer.change("inspection", record, new_inspection(world, ["officer1"])),
    )
    # Neither the edit nor a create of the id deleted can apply, and neither is lost (nor told
    # to wait for a create to come): both wait in the conflict log beside the deletion.
    assert [r["status"] for r in results] == ["applied", "conflict", "conflict"]
    assert inspection_in_db(app, record) is None
    logged = login("leader1").get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    # Logged in one transaction, at one time: told apart by what they hold.
    [edit] = [c for c in logged if "origin" not in c["client_value"]]
    [create] = [c for c in logged if "origin" in c["client_value"]]
    assert (edit["kind"], edit["client_value"]) == ("delete", {"findings": "删了又改"})
    assert (create["kind"], create["client_value"]["origin"]) == ("delete", "patrol")


def test_an_edit_of_the_officers_with_other_fields_is_one_version(app, login, world):
    """Fields around the officers in one change: one new version, one history entry."""
    device = FakeDevice(login("officer1"))
    inspection_id = uuid.uuid4()
    device.push_ok(device.change("inspection", inspection_id, new_inspection(world, ["officer1"])))
    officers = [str(world.users[name].id) for name in ("officer1", "officer2")]
    fields = {"findings": "占道经营", "officer_ids": officers, "legal_basis": "市容条例第二十条"}
    [result] = device.push_ok(device.change("inspection", inspection_id, fields, base_version=1))
    assert (result["status"], result["version"]) == ("applied", 2)
    record = login("officer1").get(f"/api/v1/inspections/{inspection_id}").get_json()
    assert record["version"] == 2
    assert {name: record[name] for name in fields} == fields
    history = login("officer1").get(f"/api/v1/inspections/{inspection_id}/history").get_json()
    assert [h["version"] for h in history] == [1, 2]


def test_the_officers_order_is_kept_when_it_changes(app, login, world):
    """The first officer leads (主办): a device that swaps the two, then adds a third in the
    middle, sees exactly that order on the server and on the next pull."""
    device = FakeDevice(login("officer1"))
    inspection_id = shared_draft(world, device)

    def ids(*names):
        return [str(world.users[name].id) for name in names]

    swapped = ids("officer2", "officer1")
    [result] = device.push_ok(
        device.change("inspection", inspection_id, {"officer_ids": swapped}, base_version=1)
    )
    assert (result["status"], result["version"]) == ("applied", 2)
    record = login("officer1").get(f"/api/v1/inspections/{inspection_id}").get_json()
    assert record["officer_ids"] == swapped

    three = ids("officer2", "leader1", "officer1")
    [result] = device.push_ok(
        device.change("inspection", inspection_id, {"officer_ids": three}, base_version=2)
    )
    assert result["version"] == 3
    pulled = [c for c in FakeDevice(login("officer2")).pull_all() if c["entity"] == "inspection"]
    assert pulled[0]["data"]["officer_ids"] == three
    history = login("officer1").get(f"/api/v1/inspections/{inspection_id}/history").get_json()
    assert [h["version"] for h in history] == [1, 2, 3]
    assert history[1]["changes"]["officer_ids"] == {
        "from": ids("officer1", "officer2"),
        "to": swapped,
    }
    assert history[2]["changes"]["officer_ids"] == {"from": swapped, "to": three}


def test_a_change_refused_after_its_snapshot_leaves_nothing_behind(app, login, world, monkeypatch):
    """A change undone late (here: its audit entry refused) takes its version snapshot with
    it, although the batch writes snapshots when it ends; the next change is applied as usual,
    and the device can send the refused one again."""
    from fieldapp.audit import operations as audit
    from fieldapp.errors import APIError
    from sync.models import RecordVersion

    device = FakeDevice(login("officer1"))
    first, second = device.create_inspections(world, ["officer1"], 2)
    real_record = audit.record

    def refuse_the_first_edit(actor, action, entity, record_id, **kwargs):
        if action == "inspection.update" and record_id == first:
            raise APIError(503, "unavailable", "the audit log refused the entry")
        return real_record(actor, action, entity, record_id, **kwargs)

    monkeypatch.setattr(audit, "record", refuse_the_first_edit)
    edit = device.change("inspection", first, {"findings": "门前堆物"}, base_version=1)
    refused, applied = device.push_ok(
        edit, device.change("inspection", second, {"findings": "已整改"}, base_version=1)
    )
    assert refused["status"] == "rejected" and refused["error"]["error"] == "unavailable"
    assert (applied["status"], applied["version"]) == ("applied", 2)

    def versions(record_id) -> list[int]:
        with app.app_context():
            return list(
                db.session.scalars(
                    sa.select(RecordVersion.version)
                    .where(RecordVersion.record_id == record_id)
                    .order_by(RecordVersion.version)
                )
            )

    assert versions(first) == [1]
    assert versions(second) == [1, 2]
    monkeypatch.setattr(audit, "record", real_record)
    [again] = device.push_ok(edit)
    assert (again["status"], again["version"]) == ("applied", 2)
    assert versions(first) == [1, 2]


def history_versions(login, inspection_id) -> list[tuple[int, list[str]]]:
    """The record's versions as the leader's history lists them, with the fields each changed."""
    response = login("leader1").get(f"/api/v1/inspections/{inspection_id}/history")
    assert response.status_code == 200, response.get_json()
    return [(h["version"], sorted(h["changes"])) for h in response.get_json()]


def test_a_refused_edit_between_two_edits_of_one_record_leaves_both_applied(app, login, world):
    """Edits of records the batch loaded are applied without a savepoint each; one refused
    by its checks in between writes nothing, and the versions the answers give are the ones
    stored and listed in the history."""
    officer = FakeDevice(login("officer1"))
    record, other = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(
        officer.change("inspection", record, new_inspection(world, ["officer1"])),
        officer.change("inspection", other, new_inspection(world, ["officer1"])),
    )
    bad_answers = {"Z99": {"result": "fail", "note": "不存在的检查项", "photo_ids": []}}
    results = officer.push_ok(
        officer.change("inspection", record, {"findings": "门前堆物"}, base_version=1),
        officer.change("inspection", record, {"answers": bad_answers}, base_version=1),
        officer.change("inspection", other, {"findings": "已整改"}, base_version=1),
        officer.change("inspection", record, {"outcome": "corrected_on_site"}, base_version=1),
    )
    assert [(r["status"], r["version"]) for r in results] == [
        ("applied", 2),
        ("rejected", None),
        ("applied", 2),
        ("merged", 3),
    ]
    assert results[1]["error"]["errors"]["json"]["answers"]["Z99"]
    stored = inspection_in_db(app, record)
    assert (stored.version, stored.findings, stored.outcome.value) == (
        3,
        "门前堆物",
        "corrected_on_site",
    )
    assert "Z99" not in stored.answers
    assert history_versions(login, record) == [
        (1, history_versions(login, record)[0][1]),
        (2, ["findings"]),
        (3, ["outcome"]),
    ]
    assert inspection_in_db(app, other).version == 2


def test_an_edit_that_changes_nothing_takes_no_version(app, login, world):
    """A device sending back the value the server has (an outbox replaying an edit under a
    new change id, say) is answered with the version it already is; the batch's next edit
    takes the next one."""
    officer = FakeDevice(login("officer1"))
    record = uuid.uuid4()
    fields = new_inspection(world, ["officer1"], findings="门前堆物")
    officer.push_ok(officer.change("inspection", record, fields))
    results = officer.push_ok(
        officer.change("inspection", record, {"findings": "门前堆物"}, base_version=1),
        officer.change("inspection", record, {"findings": "新的发现"}, base_version=1),
    )
    assert [(r["status"], r["version"]) for r in results] == [("applied", 1), ("applied", 2)]
    assert inspection_in_db(app, record).version == 2
    assert [version for version, _ in history_versions(login, record)] == [1, 2]


def test_a_conflict_logged_in_a_batch_names_the_version_its_edit_made(app, login, world):
    """The earlier of two edits of the same field loses; its other field is applied, and the
    losing value is logged against the version that edit made."""
    officer, co_officer = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = shared_draft(world, officer)
    co_officer.push_ok(
        co_officer.change(
            "inspection",
            record,
            {"findings": "晚"},
            base_version=1,
            hlc=co_officer.clock_at(1_763_712_200_000),
        )
    )
    early = officer.change(
        "inspection",
        record,
        {"findings": "早", "outcome": "corrected_on_site"},
        base_version=1,
        hlc=officer.clock_at(1_763_712_100_000),
    )
    [result] = officer.push_ok(early)
    assert (result["status"], result["version"]) == ("conflict", 3)
    with app.app_context():
        logged = db.session.scalars(sa.select(Conflict).where(Conflict.record_id == record)).all()
        assert [(c.field, c.client_value, c.record_version) for c in logged] == [
            ("findings", "早", 3)
        ]
    stored = inspection_in_db(app, record)
    assert (stored.version, stored.findings, stored.outcome.value) == (
        3,
        "晚",
        "corrected_on_site",
    )


def test_a_database_error_in_an_edit_without_savepoint_costs_only_that_edit(
    app, login, world, monkeypatch
):
    """An edit of a loaded record runs without a savepoint of its own; when the database
    refuses one of its writes (here: its officer links, made to collide), the batch is applied
    again with a savepoint per change, and only that edit is refused, as retryable."""
    from sync import entities

    device = FakeDevice(login("officer1"))
    first, second = device.create_inspections(world, ["officer1"], 2)
    real_rows = entities.officer_rows

    def colliding_links(inspection_id, squadron_id, officer_ids):
        rows = real_rows(inspection_id, squadron_id, officer_ids)
        return rows + rows[:1] if inspection_id == first else rows

    monkeypatch.setattr(entities, "officer_rows", colliding_links)
    both = [str(world.users["officer1"].id), str(world.users["officer2"].id)]
    edit = device.change(
        "inspection", first, {"officer_ids": both, "findings": "两人同查"}, base_version=1
    )
    refused, applied = device.push_ok(
        edit, device.change("inspection", second, {"findings": "已整改"}, base_version=1)
    )
    assert refused["status"] == "rejected" and refused["error"]["error"] == "version_conflict"
    assert (applied["status"], applied["version"]) == ("applied", 2)
    untouched = inspection_in_db(app, first)
    assert (untouched.version, untouched.officer_ids, untouched.findings) == (
        1,
        both[:1],
        "",
    )
    assert inspection_in_db(app, second).findings == "已整改"

    monkeypatch.setattr(entities, "officer_rows", real_rows)
    [again] = device.push_ok(edit)
    assert (again["status"], again["version"]) == ("applied", 2)
    assert inspection_in_db(app, first).officer_ids == both
