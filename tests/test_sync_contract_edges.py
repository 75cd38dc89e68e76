"""Push and resolve where API.md's words are taken literally: a null among the changes, clocks
and codes with a trailing newline or other digits, fields sent with a delete, a choice of value
on a delete, an empty edit of a frozen record, a photo moved onto an approved inspection, a
target seen through a task in another squadron, a draft ordering rectification before its
deadline, an amendment naming an item the checklist lacks, and a target out of scope. Each was
answered otherwise once (a contract review's probes); each answer here is what a device or a
leader can act on."""

from __future__ import annotations

import uuid

import pytest

from fieldapp.auth import operations as auth_ops
from fieldapp.db import db
from tests.conftest import PASSWORD, Api, assert_error
from tests.review_helpers import push_inspection, review_ok
from tests.sync_helpers import FakeDevice, new_inspection, photo_metadata


@pytest.fixture
def officer(login):
    return FakeDevice(login("officer1"))


def rejected(result: dict, field: str, error: str = "validation_failed", code: int = 422):
    """The change was refused with this error, naming ``field`` (None: no field named)."""
    assert result["status"] == "rejected", result
    assert (result["error"]["code"], result["error"]["error"]) == (code, error), result
    if field is not None:
        assert field in result["error"]["errors"]["json"], result
    return result["error"]


def logged(leader, record) -> list[dict]:
    return leader.get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]


def test_a_null_among_the_changes_is_refused_alone(officer, world):
    """API.md: one rejected change never blocks the others, a JSON null among them too."""
    good = officer.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
    response = officer.api.post(
        "/api/v1/sync/push", json={"device_id": officer.device_id, "changes": [None, good]}
    )
    assert response.status_code == 200, response.get_json()
    bad, ok = response.get_json()["results"]
    assert bad["status"] == "rejected" and bad["error"]["error"] == "validation_failed", bad
    assert ok["status"] == "applied", ok


@pytest.mark.parametrize(
    "hlc",
    [
        "0001763712000123:0002:dev-officer1\n",
        "０００１７６３７１２０００１２３:0002:dev-officer1",  # full-width digits
        "000176371200012٣:0002:dev-officer1",  # an Arabic-Indic digit
    ],
)
def test_a_clock_is_ascii_digits_and_nothing_after_the_device(officer, world, hlc):
    change = officer.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
    change["hlc"] = hlc
    [result] = officer.push_ok(change)
    rejected(result, "hlc")


def test_an_item_code_with_a_trailing_newline_is_refused(officer, world):
    fields = new_inspection(world, ["officer1"])
    fields["answers"] = {"S01\n": {"result": "pass", "note": "", "photo_ids": []}}
    [result] = officer.push_ok(officer.change("inspection", uuid.uuid4(), fields))
    rejected(result, "answers")


def test_a_device_id_with_a_trailing_newline_gets_no_token(client):
    response = client.post(
        "/api/v1/auth/token",
        json={"username": "officer1", "password": PASSWORD, "device_id": "pad-1\n"},
    )
    body = assert_error(response, 422, "validation_failed")
    assert "device_id" in body["errors"]["json"]


@pytest.mark.parametrize("device_id", ["server", "Server", "SERVER"])
def test_a_pad_cannot_sign_in_as_server_the_servers_own_clock(client, world, device_id):
    """The merge rules tell the server's edits (a leader's, a resolution) from a device's by the
    clock's node, ``server``: a pad of that name had its second edit queued on the same base
    logged as a conflict with itself, and its confirmation of a leader's value not taken, so an
    older rename won over the leader's."""
    response = client.post(
        "/api/v1/auth/token",
        json={"username": "officer1", "password": PASSWORD, "device_id": device_id},
    )
    body = assert_error(response, 422, "validation_failed")
    assert "server" in body["errors"]["json"]["device_id"][0]
    for neighbour in ("servers", "server-2", "pad-server"):
        response = client.post(
            "/api/v1/auth/token",
            json={"username": "officer1", "password": PASSWORD, "device_id": neighbour},
        )
        assert response.status_code == 201, response.get_json()


