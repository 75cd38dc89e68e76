"""Accepting an amendment keeps photos accepted into the record since (the lists merge as sets),
and the bytes of a photo an amendment adds are kept while it waits."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fieldapp.actor import Actor
from fieldapp.db import db, utcnow
from fieldapp.photos import operations as photo_ops
from tests.evidence_helpers import make_image, photo_metadata, put_photo
from tests.review_helpers import push_inspection, review_ok
from tests.sync_helpers import FakeDevice
from tests.test_conflict_resolution import resolve, stored


def _two_amendments(login, world, older_fields, newer_fields):
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    leader = login("leader1")
    record = push_inspection(world, officer1)
    approved = review_ok(leader, record, "approve")["version"]
    [older] = officer1.push_ok(
        officer1.change("inspection", record, older_fields, base_version=approved)
    )
    [newer] = officer2.push_ok(
        officer2.change("inspection", record, newer_fields, base_version=approved)
    )
    assert older["status"] == newer["status"] == "conflict"
    first = resolve(leader, newer["conflicts"][0]["conflict_id"], "client")
    assert first.status_code == 200, first.get_json()
    return leader, record, older


def test_an_old_amendment_item_sent_without_photo_ids_keeps_a_photo_accepted_since(
    app, login, world
):
    """A push may send an answer item without photo_ids (the schema defaults it; a push
    merges it as a set). officer1's amendment of S01's note omits the list; officer2's, adding
    q, is accepted first. Accepting officer1's must keep q: officer1 never removed it."""
    q = str(uuid.uuid4())
    leader, record, older = _two_amendments(
        login,
        world,
        {"answers": {"S01": {"result": "fail", "note": "补记：占道"}}},
        {"answers": {"S01": {"result": "pass", "note": "", "photo_ids": [q]}}},
    )
    assert stored(app, record).answers["S01"]["photo_ids"] == [q]

    second = resolve(leader, older["conflicts"][0]["conflict_id"], "client")

    assert second.status_code == 200, second.get_json()
    s01 = stored(app, record).answers["S01"]
    assert s01["note"] == "补记：占道"
    assert q in s01["photo_ids"], s01


def test_an_old_amendment_of_the_photo_list_is_applied_as_set_changes(app, login, world):
    """docs/sync.md: "An accepted amendment's photo lists are applied the same way, against
    the record as it was when the amendment was logged" (top level and per answer item).
    officer1's amendment adds r, officer2's (accepted first) adds q: accepting officer1's
    gives [q, r], as the item-level case does."""
    q, r = str(uuid.uuid4()), str(uuid.uuid4())
    leader, record, older = _two_amendments(login, world, {"photo_ids": [r]}, {"photo_ids": [q]})
    assert [str(p) for p in stored(app, record).photo_ids] == [q]

    second = resolve(leader, older["conflicts"][0]["conflict_id"], "client")

    assert second.status_code == 200, second.get_json()
    assert sorted(map(str, stored(app, record).photo_ids)) == sorted([q, r])


def test_the_sweep_keeps_the_bytes_of_a_photo_an_open_amendment_adds(app, world, login):
    """An approved inspection is frozen: the officer's later photo (its metadata, and the
    inspection's photo list naming it) waits in the conflict log as an amendment for the
    leader, while its bytes are uploaded. The daily sweep does not take those bytes as
    unclaimed: when the leader accepts the amendment days later, the photo is there (before,
    GET answered 404: the evidence was gone)."""
    officer, leader = login("officer1"), login("leader1")
    device = FakeDevice(officer)
    record = push_inspection(world, device)
    approved = review_ok(leader, record, "approve")["version"]
    data, photo_id = make_image(640, 480), uuid.uuid4()
    [metadata, amendment] = device.push_ok(
        device.change("photo", photo_id, photo_metadata(record, data)),
        device.change("inspection", record, {"photo_ids": [str(photo_id)]}, base_version=approved),
    )
    assert metadata["status"] == amendment["status"] == "conflict", (metadata, amendment)
    assert put_photo(officer, photo_id, data).status_code == 201

    with app.app_context():
        store = photo_ops.store_for(app.config)
        later = utcnow() + timedelta(hours=73)  # the leader is on leave for three days
        report = photo_ops.sweep(Actor.for_system("test"), store, later, timedelta(hours=72))
        db.session.commit()
    assert report.unclaimed == 0

    for answer in (amendment, metadata):
        response = resolve(leader, answer["conflicts"][0]["conflict_id"], "client")
        assert response.status_code == 200, response.get_json()
    assert str(photo_id) in leader.get(f"/api/v1/inspections/{record}").get_json()["photo_ids"]
    original = leader.client.get(
        f"/api/v1/photos/{photo_id}?size=original",
        headers={"Authorization": f"Bearer {leader.token}"},
        buffered=True,
    )
    assert original.status_code == 200, original.get_json()
    assert original.data == data


def test_the_sweep_keeps_a_photo_only_an_open_amendment_of_an_answer_names(app, world, login):
    """The bytes uploaded for a photo an amendment adds to an answer (its metadata not synced
    yet) are kept while the amendment waits, and swept once it is rejected and nothing else
    names them."""
    officer, leader = login("officer1"), login("leader1")
    device = FakeDevice(officer)
    record = push_inspection(world, device)
    approved = review_ok(leader, record, "approve")["version"]
    data, photo_id = make_image(320, 240), uuid.uuid4()
    answer = {"result": "fail", "note": "补拍", "photo_ids": [str(photo_id).upper()]}
    [amendment] = device.push_ok(
        device.change("inspection", record, {"answers": {"S01": answer}}, base_version=approved)
    )
    assert amendment["status"] == "conflict", amendment
    assert put_photo(officer, photo_id, data).status_code == 201

    def sweep() -> int:
        with app.app_context():
            store = photo_ops.store_for(app.config)
            later = utcnow() + timedelta(hours=73)
            report = photo_ops.sweep(Actor.for_system("test"), store, later, timedelta(hours=72))
            db.session.commit()
        return report.unclaimed

    assert sweep() == 0
    kept = resolve(leader, amendment["conflicts"][0]["conflict_id"], "server")
    assert kept.status_code == 200, kept.get_json()
    assert sweep() == 1
