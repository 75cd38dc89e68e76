"""The reference device client where offline work gets awkward: edits folded while offline,
answers lost, deletes the server refuses, scope resets, clocks that stall, oversize batches.
In every case the officer's value reaches the server (or the conflict log) and the device shows
what the server holds."""

from __future__ import annotations

import json
import threading
import time
import uuid
from email.utils import formatdate

import pytest

from fieldapp.db import db
from fieldapp.inspections.models import Inspection
from sync.client import MAX_WAITS, Response, SyncClient, SyncError, TransportError
from tests.conftest import PASSWORD, etag_of
from tests.sync_helpers import FlaskTransport, make_client, new_inspection, photo_metadata


def on_server(app, inspection_id) -> dict | None:
    with app.app_context():
        record = db.session.get(Inspection, inspection_id)
        if record is None:
            return None
        found = {"version": record.version, "findings": record.findings, "answers": record.answers}
        db.session.expunge_all()
        return found


def answer(result: str, note: str) -> dict:
    return {"result": result, "note": note, "photo_ids": []}


def synced_inspection(pad, world, officers=("officer1",), **fields) -> uuid.UUID:
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, list(officers), **fields))
    pad.sync()
    assert pad.pending() == 0 and pad.failed() == []
    return inspection_id


def lose_the_answer_of_the_next_push(pad) -> None:
    pad.transport.lose_answers = 1.0
    with pytest.raises(TransportError):
        pad.push()
    pad.transport.lose_answers = 0.0


# -- answers are edited item by item --------------------------------------------------------------