def test_a_pad_signed_in_as_server_before_the_rule_cannot_push_but_keeps_its_changes(
    app, client, world
):
    """A token issued to a device called ``server`` before sign-in refused the name: its push
    is refused whole (422 on device_id, nothing applied, so the pad keeps its outbox rather
    than setting changes aside), and it still pulls."""
    with app.app_context():
        issued = auth_ops.login(
            auth_ops.AuthSettings.from_config(app.config),
            username="officer1",
            password=PASSWORD,
            device_id="server",
            device_name=None,
            remote_addr=None,
        )
        db.session.commit()
        secret = issued.secret
    pad = FakeDevice(Api(client, secret, "server"))
    record = uuid.uuid4()
    response = pad.push(pad.change("inspection", record, new_inspection(world, ["officer1"])))
    body = assert_error(response, 422, "validation_failed")
    assert "device_id" in body["errors"]["json"], body
    assert pad.api.get(f"/api/v1/inspections/{record}").status_code == 404
    assert pad.api.get("/api/v1/sync/pull").status_code == 200


def test_a_delete_with_fields_is_refused_and_the_record_stays(officer, world, login):
    """API.md: nothing sent is silently dropped; a delete's fields would be."""
    record = uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    [result] = officer.push_ok(
        officer.change("inspection", record, {"findings": "x"}, op="delete", base_version=1)
    )
    rejected(result, "fields")
    assert login("leader1").get(f"/api/v1/inspections/{record}").status_code == 200
    # The same delete without fields goes.
    [result] = officer.push_ok(officer.change("inspection", record, op="delete", base_version=1))
    assert result["status"] == "applied", result


def test_a_delete_entry_is_settled_by_keeping_or_deleting_not_by_a_value(login, world, officer):
    record = push_inspection(world, officer)
    [result] = officer.push_ok(officer.change("inspection", record, op="delete", base_version=1))
    conflict_id = result["conflicts"][0]["conflict_id"]
    leader = login("leader1")
    response = leader.post(
        f"/api/v1/conflicts/{conflict_id}/resolve",
        json={"keep": "value", "value": {"findings": "keep this"}},
    )
    assert "keep" in assert_error(response, 422, "validation_failed")["errors"]["json"]
    # Nothing happened: the record is there and the entry still open, to settle properly.
    assert leader.get(f"/api/v1/inspections/{record}").status_code == 200
    [entry] = logged(leader, record)
    assert entry["status"] == "open"
    response = leader.post(f"/api/v1/conflicts/{conflict_id}/resolve", json={"keep": "server"})
    assert response.status_code == 200, response.get_json()
    assert leader.get(f"/api/v1/inspections/{record}").status_code == 200


def test_an_empty_edit_of_an_approved_record_changes_and_logs_nothing(login, world, officer):
    record = push_inspection(world, officer)
    leader = login("leader1")
    approved = review_ok(leader, record, "approve")
    [result] = officer.push_ok(
        officer.change("inspection", record, {}, base_version=approved["version"])
    )
    assert (result["status"], result["version"]) == ("applied", approved["version"]), result
    [result] = officer.push_ok(officer.change("inspection", record, {}, base_version=1))
    assert (result["status"], result["version"]) == ("merged", approved["version"]), result
    assert logged(leader, record) == []


def test_a_photo_moved_onto_an_approved_inspection_is_refused_not_logged(login, world, officer):
    """A move is refused on any inspection; an amendment that could never be accepted would
    wait in the leader's queue for ever."""
    draft = uuid.uuid4()
    officer.push_ok(
        officer.change("inspection", draft, new_inspection(world, ["officer1", "officer2"]))
    )
    photo = uuid.uuid4()
    officer.push_ok(officer.change("photo", photo, photo_metadata(draft)))
    approved = push_inspection(world, officer)
    leader = login("leader1")
    review_ok(leader, approved, "approve")
    [result] = officer.push_ok(
        officer.change("photo", photo, {"inspection_id": approved}, base_version=1)
    )
    rejected(result, "inspection_id")
    assert logged(leader, photo) == []


def test_a_task_in_another_squadron_lets_an_officer_read_its_target_not_correct_it(
    app, login, world
):
    """API.md: officers are scoped to their squadron plus targets of tasks assigned to them;
    out-of-scope writes → 403. PATCH /targets refuses officer3 too (tests/test_scoping.py)."""
    from tests.test_scoping import assign_task

    assign_task(app, world, "shop1", "officer3")
    device = FakeDevice(login("officer3"))
    shop = world.targets["shop1"].id
    before = login("leader1").get(f"/api/v1/targets/{shop}").get_json()["name"]
    [result] = device.push_ok(device.change("target", shop, {"name": "改名了"}, base_version=1))
    rejected(result, None, "forbidden", 403)
    assert login("leader1").get(f"/api/v1/targets/{shop}").get_json()["name"] == before
    # The squadron's own officer still corrects it.
    own = FakeDevice(login("officer1"))
    [result] = own.push_ok(own.change("target", shop, {"name": "改名了"}, base_version=1))
    assert result["status"] == "applied", result


