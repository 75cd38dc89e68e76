"""Accepting an amendment keeps photos accepted into the record since (the lists merge as sets)."""

from __future__ import annotations

import uuid

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