def test_two_offline_edits_of_different_answers_both_reach_the_server(app, client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-a")
    inspection_id = synced_inspection(pad, world)
    pad.save("inspection", inspection_id, {"answers": {"S01": answer("fail", "跨门经营")}})
    pad.save("inspection", inspection_id, {"answers": {"S02": answer("fail", "占道堆物")}})

    # Shown on the device at once, with the items not edited still there.
    local = pad.get("inspection", inspection_id)["answers"]
    assert (local["S01"]["note"], local["S02"]["note"]) == ("跨门经营", "占道堆物")
    assert local["S03"]["result"] == "pass"
    pad.sync()

    stored = on_server(app, inspection_id)["answers"]
    assert (stored["S01"]["note"], stored["S02"]["note"]) == ("跨门经营", "占道堆物")
    assert pad.get("inspection", inspection_id)["answers"] == stored


def test_an_edit_folded_later_does_not_give_an_earlier_value_a_later_clock(
    app, client, world, tmp_path
):
    mine = make_client(client, tmp_path, "officer1", "pad-f1")
    colleague = make_client(client, tmp_path, "officer2", "pad-f2")
    now = time.time()
    mine.clock = lambda: now - 120
    inspection_id = synced_inspection(mine, world, officers=("officer1", "officer2"))
    colleague.pull()
    mine.clock = lambda: now - 60
    mine.save("inspection", inspection_id, {"findings": "09:00 写的"})
    colleague.clock = lambda: now - 30
    colleague.save("inspection", inspection_id, {"findings": "09:30 写的"})
    colleague.sync()
    mine.clock = lambda: now
    mine.save("inspection", inspection_id, {"outcome": "compliant"})

    report = mine.sync()

    assert on_server(app, inspection_id)["findings"] == "09:30 写的"  # the later one
    assert [c["kept"] for r in report.conflicts for c in r["conflicts"]] == ["server"]
    assert mine.get("inspection", inspection_id)["findings"] == "09:30 写的"


# -- what the device shows after a conflict --------------------------------------------------------


def test_after_a_conflict_the_server_won_the_device_shows_the_server_s_value(
    app, client, world, tmp_path
):
    mine = make_client(client, tmp_path, "officer1", "pad-b1")
    colleague = make_client(client, tmp_path, "officer2", "pad-b2")
    inspection_id = synced_inspection(mine, world, officers=("officer1", "officer2"))
    colleague.pull()
    mine.clock = lambda: time.time() - 30
    mine.save("inspection", inspection_id, {"findings": "我的旧记录"})
    colleague.save("inspection", inspection_id, {"findings": "同事的新记录"})
    colleague.sync()
    mine.pull()

    report = mine.sync()

    assert [c["kept"] for c in report.conflicts[0]["conflicts"]] == ["server"]
    assert on_server(app, inspection_id)["findings"] == "同事的新记录"
    assert mine.get("inspection", inspection_id)["findings"] == "同事的新记录"
    assert mine.version("inspection", inspection_id) == on_server(app, inspection_id)["version"]


def test_a_target_correction_that_lost_to_the_leader_s_later_rename_is_not_shown(
    client, world, tmp_path, login
):
    """An officer corrects a shop's name offline; the leader renames it later, and the pad
    pulls the leader's version (shown with the officer's unsent name over it) before it
    pushes. The server keeps the leader's name (a conflict, no new version, so no pull brings
    it again): after the sync the pad shows the leader's name, as it does for an inspection."""
    pad = make_client(client, tmp_path, "officer1", "pad-target")
    pad.pull()
    target_id = str(world.targets["shop1"].id)
    pad.clock = lambda: time.time() - 120  # the officer's edit is the earlier one
    pad.save("target", target_id, {"name": "老王面馆(队员改)"})
    leader = login("leader1")
    path = f"/api/v1/targets/{target_id}"
    renamed = leader.patch(
        path, json={"name": "老王牛肉面馆"}, headers={"If-Match": etag_of(leader, path)}
    )
    assert renamed.status_code == 200
    pad.pull()

    report = pad.sync()

    assert [c["kept"] for r in report.conflicts for c in r["conflicts"]] == ["server"]
    assert leader.get(path).get_json()["name"] == "老王牛肉面馆"
    assert pad.get("target", target_id) == leader_s_target(leader, path)


def leader_s_target(leader, path: str) -> dict:
    """The target as a pull carries it: its file without what only the file holds."""
    extras = ("recent_inspections", "open_rectifications", "complaints", "cases", "risk")
    return {k: v for k, v in leader.get(path).get_json().items() if k not in extras}


def test_a_photo_s_item_that_lost_to_a_colleague_s_later_edit_is_not_shown(client, world, tmp_path):
    """Photo metadata follows the plain-field rule: the later clock wins. Two officers file one
    photo under different checklist items; mine is the earlier edit, and my pad has pulled
    the colleague's before it pushes. After the sync my pad shows the colleague's item, which
    the server kept (the photos have no page of their own to read it again from)."""
    mine = make_client(client, tmp_path, "officer1", "pad-p1")
    colleague = make_client(client, tmp_path, "officer2", "pad-p2")
    inspection_id = synced_inspection(mine, world, officers=("officer1", "officer2"))
    photo_id = str(uuid.uuid4())
    mine.save("photo", photo_id, photo_metadata(inspection_id, item_code="S01"))
    mine.sync()
    colleague.pull()
    mine.clock = lambda: time.time() - 60
    mine.save("photo", photo_id, {"item_code": "S02"})
    colleague.save("photo", photo_id, {"item_code": "S03"})
    colleague.sync()
    mine.pull()
    assert mine.get("photo", photo_id)["item_code"] == "S02"  # mine, waiting, over theirs

    report = mine.sync()

    assert [c["kept"] for r in report.conflicts for c in r["conflicts"]] == ["server"]
    colleague.pull()
    assert mine.get("photo", photo_id) == colleague.get("photo", photo_id)
    assert mine.get("photo", photo_id)["item_code"] == "S03"


# -- what the pad shows of a change refused for good, and the officer's correction ----------------


def test_an_edit_refused_for_good_is_not_shown_as_the_record_s_value(app, client, world, tmp_path):
    """A refused edit is kept aside in failed(), for the app to show with its reason; the
    record shows what the server holds again (here the origin it had), not the refused value,
    while the officer's other queued edits stay on top of it."""
    pad = make_client(client, tmp_path, "officer1", "pad-refused")
    inspection_id = synced_inspection(pad, world)
    pad.save("inspection", inspection_id, {"origin": "teleport"})
    pad.save("inspection", inspection_id, {"findings": "门口堆物"})  # a change of its own

    pad.push()

    assert [f["error"]["error"] for f in pad.failed()] == ["validation_failed"]
    assert on_server(app, inspection_id)["findings"] == "门口堆物"
    shown = pad.get("inspection", inspection_id)
    assert (shown["origin"], shown["findings"]) == ("patrol", "门口堆物")


def test_a_refused_photo_edit_gives_the_photo_back_as_the_server_holds_it(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-refused-photo")
    inspection_id = synced_inspection(pad, world)
    photo_id = str(uuid.uuid4())
    pad.save("photo", photo_id, photo_metadata(inspection_id))
    pad.sync()
    before = pad.get("photo", photo_id)
    pad.save("photo", photo_id, {"taken_at": "yesterday, about noon"})

    pad.sync()

    assert [f["error"]["error"] for f in pad.failed()] == ["validation_failed"]
    assert pad.get("photo", photo_id) == before


def test_correcting_a_refused_create_with_a_new_save_sends_the_whole_record(
    app, client, world, tmp_path
):
    """README: a change refused for good is kept aside in failed(), and "the officer's
    correction is a new save()". For a new inspection refused for one bad field, the
    correction of that field goes as a create of the record as the pad shows it (a create
    needs every field), and the inspection reaches the server."""
    pad = make_client(client, tmp_path, "officer1", "pad-fix")
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"], origin="teleport"))
    pad.push()
    [refused] = pad.failed()
    assert "origin" in refused["error"]["errors"]["json"]
    assert pad.get("inspection", inspection_id)["origin"] == "teleport"  # for the officer to fix

    pad.save("inspection", inspection_id, {"origin": "patrol"})
    results = pad.push()

    assert [r["status"] for r in results] == ["applied"]
    assert on_server(app, inspection_id)["answers"] == new_inspection(world, [])["answers"]
    pad.pull()
    assert pad.get("inspection", inspection_id)["origin"] == "patrol"
    assert pad.version("inspection", inspection_id) == 1


def test_discarding_a_refused_create_leaves_the_pad_with_nothing_to_send(
    app, client, world, tmp_path
):
    """The officer gives up on a new inspection the server refused and deletes it: it leaves
    the pad at once. A delete of a record the server never stored would only be refused in
    turn, after waiting through ten pushes in the outbox."""
    pad = make_client(client, tmp_path, "officer1", "pad-discard")
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"], origin="teleport"))
    pad.push()
    assert len(pad.failed()) == 1

    pad.save("inspection", inspection_id, {}, op="delete")

    assert pad.get("inspection", inspection_id) is None
    assert pad.pending() == 0 and pad.push() == []
    assert len(pad.failed()) == 1  # the refusal is still there to show
    assert on_server(app, inspection_id) is None


def test_a_correction_queued_behind_a_refused_create_whose_answer_was_lost_creates_it(
    app, client, world, tmp_path
):
    """The create's answer was lost, so the officer's correction was queued as an edit of it.
    The create is refused when sent again: the correction then carries the whole record, and
    goes as its create."""
    pad = make_client(client, tmp_path, "officer1", "pad-fix2")
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"], origin="teleport"))
    lose_the_answer_of_the_next_push(pad)
    pad.save("inspection", inspection_id, {"origin": "patrol"})
    assert pad.pending() == 2

    results = pad.push()

    assert [r["status"] for r in results] == ["rejected", "applied"]
    assert on_server(app, inspection_id) is not None and pad.pending() == 0


def test_a_delete_the_server_refuses_brings_the_record_back(app, client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-b3")
    inspection_id = synced_inspection(pad, world, status="submitted")
    pad.save("inspection", inspection_id, {}, op="delete")
    assert pad.get("inspection", inspection_id) is None

    report = pad.sync()

    assert report.results[0]["status"] == "conflict"  # a submitted record is not deleted
    assert on_server(app, inspection_id) is not None
    assert pad.get("inspection", inspection_id)["status"] == "submitted"


def test_a_pull_does_not_bring_back_a_record_whose_delete_waits(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-k")
    colleague = make_client(client, tmp_path, "officer2", "pad-k2")
    inspection_id = synced_inspection(pad, world, officers=("officer1", "officer2"))
    colleague.pull()
    colleague.save("inspection", inspection_id, {"findings": "同事改了"})
    colleague.sync()
    pad.save("inspection", inspection_id, {}, op="delete")

    pad.pull()

    assert pad.get("inspection", inspection_id) is None
    # The colleague's change since is no edit of ours: the delete is refused, the record (as
    # the colleague left it) comes back.
    [result] = pad.push()
    assert result["status"] == "conflict"
    assert pad.get("inspection", inspection_id)["findings"] == "同事改了"


def test_an_edit_of_a_record_deleted_elsewhere_ends_in_the_conflict_log(client, world, tmp_path):
    mine = make_client(client, tmp_path, "officer1", "pad-c1")
    colleague = make_client(client, tmp_path, "officer2", "pad-c2")
    inspection_id = synced_inspection(mine, world, officers=("officer1", "officer2"))
    colleague.pull()
    colleague.save("inspection", inspection_id, {}, op="delete")
    assert [r["status"] for r in colleague.sync().results] == ["applied"]
    mine.save("inspection", inspection_id, {"findings": "离线补充的记录"})

    report = mine.sync()

    assert [r["status"] for r in report.results] == ["conflict"]
    assert mine.pending() == 0 and mine.get("inspection", inspection_id) is None


def test_a_change_that_waits_for_a_record_that_never_comes_is_kept_aside(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-w")
    pad.save(
        "photo",
        uuid.uuid4(),
        {
            "inspection_id": str(uuid.uuid4()),  # an inspection no one will ever push
            "taken_at": "2026-11-20T09:35:00+08:00",
            "sha256": "ab" * 32,
            "size": 10,
            "content_type": "image/jpeg",
        },
    )
    for _ in range(MAX_WAITS - 1):
        pad.push()
        assert pad.pending() == 1 and pad.failed() == []

    pad.push()

    assert pad.pending() == 0
    assert [f["error"]["error"] for f in pad.failed()] == ["not_found"]


# -- lost answers and the versions that follow -----------------------------------------------------


def test_a_delete_after_a_create_whose_answer_was_lost_deletes(app, client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-d1")
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    lose_the_answer_of_the_next_push(pad)
    assert on_server(app, inspection_id) is not None
    pad.save("inspection", inspection_id, {}, op="delete")

    results = pad.push()

    assert [r["status"] for r in results] == ["applied", "applied"]
    assert on_server(app, inspection_id) is None and pad.pending() == 0


def test_an_edit_after_a_create_whose_answer_was_lost_is_no_conflict(app, client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-d2")
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    lose_the_answer_of_the_next_push(pad)
    pad.save("inspection", inspection_id, {"findings": "补充"})

    results = pad.push()

    assert [r["status"] for r in results] == ["applied", "applied"]
    assert on_server(app, inspection_id)["findings"] == "补充"


def test_an_edit_after_a_push_refused_by_a_sign_out_is_no_conflict(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-d4")
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    client.delete("/api/v1/auth/token", headers={"Authorization": f"Bearer {pad.token}"})
    with pytest.raises(SyncError, match="401"):
        pad.push()
    pad.login("officer1", PASSWORD)
    pad.save("inspection", inspection_id, {"findings": "补充"})

    assert [r["status"] for r in pad.push()] == ["applied", "applied"]


def test_an_edit_then_a_delete_while_offline_deletes(app, client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-d3")
    inspection_id = synced_inspection(pad, world)
    pad.save("inspection", inspection_id, {"findings": "写错了"})
    pad.save("inspection", inspection_id, {}, op="delete")
    assert pad.pending() == 1  # the delete took the edit's place

    results = pad.push()

    assert [r["status"] for r in results] == ["applied"]
    assert on_server(app, inspection_id) is None


def test_edits_of_one_record_queued_apart_each_edit_the_version_before(
    app, client, world, tmp_path
):
    pad = make_client(client, tmp_path, "officer1", "pad-v")
    inspection_id = synced_inspection(pad, world)
    pad.save("inspection", inspection_id, {"findings": "第一稿"})
    pad.save("inspection", inspection_id, {"outcome": "compliant"})  # a change of its own
    assert pad.pending() == 2

    results = pad.push()

    assert [(r["status"], r["version"]) for r in results] == [("applied", 2), ("applied", 3)]
    assert pad.version("inspection", inspection_id) == 3


# -- resets, clocks, sizes, bad values, sign-in ------------------------------------------------


def test_a_reset_keeps_the_records_only_this_device_has(app, client, world, tmp_path):
    from fieldapp.auth.models import Role, User

    pad = make_client(client, tmp_path, "officer1", "pad-e")
    pad.pull()
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    with app.app_context():
        db.session.get(User, world.users["officer1"].id).role = Role.leader
        db.session.commit()

    pad.pull()  # the scope changed: the server answers reset

    assert pad.pending() == 1
    assert pad.get("inspection", inspection_id)["target_id"] == str(world.targets["shop1"].id)
    pad.sync()
    assert on_server(app, inspection_id) is not None


def test_the_clock_stays_a_valid_hlc_when_the_wall_clock_stalls(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-g")
    pad.clock = lambda: 1_763_712_000.0
    clocks = [pad.next_hlc() for _ in range(10_002)]
    assert clocks == sorted(clocks) and len(set(clocks)) == len(clocks)
    assert clocks[-1].startswith("0001763712000001:0001:")
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))

    [result] = pad.push()

    assert result["status"] == "applied" and pad.failed() == []


def test_a_batch_over_the_server_s_size_limit_goes_in_halves(
    app, client, world, tmp_path, monkeypatch
):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 40_000)
    pad = make_client(client, tmp_path, "officer1", "pad-h")
    officer = str(world.users["officer1"].id)
    tracks = [
        [
            {
                "t": f"2026-11-20T{hour:02d}:{s // 60:02d}:{s % 60:02d}+08:00",
                "lon": 121.47,
                "lat": 31.37,
            }
            for s in range(200)
        ]
        for hour in range(8)
    ]
    sizes = [len(json.dumps(points)) for points in tracks]
    assert sum(sizes) > 40_000 > max(sizes) * 2  # too large together, not in halves
    for points in tracks:
        pad.save("track", uuid.uuid4(), {"officer_id": officer, "points": points})
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))

    results = pad.push()

    assert [r["status"] for r in results] == ["applied"] * 9
    assert on_server(app, inspection_id) is not None


def test_a_change_alone_over_the_size_limit_is_kept_aside_and_the_rest_goes(
    app, client, world, tmp_path, monkeypatch
):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 20_000)
    pad = make_client(client, tmp_path, "officer1", "pad-h2")
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    pad.save("inspection", uuid.uuid4(), new_inspection(world, ["officer1"], findings="长" * 9000))

    [result] = pad.push()

    assert result["status"] == "applied" and on_server(app, inspection_id) is not None
    assert [f["error"]["error"] for f in pad.failed()] == ["payload_too_large"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_value_that_is_not_json_is_refused_when_saved(client, world, tmp_path, bad):
    pad = make_client(client, tmp_path, "officer1", "pad-nan")
    fields = new_inspection(world, ["officer1"])
    fields["location"] = {**fields["location"], "accuracy_m": bad}
    with pytest.raises(ValueError, match="not JSON"):
        pad.save("inspection", uuid.uuid4(), fields)
    assert pad.pending() == 0


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"findings": "门口堆物\ud83c"}, "findings"),
        ({"answers": {"S01": answer("fail", "\udc00跨门经营")}}, "answers.S01.note"),
    ],
    ids=["findings", "an-answer-s-note"],
)
def test_text_with_half_a_character_is_refused_when_saved(
    app, client, world, tmp_path, fields, named
):
    """An emoji cut in half by a UTF-16 text field (an unpaired surrogate) can go in no UTF-8
    body: saved, it would stop every push of the pad from then on. The pad refuses it at
    once, naming the field, and the officer's other work goes."""
    pad = make_client(client, tmp_path, "officer1", "pad-surrogate")
    with pytest.raises(ValueError, match=f"{named} holds text that is not Unicode"):
        pad.save("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]) | fields)
    assert pad.pending() == 0
    good = uuid.uuid4()
    pad.save("inspection", good, new_inspection(world, ["officer1"]))

    assert [r["status"] for r in pad.push()] == ["applied"]
    assert on_server(app, good) is not None


def test_a_delete_with_fields_is_refused_when_saved(client, world, tmp_path):
    """The server would refuse it on `fields` (nothing sent is dropped unread): the pad says so
    at once, and the record stays as it was."""
    pad = make_client(client, tmp_path, "officer1", "pad-del")
    inspection_id = synced_inspection(pad, world)
    with pytest.raises(ValueError, match="carries no fields"):
        pad.save("inspection", inspection_id, {"findings": "x"}, op="delete")
    assert pad.pending() == 0
    assert pad.get("inspection", inspection_id) is not None


def test_a_rate_limited_sign_in_says_so_at_once(client, world, tmp_path):
    slept = []
    pad = SyncClient(
        FlaskTransport(client), str(tmp_path / "j.sqlite3"), "pad-j", sleep=slept.append
    )
    for _ in range(5):
        with pytest.raises(SyncError):
            pad.login("officer1", "wrong password")
    with pytest.raises(SyncError, match="429"):
        pad.login("officer1", PASSWORD)
    assert slept == []


def test_a_delete_the_server_rejects_for_good_brings_the_record_back(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-del")
    pad.pull()
    target_id = str(world.targets["shop1"].id)
    before = pad.get("target", target_id)
    pad.save("target", target_id, {}, op="delete")  # targets are not deleted from devices

    pad.sync()

    assert [f["error"]["error"] for f in pad.failed()] == ["validation_failed"]
    assert pad.get("target", target_id) == before


def test_changes_behind_a_record_that_waits_are_still_sent(app, client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-w2")
    pad.batch_size = 1
    photo = str(uuid.uuid4())
    pad.save(
        "photo",
        photo,
        {
            "inspection_id": str(uuid.uuid4()),
            "taken_at": "2026-11-20T09:35:00+08:00",
            "sha256": "ab" * 32,
            "size": 10,
            "content_type": "image/jpeg",
        },
    )
    [waiting] = pad.push()
    assert waiting["error"]["error"] == "not_found"
    pad.save("photo", photo, {"item_code": "S01"})
    pad.save("photo", photo, {"taken_at": "2026-11-20T09:36:00+08:00"})
    other = uuid.uuid4()
    pad.save("inspection", other, new_inspection(world, ["officer1"]))

    pad.push()

    assert on_server(app, other) is not None


def test_an_inspection_read_again_after_a_conflict_looks_as_a_pull_gives_it(
    client, world, tmp_path
):
    mine = make_client(client, tmp_path, "officer1", "pad-r1")
    colleague = make_client(client, tmp_path, "officer2", "pad-r2")
    now = time.time()
    mine.clock = lambda: now - 60
    inspection_id = synced_inspection(mine, world, officers=("officer1", "officer2"))
    colleague.pull()
    mine.save("inspection", inspection_id, {"findings": "早"})
    colleague.save("inspection", inspection_id, {"findings": "晚"})
    colleague.sync()
    [result] = mine.push()
    assert result["status"] == "conflict" and result["conflicts"][0]["kept"] == "server"

    mine.pull()

    fresh = make_client(client, tmp_path, "officer1", "pad-r3")
    fresh.pull()
    assert mine.get("inspection", inspection_id) == fresh.get("inspection", inspection_id)
    assert mine.version("inspection", inspection_id) == fresh.version("inspection", inspection_id)


def test_a_change_beaten_by_a_concurrent_write_waits_and_goes_again(
    app, client, world, tmp_path, monkeypatch
):
    """A change whose write hits another transaction's row committed meanwhile (two devices
    creating one record at once, say) is answered 409 ``version_conflict``, "retry": the pad
    keeps it, and sends it again at the next push, when it applies."""
    from sqlalchemy.exc import IntegrityError

    from sync.entities import InspectionHandler

    pad = make_client(client, tmp_path, "officer1", "pad-a")
    inspection_id = synced_inspection(pad, world)
    pad.save("inspection", inspection_id, {"findings": "第二次检查"})
    apply = InspectionHandler.apply

    def beaten(self, ctx, change):
        raise IntegrityError("INSERT", {}, Exception("duplicate key (a concurrent push)"))

    monkeypatch.setattr(InspectionHandler, "apply", beaten)
    [result] = pad.push()
    assert result["status"] == "rejected"
    assert (result["error"]["code"], result["error"]["error"]) == (409, "version_conflict")
    assert pad.pending() == 1 and pad.failed() == []

    monkeypatch.setattr(InspectionHandler, "apply", apply)
    [result] = pad.push()
    assert result["status"] == "applied"
    assert on_server(app, inspection_id)["findings"] == "第二次检查"
    assert pad.pending() == 0


def test_a_reset_keeps_showing_a_create_whose_push_did_not_get_through(
    app, client, world, tmp_path
):
    """A create marked sent whose request never reached the server (the link dropped first)
    is only on this pad, like one not sent yet: a reset keeps it shown, and it goes at the
    next push."""
    from fieldapp.auth.models import Role, User

    pad = make_client(client, tmp_path, "officer1", "pad-e2")
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    pad.transport.fail_before = 1.0
    with pytest.raises(TransportError):
        pad.push()
    pad.transport.fail_before = 0.0
    with app.app_context():
        db.session.get(User, world.users["officer1"].id).role = Role.leader
        db.session.commit()

    pad.pull()  # the scope changed: the server answers reset

    assert pad.get("inspection", inspection_id) is not None
    assert [r["status"] for r in pad.push()] == ["applied"]


# -- a pad shared by several officers, and by several clients ----------------------------------


def signed_out(client, pad) -> None:
    client.delete("/api/v1/auth/token", headers={"Authorization": f"Bearer {pad.token}"})


def test_another_officer_signing_in_on_the_pad_pulls_their_own_copy(client, world, tmp_path):
    """Pads are shared between shifts. When officer2 signs in after officer1, the pad drops
    officer1's copy and cursor (the server refuses one user's cursor to another) and pulls
    officer2's; officer1's queued work stays, shown and queued."""
    pad = make_client(client, tmp_path, "officer1", "pad-shared")
    pad.pull()
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    signed_out(client, pad)

    pad.login("officer2", PASSWORD)
    pad.pull()

    assert set(pad.records("target")) == {
        str(world.targets["shop1"].id),
        str(world.targets["site1"].id),
    }
    assert pad.pending() == 1 and pad.get("inspection", inspection_id) is not None


class SeenHeaders(FlaskTransport):
    """The transport, noting each request's path and whether it carried a token."""

    def __init__(self, client):
        super().__init__(client)
        self.sent: list[tuple[str, bool]] = []

    def request(self, method, path, *, headers=None, **kwargs):
        self.sent.append((f"{method} {path}", "Authorization" in (headers or {})))
        return super().request(method, path, headers=headers, **kwargs)


def test_a_sign_in_on_a_shared_pad_goes_without_the_last_user_s_token(client, world, tmp_path):
    """Whoever signs in is named by what they typed; the last user's token, sent along, would
    have the server take the attempt for theirs. Requests after the sign-in carry the new
    user's token."""
    transport = SeenHeaders(client)
    pad = SyncClient(transport, str(tmp_path / "shared.sqlite3"), "pad-shared", sleep=lambda s: 0)
    pad.login("officer1", PASSWORD)
    with pytest.raises(SyncError):
        pad.login("officer2", "wrong")
    pad.login("officer2", PASSWORD)
    pad.pull()
    assert transport.sent[:3] == [("POST /auth/token", False)] * 3
    assert transport.sent[3:] and all(carried for _, carried in transport.sent[3:])


def test_a_pad_pulls_again_after_the_server_s_secret_key_changed(
    app, client, world, tmp_path, monkeypatch
):
    """README: a new secret key has every device sign in again. The pad's cursor was signed
    with the old key and the server answers 422 on it: the pad starts over without a cursor
    (its queued changes kept), instead of failing every pull from then on."""
    pad = make_client(client, tmp_path, "officer1", "pad-rekey")
    pad.pull()
    inspection_id = synced_inspection(pad, world)
    pad.save("inspection", inspection_id, {"findings": "未推送的记录"})
    monkeypatch.setitem(app.config, "SECRET_KEY", "a-brand-new-generated-secret-key-0123456789")
    pad.login("officer1", PASSWORD)

    pad.pull()

    assert str(world.targets["shop1"].id) in pad.records("target")
    assert pad.get("inspection", inspection_id)["findings"] == "未推送的记录"
    assert [r["status"] for r in pad.push()] == ["applied"]


def test_a_pull_refused_for_another_reason_still_says_so(client, world, tmp_path):
    """Only a refused cursor starts the copy over: another 422 is the app's to see."""
    pad = make_client(client, tmp_path, "officer1", "pad-limit")
    with pytest.raises(SyncError, match="422"):
        pad.pull(limit=5000)


def test_an_officer_s_queued_work_waits_for_them_through_a_colleague_s_shift(
    app, client, world, tmp_path
):
    """officer1 saves an inspection with no signal and signs out; officer2 signs in on the same
    pad and syncs. officer1's change is not sent with officer2's token (the server would
    refuse it for good: officer2 is not one of its officers); it goes when officer1 signs in
    again, and officer2's own work goes meanwhile."""
    pad = make_client(client, tmp_path, "officer1", "pad-shift")
    mine = uuid.uuid4()
    pad.save("inspection", mine, new_inspection(world, ["officer1"]))
    signed_out(client, pad)

    pad.login("officer2", PASSWORD)
    theirs = uuid.uuid4()
    pad.save("inspection", theirs, new_inspection(world, ["officer2"]))
    report = pad.sync()
    assert [r["id"] for r in report.results] == [str(theirs)] and pad.failed() == []
    assert on_server(app, mine) is None and pad.pending() == 1
    signed_out(client, pad)

    pad.login("officer1", PASSWORD)
    assert [r["status"] for r in pad.push()] == ["applied"]

    assert on_server(app, mine) is not None and pad.pending() == 0


OUTBOX_OF_AN_OLDER_CLIENT = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, change_id TEXT NOT NULL UNIQUE,
    entity TEXT NOT NULL, record_id TEXT NOT NULL, body TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0, error TEXT
);
CREATE TABLE records (
    entity TEXT NOT NULL, id TEXT NOT NULL, version INTEGER, data TEXT, PRIMARY KEY (entity, id)
);
CREATE TABLE uploads (
    photo_id TEXT PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    content_type TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', error TEXT
);
"""


def test_work_queued_by_an_older_client_goes_with_whoever_signs_in(app, client, world, tmp_path):
    """A pad updated with work still queued: its file is taken as it is (the new columns
    added), and what it queued, saved before changes had an author, goes with the next
    sign-in."""
    import sqlite3

    path = tmp_path / "pad-old.sqlite3"
    inspection_id = uuid.uuid4()
    queued = {
        "change_id": str(uuid.uuid4()),
        "entity": "inspection",
        "id": str(inspection_id),
        "op": "upsert",
        "base_version": None,
        "hlc": f"{int(time.time() * 1000):016d}:0000:pad-old",
        "fields": new_inspection(world, ["officer1"]),
    }
    old = sqlite3.connect(path)
    old.executescript(OUTBOX_OF_AN_OLDER_CLIENT)
    old.execute(
        "INSERT INTO outbox (change_id, entity, record_id, body) VALUES (?, 'inspection', ?, ?)",
        (queued["change_id"], str(inspection_id), json.dumps(queued)),
    )
    old.execute(
        "INSERT INTO records VALUES ('inspection', ?, NULL, ?)",
        (str(inspection_id), json.dumps(queued["fields"])),
    )
    old.commit()
    old.close()

    pad = SyncClient(FlaskTransport(client), str(path), "pad-old", sleep=lambda s: None)
    pad.login("officer1", PASSWORD)

    assert [r["status"] for r in pad.push()] == ["applied"]
    assert on_server(app, inspection_id) is not None


def test_an_edit_saved_while_another_client_of_the_file_sends_its_batch_is_not_lost(
    app, client, world, tmp_path
):
    """The app's screen and a background sync service may each open the pad's file. The
    officer saves an edit while the service is putting its batch together: the edit is not
    folded into the change the service is sending (which it would then delete once answered),
    but queued after it, and reaches the server."""
    service = make_client(client, tmp_path, "officer1", "pad-two")
    inspection_id = uuid.uuid4()
    service.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    ready, go, saving = threading.Event(), threading.Event(), threading.Event()
    failures = []

    def the_screen():
        try:
            screen = SyncClient(service.transport, str(tmp_path / "pad-two.sqlite3"), "pad-two")
            screen.db.set_trace_callback(
                lambda sql: saving.set() if sql.startswith("BEGIN IMMEDIATE") else None
            )
            ready.set()
            go.wait(5)
            screen.save("inspection", inspection_id, {"findings": "门口堆放纸箱"})
            screen.close()
        except Exception as exc:  # reported by the test's thread
            failures.append(exc)

    screen = threading.Thread(target=the_screen)
    screen.start()
    assert ready.wait(5)
    next_batch = service._next_batch

    def read_while_the_officer_saves(skip, limit):
        rows = next_batch(skip, limit)
        if rows and not go.is_set():
            go.set()  # the save starts now, and waits for the batch to be marked sent
            assert saving.wait(5)
        return rows

    service._next_batch = read_while_the_officer_saves
    results = service.push()
    screen.join(10)

    assert not failures, failures
    # The create, then the edit: a change of its own, queued once the create was marked sent.
    assert [r["status"] for r in results] == ["applied", "applied"]
    assert on_server(app, inspection_id)["findings"] == "门口堆放纸箱"
    assert service.pending() == 0


# -- how long the pad waits ------------------------------------------------------------------


class Scripted:
    """A transport answering from a script of Responses; once it is done, an empty pull
    page."""

    def __init__(self, *script: Response):
        self.script = list(script)
        self.calls = 0

    def request(self, method, path, **kwargs) -> Response:
        self.calls += 1
        if self.script:
            return self.script.pop(0)
        return Response(200, {"changes": [], "cursor": "c", "has_more": False}, {})


UNAVAILABLE = {
    "code": 503,
    "status": "Service Unavailable",
    "error": "database_unavailable",
    "message": "try again",
    "errors": {},
}


def scripted_pad(tmp_path, transport: Scripted, slept: list) -> SyncClient:
    pad = SyncClient(transport, str(tmp_path / "scripted.sqlite3"), "pad-s", sleep=slept.append)
    with pad.db:
        pad._set_meta("token", "t0ken")
    return pad


@pytest.mark.parametrize(
    "header", [{"Retry-After": "5"}, {"retry-after": "5"}], ids=["as-sent", "lower-case"]
)
def test_a_503_s_retry_after_is_waited_out_however_the_header_is_spelt(tmp_path, header):
    """Header names are case-insensitive (RFC 9110 5.1); HTTP/2 proxies and Envoy send them in
    lower case. Every wait is at least the 5 s the server asked for, not the pad's own short
    backoff, which would hammer a restarting server and give up within seconds."""
    slept: list[float] = []
    transport = Scripted(*[Response(503, UNAVAILABLE, header) for _ in range(3)])
    assert scripted_pad(tmp_path, transport, slept).pull() == 0
    assert len(slept) == 3 and min(slept) >= 5, slept


def test_a_retry_after_given_as_a_date_is_waited_out(tmp_path):
    """Proxies and load balancers send Retry-After as an HTTP-date (RFC 9110 10.2.3): the pad
    waits until then and tries again, rather than stopping with an error."""
    slept: list[float] = []
    now = time.time()
    transport = Scripted(Response(503, UNAVAILABLE, {"Retry-After": formatdate(now + 30)}))
    pad = scripted_pad(tmp_path, transport, slept)
    pad.clock = lambda: now
    assert pad.pull() == 0
    assert transport.calls == 2 and slept and 29 <= slept[0] <= 30.5, slept


def test_a_retry_after_of_hours_ends_the_sync_instead_of_blocking_it(tmp_path):
    """A proxy in a maintenance window asks for 3 hours: the pad does not sit in sync() that
    long. The call ends with the server's answer, and what was queued goes at the next sync."""
    slept: list[float] = []
    transport = Scripted(Response(503, UNAVAILABLE, {"Retry-After": "10800"}))
    pad = scripted_pad(tmp_path, transport, slept)
    pad.save("target", uuid.uuid4(), {"name": "王记面馆"})
    with pytest.raises(SyncError):
        pad.push()
    assert slept == [] and transport.calls == 1
    assert pad.pending() == 1


@pytest.mark.parametrize("value", ["soon", "Wed, 21 Oct 2015 07:28:00 GMT", "-1", ""])
def test_a_retry_after_past_or_unreadable_leaves_the_pad_s_own_backoff(tmp_path, value):
    slept: list[float] = []
    transport = Scripted(Response(503, UNAVAILABLE, {"Retry-After": value}))
    assert scripted_pad(tmp_path, transport, slept).pull() == 0
    assert transport.calls == 2 and len(slept) == 1 and slept[0] < 1


def test_a_proxy_s_408_request_timeout_is_tried_again(tmp_path):
    """A proxy that timed a slow request out (408) says nothing of the request: the pad sends
    it again, as for a 503."""
    slept: list[float] = []
    transport = Scripted(Response(408, None, {}))
    assert scripted_pad(tmp_path, transport, slept).pull() == 0
    assert transport.calls == 2