def test_a_deleted_record_is_told_about_only_within_its_scope(officer, world, login):
    """Deleting again what is deleted is `applied` (a retry under another change id), for its
    squadron; from another squadron it is an out-of-scope write (403) that tells no version."""
    record = uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    [deleted] = officer.push_ok(officer.change("inspection", record, op="delete", base_version=1))
    [again] = officer.push_ok(officer.change("inspection", record, op="delete", base_version=1))
    assert again["status"] == "applied" and again["version"] == deleted["version"], again
    stranger = FakeDevice(login("officer3"))
    for change in (
        stranger.change("inspection", record, op="delete", base_version=1),
        stranger.change("inspection", record, {"findings": "x"}, base_version=1),
    ):
        [result] = stranger.push_ok(change)
        rejected(result, None, "forbidden", 403)
        assert result["version"] is None


def test_a_co_officer_s_edit_of_a_moved_shop_s_deleted_draft_waits_in_the_log(login, world):
    """officer1 and officer2 inspect shop1 together, offline; the shop moves to squadron 2
    before the pads sync, so the draft is filed in squadron 2, where both edit it as their
    own inspection elsewhere. officer1 deletes it; officer2's pad had edited it offline. An
    edit of a record deleted meanwhile waits in the conflict log beside the deletion: it was
    refused 403 "not in your scope" for good (the tombstone's scope was its squadron's and
    the deleter's), and reached no one."""
    from tests.conftest import move_target

    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    officer1.pull_all()
    move_target(login("admin"), world.targets["shop1"].id, world.squadrons[1].id)
    record = uuid.uuid4()
    [created] = officer1.push_ok(
        officer1.change("inspection", record, new_inspection(world, ["officer1", "officer2"]))
    )
    assert created["status"] == "applied", created
    [edit] = officer2.push_ok(
        officer2.change("inspection", record, {"findings": "门前堆物已清理"}, base_version=1)
    )
    assert edit["status"] == "applied", edit  # officer2 writes it while it exists
    [deleted] = officer1.push_ok(
        officer1.change("inspection", record, op="delete", base_version=edit["version"])
    )
    assert deleted["status"] == "applied", deleted

    [late] = officer2.push_ok(
        officer2.change(
            "inspection", record, {"findings": "补充: 店招破损"}, base_version=edit["version"]
        )
    )

    assert late["status"] == "conflict", late["error"]
    assert [e["kind"] for e in logged(login("leader2"), record)] == ["delete"]


def test_a_refused_change_sent_again_is_replayed(officer, world):
    """API.md: a change_id seen before returns the first result again with replayed: true and
    changes nothing; the same id with another body is id_conflict. Refusals included, but for
    those that can pass (the record may still come), which are not remembered."""
    record = uuid.uuid4()
    bad = officer.change("inspection", record, new_inspection(world, ["officer1"], origin="bogus"))
    [first] = officer.push_ok(bad)
    rejected(first, "origin")
    [again] = officer.push_ok(bad)
    assert again == {**first, "replayed": True}
    corrected = {**bad, "fields": new_inspection(world, ["officer1"])}
    [result] = officer.push_ok(corrected)
    rejected(result, None, "id_conflict", 409)
    # A correction goes as a new change.
    [result] = officer.push_ok({**corrected, "change_id": str(uuid.uuid4())})
    assert result["status"] == "applied", result

    # An edit that arrives before its record's create is refused, not remembered: sent again
    # once the create is in, it applies.
    later = uuid.uuid4()
    edit = officer.change("inspection", later, {"findings": "门前堆物"}, base_version=1)
    [early] = officer.push_ok(edit)
    rejected(early, None, "not_found", 404)
    officer.push_ok(officer.change("inspection", later, new_inspection(world, ["officer1"])))
    [applied] = officer.push_ok(edit)
    assert (applied["status"], applied["replayed"]) == ("applied", False), applied


def test_the_client_retries_exactly_the_refusals_the_server_does_not_remember():
    """The device client stands alone (no server imports), so the two lists are kept equal
    here: a refusal the client sends again must be one the server judges anew, or the retry
    only replays it; one the server forgets but the client gives up on would never go."""
    from sync.client import RETRYABLE_REJECTIONS
    from sync.engine import MAY_PASS

    assert RETRYABLE_REJECTIONS == MAY_PASS


def test_a_draft_ordering_rectification_is_stored_before_its_deadline_is_chosen(officer, world):
    """API.md asks `outcome` and `ended_at` only to submit: an officer who picked the outcome
    but not yet the deadline saves the draft. (The table refused it, and the push answered
    `version_conflict`, which a device retries push after push and never gets through.)"""
    record = uuid.uuid4()
    fields = new_inspection(world, ["officer1"], outcome="rectification_ordered")
    [created] = officer.push_ok(officer.change("inspection", record, fields))
    assert created["status"] == "applied", created
    other = uuid.uuid4()
    officer.push_ok(officer.change("inspection", other, new_inspection(world, ["officer1"])))
    [edited] = officer.push_ok(
        officer.change("inspection", other, {"outcome": "rectification_ordered"}, base_version=1)
    )
    assert edited["status"] == "applied", edited

    # Submitting still asks for the deadline, by name; with it, the order goes in.
    submit = {"status": "submitted", "ended_at": "2026-11-20T09:50:00+00:00"}
    [refused] = officer.push_ok(officer.change("inspection", record, submit, base_version=1))
    rejected(refused, "rectification_deadline")
    [submitted] = officer.push_ok(
        officer.change(
            "inspection",
            record,
            {**submit, "rectification_deadline": "2026-11-27"},
            base_version=1,
        )
    )
    assert submitted["status"] == "applied", submitted


def test_a_rule_of_the_table_the_checks_miss_is_a_422_on_its_field_not_a_retry(
    officer, world, monkeypatch
):
    """The handlers check what the tables' rules ask; should one slip past them, the database
    refusing the row is answered 422 naming the field, and remembered, not `version_conflict`
    (the change would break the rule again at every retry)."""
    monkeypatch.setattr("sync.entities._submission_errors", lambda state, loaded: {})
    fields = new_inspection(
        world,
        ["officer1"],
        status="submitted",
        outcome="rectification_ordered",
        ended_at="2026-11-20T09:50:00+00:00",
    )
    change = officer.change("inspection", uuid.uuid4(), fields)
    [result] = officer.push_ok(change)
    error = rejected(result, "rectification_deadline")
    assert error["errors"]["json"]["rectification_deadline"] == [
        "required when rectification is ordered"
    ]
    [again] = officer.push_ok(change)
    assert again == {**result, "replayed": True}


def test_an_amendment_naming_an_item_the_checklist_lacks_is_refused_not_logged(login, world):
    """docs/sync.md: an amendment is "checked like any edit first ... so that what waits can be
    accepted". An answer for an item the checklist version lacks (an edit of a draft gets a 422
    for it) waited in the leader's queue, where accepting it failed; so did a step back to
    draft, which no edit of a submitted record may take."""
    device = FakeDevice(login("officer1"))
    record = push_inspection(world, device, officers=("officer1",))
    leader = login("leader1")
    approved = review_ok(leader, record, "approve")
    version = approved["version"]
    unknown_item = {"answers": {"S99": {"result": "fail", "note": "", "photo_ids": []}}}
    [result] = device.push_ok(
        device.change("inspection", record, unknown_item, base_version=version)
    )
    assert rejected(result, "answers")["errors"]["json"]["answers"] == {
        "S99": ["not an item of this checklist version"]
    }
    [back] = device.push_ok(
        device.change("inspection", record, {"status": "draft"}, base_version=version)
    )
    rejected(back, "status")
    [unsubmittable] = device.push_ok(
        device.change("inspection", record, {"outcome": None}, base_version=version)
    )
    rejected(unsubmittable, "outcome")
    assert logged(leader, record) == []
    # A good amendment still waits for the leader.
    [waiting] = device.push_ok(
        device.change("inspection", record, {"findings": "补充说明"}, base_version=version)
    )
    assert waiting["status"] == "conflict", waiting
    assert [e["kind"] for e in logged(leader, record)] == ["amendment"]


def test_a_target_out_of_scope_is_answered_as_one_that_does_not_exist(officer, world):
    """A new inspection naming a target not there in the officer's scope is `not_found` on
    `target_id`, and not remembered: the target may be a new shop whose report comes in a later
    batch (tests/test_sync_scenarios.py). Whether another squadron holds that id or no one does,
    the answer is the same, so it tells nothing of another squadron's records."""
    elsewhere = str(world.targets["shop2"].id)  # squadron 2's
    answers = []
    for target in (elsewhere, str(uuid.uuid4())):
        fields = new_inspection(world, ["officer1"]) | {"target_id": target}
        change = officer.change("inspection", uuid.uuid4(), fields)
        [result] = officer.push_ok(change)
        error = rejected(result, "target_id", "not_found", 404)
        [again] = officer.push_ok(change)
        assert again["replayed"] is False and again["error"] == error
        answers.append(error)
    assert answers[0] == answers[1]


def rectification_order(world, device: FakeDevice, officers=("officer1", "officer2"), **fields):
    """A submitted inspection of shop1 that ordered rectification; its id."""
    order = uuid.uuid4()
    ordered = new_inspection(
        world,
        list(officers),
        status="submitted",
        outcome="rectification_ordered",
        rectification_deadline="2026-11-27",
    )
    [created] = device.push_ok(device.change("inspection", order, ordered | fields))
    assert created["status"] == "applied", created
    return order


def test_a_follow_up_naming_an_order_it_can_read_of_another_shop_is_refused_for_good(login, world):
    """The order exists in the officer's own squadron (GET answers 200) but is of another
    shop: no retry can mend the follow-up, yet it was answered 404 not_found, not remembered,
    which the device client sends again for 10 pushes. Saying so reveals nothing of another
    squadron: 422 on follow_up_of, remembered."""
    from tests.conftest import add_shop

    officer = FakeDevice(login("officer1"))
    order = rectification_order(world, officer)
    assert login("officer1").get(f"/api/v1/inspections/{order}").status_code == 200
    other_shop = add_shop(login("leader1"), world.squadrons[0].id, "阿强水果店")
    follow_up = new_inspection(
        world, ["officer1", "officer2"], target_id=other_shop, follow_up_of=str(order)
    )
    change = officer.change("inspection", uuid.uuid4(), follow_up)

    [result] = officer.push_ok(change)

    rejected(result, "follow_up_of")
    [again] = officer.push_ok(change)
    assert again["replayed"] is True, again


def test_a_follow_up_of_a_deleted_order_is_refused_for_good(login, world):
    """officer2 deletes the draft order; officer1's pad, offline, had begun its follow-up. The
    order is gone for good (its tombstone stands), yet the follow-up was answered 404
    not_found, "send the change again once it has arrived": a retry that can never pass."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    order = uuid.uuid4()
    draft = new_inspection(
        world,
        ["officer1", "officer2"],
        outcome="rectification_ordered",
        rectification_deadline="2026-11-27",
    )
    officer1.push_ok(officer1.change("inspection", order, draft))
    [deleted] = officer2.push_ok(officer2.change("inspection", order, op="delete", base_version=1))
    assert deleted["status"] == "applied", deleted
    follow_up = new_inspection(world, ["officer1", "officer2"], follow_up_of=str(order))

    [result] = officer1.push_ok(officer1.change("inspection", uuid.uuid4(), follow_up))

    rejected(result, "follow_up_of")


def test_a_follow_up_naming_another_squadron_s_order_is_answered_as_one_that_does_not_exist(
    login, world
):
    """An order of squadron 2 (which officer1 does not read), of another shop, gets the answer
    an id no one holds gets: 404 on follow_up_of, nothing of squadron 2 revealed."""
    elsewhere = FakeDevice(login("officer3"))
    theirs = rectification_order(
        world, elsewhere, officers=("officer3",), target_id=str(world.targets["shop2"].id)
    )
    officer = FakeDevice(login("officer1"))
    answers = []
    for order in (theirs, uuid.uuid4()):
        follow_up = new_inspection(world, ["officer1"], follow_up_of=str(order))
        [result] = officer.push_ok(officer.change("inspection", uuid.uuid4(), follow_up))
        answers.append(rejected(result, "follow_up_of", "not_found", 404))
    assert answers[0] == answers[1]
