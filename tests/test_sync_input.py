"""Sync with bad input: every case gets a clear error, and the good changes still apply."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import assert_error
from tests.sync_helpers import NEW_SHOP, FakeDevice, new_inspection, photo_metadata


@pytest.fixture
def officer(login):
    return FakeDevice(login("officer1"))


def test_more_than_500_changes_is_413(officer):
    changes = [officer.change("track", uuid.uuid4(), {}) for _ in range(501)]
    assert_error(officer.push(*changes), 413, "payload_too_large")


def test_another_devices_id_is_403(officer):
    assert_error(officer.push(device_id="someone-elses-pad"), 403, "forbidden")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"changes": []}, "device_id"),
        ({"device_id": "dev-officer1"}, "changes"),
        ({"device_id": "dev-officer1", "changes": {}}, "changes"),
        ({"device_id": "dev-officer1", "changes": [], "extra": 1}, "extra"),
    ],
)
def test_a_malformed_batch_is_422(officer, body, field):
    response = officer.api.post("/api/v1/sync/push", json=body)
    assert field in assert_error(response, 422, "validation_failed")["errors"]["json"]


def test_malformed_json_is_400(officer):
    response = officer.api.post("/api/v1/sync/push", data="{", content_type="application/json")
    assert_error(response, 400, "malformed_json")


def rejected(result) -> dict:
    assert result["status"] == "rejected", result
    assert result["error"]["code"] == 422 and result["error"]["error"] == "validation_failed"
    return result["error"]["errors"]["json"]


def bad_changes(officer, world):
    good = new_inspection(world, ["officer1"])
    record = str(uuid.uuid4())
    base = {
        "change_id": str(uuid.uuid4()),
        "entity": "inspection",
        "id": record,
        "op": "upsert",
        "base_version": None,
        "hlc": officer.tick(),
        "fields": good,
    }
    return [
        ({**base, "entity": "parking_ticket"}, "entity"),
        ({**base, "entity": ["inspection"]}, "entity"),
        ({**base, "entity": {"inspection": True}}, "entity"),
        ({**base, "op": "merge"}, "op"),
        ({**base, "hlc": "yesterday"}, "hlc"),
        ({**base, "hlc": f"{1:016d}:0001:another-pad"}, "hlc"),
        ({**base, "change_id": "not-a-uuid"}, "change_id"),
        ({**base, "id": 17}, "id"),
        ({**base, "base_version": "3"}, "base_version"),
        ({**base, "base_version": -1}, "base_version"),
        ({**base, "fields": {**good, "review": {"status": "approved"}}}, "review"),
        ({**base, "fields": {**good, "score": 99}}, "score"),
        ({**base, "fields": {**good, "started_at": "tuesday"}}, "started_at"),
        ({**base, "fields": {**good, "officer_ids": "officer1"}}, "officer_ids"),
        (
            {**base, "fields": {**good, "officer_ids": [str(world.users["officer1"].id)] * 2}},
            "officer_ids",
        ),
        ({**base, "fields": {**good, "location": {"lon": "121.4", "lat": 31.3}}}, "location"),
        ({**base, "fields": {**good, "location": {"lon": 200, "lat": 31.3}}}, "location"),
        ({**base, "fields": {**good, "location": {"lon": 121.4}}}, "location"),
        ({**base, "fields": {**good, "location": {}}}, "location"),
        ({**base, "fields": {**good, "answers": {"S01": {"result": "maybe"}}}}, "answers"),
        ({**base, "fields": {**good, "answers": {"X99": {"result": "pass"}}}}, "answers"),
        ({**base, "fields": {**good, "checklist_version": 9}}, "checklist_version"),
        ({**base, "fields": {**good, "checklist_version": 2**70}}, "checklist_version"),
        ({**base, "fields": {**good, "colour": "red"}}, "colour"),
        ({**base, "fields": {k: v for k, v in good.items() if k != "answers"}}, "answers"),
        ({**base, "fields": {**good, "status": "submitted"}}, "outcome"),
        (
            {
                **base,
                "fields": {
                    **good,
                    "status": "submitted",
                    "outcome": "rectification_ordered",
                    "ended_at": "2026-11-20T10:00:00+00:00",
                },
            },
            "rectification_deadline",
        ),
        (
            {
                **base,
                "fields": {
                    **good,
                    "status": "submitted",
                    "outcome": "compliant",
                    "ended_at": "2026-11-20T08:00:00+00:00",
                },
            },
            "ended_at",
        ),
        (  # started 20 November: a deadline before that day is no deadline
            {
                **base,
                "fields": {
                    **good,
                    "outcome": "rectification_ordered",
                    "rectification_deadline": "2026-11-19",
                },
            },
            "rectification_deadline",
        ),
        (
            {
                **base,
                "fields": {
                    **good,
                    "status": "submitted",
                    "outcome": "penalty_waived",
                    "legal_basis": " \u3000 ",
                    "ended_at": "2026-11-20T10:00:00+00:00",
                },
            },
            "legal_basis",
        ),
        ({**base, "fields": {**good, "follow_up_of": record}}, "follow_up_of"),
    ]


def test_each_bad_change_is_rejected_field_by_field_and_the_good_one_applies(officer, world):
    # Each its own change id: a refused change is remembered, so one id with another body
    # would be id_conflict (test_a_refused_change_sent_again_is_replayed).
    cases = bad_changes(officer, world)
    shared = cases[0][0]["change_id"]
    cases = [
        (
            {**change, "change_id": str(uuid.uuid4())}
            if change.get("change_id") == shared
            else change,
            field,
        )
        for change, field in cases
    ]
    good = officer.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
    results = officer.push_ok(*[change for change, _ in cases], good)
    for (_, field), result in zip(cases, results, strict=False):
        assert field in rejected(result), (field, result)
    assert results[-1]["status"] == "applied"


def test_text_the_database_cannot_store_rejects_only_its_change(officer, world):
    """A NUL or an unpaired surrogate typed (or pasted) into one record must not hold back the
    device's other changes: the batch is answered, and only that change is rejected."""
    changes = [
        officer.change(
            "inspection", uuid.uuid4(), new_inspection(world, ["officer1"], findings="MARK")
        )
        for _ in range(4)
    ]
    body = json.dumps({"device_id": officer.device_id, "changes": changes})
    for text in ("门前\\u0000堆物", "\\ud800", "MARK"):
        body = body.replace("MARK", text, 1)
    body = body.replace('"MARK"', '"MARK", "\\u0000x": 1', 1)
    response = officer.api.post("/api/v1/sync/push", data=body, content_type="application/json")
    assert response.status_code == 200, response.get_json()
    nul, surrogate, bad_key, good = response.get_json()["results"]
    assert rejected(nul)["findings"] == ["text may not contain the NUL character (\\u0000)"]
    assert rejected(surrogate)["findings"] == ["text is not valid Unicode (unpaired surrogate)"]
    assert "_schema" in rejected(bad_key)
    assert good["status"] == "applied"
    listed = officer.api.get("/api/v1/inspections").get_json()["items"]
    assert [i["id"] for i in listed] == [changes[3]["id"]]


def test_an_id_that_is_not_valid_text_is_not_echoed_back(officer, world):
    change = officer.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
    body = json.dumps({"device_id": officer.device_id, "changes": [change]})
    body = body.replace(change["change_id"], "\\ud800").replace(change["id"], "x\\udc00")
    response = officer.api.post("/api/v1/sync/push", data=body, content_type="application/json")
    assert response.status_code == 200
    [result] = response.get_json()["results"]
    assert (result["change_id"], result["id"]) == (None, None)
    assert set(rejected(result)) == {"change_id", "id"}


def test_text_the_database_cannot_store_in_the_envelope_is_a_422(officer):
    body = '{"device_id": "dev-\\u0000", "changes": []}'
    response = officer.api.post("/api/v1/sync/push", data=body, content_type="application/json")
    assert "device_id" in assert_error(response, 422, "validation_failed")["errors"]["json"]


def test_a_base_version_from_the_future_is_refused(officer, world):
    record = uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    [result] = officer.push_ok(
        officer.change("inspection", record, {"findings": "x"}, base_version=7)
    )
    assert "base_version" in rejected(result)


def test_a_photo_edit_or_delete_based_on_a_version_from_the_future_is_refused(officer, world):
    """As for inspections and targets: the device's copy is not the server's, and nothing can
    be merged against it (nor is the photo deleted on its word)."""
    record, photo = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(
        officer.change("inspection", record, new_inspection(world, ["officer1"])),
        officer.change("photo", photo, photo_metadata(record, item_code="S01")),
    )

    edit, delete = officer.push_ok(
        officer.change("photo", photo, {"item_code": "S02"}, base_version=42),
        officer.change("photo", photo, op="delete", base_version=42),
    )

    assert "base_version" in rejected(edit) and "base_version" in rejected(delete)
    [pulled] = [c for c in FakeDevice(officer.api).pull_all() if c["id"] == str(photo)]
    assert (pulled["version"], pulled["data"]["item_code"]) == (1, "S01")


def test_a_point_that_converts_off_the_globe_is_refused_on_its_coordinate(officer, world):
    """Points are stored in WGS-84. Lon -180 in BD-09 is within the range every point is held
    to, but it is lon -180.0065 in WGS-84, which the targets table refuses: a reported shop got
    a retryable 409 ``version_conflict``, sent again push after push, and an inspection, a
    photo or a track stored a point off the globe. Each is refused for good, naming it."""
    off = {"lon": -180.0, "lat": 0.0, "crs": "bd09"}
    south = {"lon": 0.0, "lat": -90.0, "crs": "bd09"}
    record = uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    track = {
        "officer_id": str(world.users["officer1"].id),
        "points": [{"t": "2026-11-20T09:30:00+08:00", **off}],
    }

    results = officer.push_ok(
        officer.change("target", uuid.uuid4(), {**NEW_SHOP, "location": off}),
        officer.change("target", world.targets["shop1"].id, {"location": south}, base_version=1),
        officer.change(
            "inspection", uuid.uuid4(), new_inspection(world, ["officer1"], location=off)
        ),
        officer.change("inspection", record, {"location": south}, base_version=1),
        officer.change("photo", uuid.uuid4(), photo_metadata(record, location=off)),
        officer.change("track", uuid.uuid4(), track),
    )

    errors = [rejected(result) for result in results]
    assert [list(e["location"]) for e in errors[:5]] == [
        ["lon"],
        ["lat"],
        ["lon"],
        ["lat"],
        ["lon"],
    ]
    assert "off the globe" in errors[0]["location"]["lon"][0]
    assert list(errors[5]["points"]["0"]) == ["lon"]
    # A Baidu point near the antimeridian that stays on the globe is taken.
    [near] = officer.push_ok(
        officer.change("target", uuid.uuid4(), {**NEW_SHOP, "location": {**off, "lon": -179.99}})
    )
    assert near["status"] == "applied", near


def test_a_photo_filed_under_an_item_its_checklist_lacks_is_refused(app, login, officer, world):
    """An answer for an item the inspection's checklist version lacks is a 422 on ``answers``;
    a photo filed under such an item was stored, where neither the missing-photo check nor a
    leader could ever place it. A create, an edit and an amendment of an approved inspection
    (checked first: what waits must be acceptable) are refused on ``item_code``."""
    from tests.test_sync_scenarios import set_review

    draft, approved, photo = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    officer.push_ok(
        officer.change("inspection", draft, new_inspection(world, ["officer1"])),
        officer.change(
            "inspection", approved, new_inspection(world, ["officer1"], status="submitted")
        ),
        officer.change("photo", photo, photo_metadata(draft, item_code="S01")),
    )
    set_review(app, approved, "approved")

    results = officer.push_ok(
        officer.change("photo", uuid.uuid4(), photo_metadata(draft, item_code="S99")),
        officer.change("photo", photo, {"item_code": "S99"}, base_version=1),
        officer.change("photo", uuid.uuid4(), photo_metadata(approved, item_code="S99")),
        officer.change("photo", uuid.uuid4(), photo_metadata(draft, item_code="S02")),
    )

    for result in results[:3]:
        assert "not an item of the inspection's checklist" in rejected(result)["item_code"][0]
    assert results[3]["status"] == "applied", results[3]
    queue = login("leader1").get(f"/api/v1/conflicts?record_id={results[2]['id']}")
    assert queue.get_json()["items"] == []


def test_an_edit_moves_the_location_whole_or_not_at_all(officer, world):
    record = uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    [result] = officer.push_ok(
        officer.change("inspection", record, {"location": {"lat": 31.3}}, base_version=1)
    )
    assert rejected(result)["location"] == {"lon": ["Missing data for required field."]}
    response = officer.api.get(f"/api/v1/inspections/{record}")
    assert response.get_json()["version"] == 1


def test_photo_and_target_edits_move_their_location_whole_too(officer, world):
    record, photo = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(
        officer.change("inspection", record, new_inspection(world, ["officer1"])),
        officer.change(
            "photo",
            photo,
            photo_metadata(record, location={"lon": 121.47, "lat": 31.37}),
        ),
    )
    shop = world.targets["shop1"].id
    results = officer.push_ok(
        officer.change("photo", photo, {"location": {"lat": 31.3}}, base_version=1),
        officer.change("target", shop, {"location": {"lat": 31.3}}, base_version=1),
    )
    for result in results:
        assert rejected(result)["location"] == {"lon": ["Missing data for required field."]}
    pulled = {(c["entity"], c["id"]): c for c in FakeDevice(officer.api).pull_all()}
    assert pulled["photo", str(photo)]["version"] == 1
    assert pulled["target", str(shop)]["data"]["location"]["lon"] == world.targets["shop1"].lon


def test_a_uscc_reported_as_printed_is_stored_canonical(officer, world):
    """An officer types a shop's 统一社会信用代码 off its licence, with hyphens or in lower case:
    the shop is stored with the canonical 18 characters (never a 500 for the column's length),
    and a later correction in lower case changes nothing."""
    shop = uuid.uuid4()
    [created] = officer.push_ok(
        officer.change("target", shop, {**NEW_SHOP, "uscc": "9131-0113-MA1G-L0A1-16"})
    )
    assert created["status"] == "applied", created
    response = officer.api.get(f"/api/v1/targets/{shop}")
    assert response.get_json()["uscc"] == "91310113MA1GL0A116"
    [corrected] = officer.push_ok(
        officer.change("target", shop, {"uscc": "91310113ma1gl0a116"}, base_version=1)
    )
    assert corrected["status"] == "applied" and corrected["version"] == 1, corrected
    pulled = {(c["entity"], c["id"]): c for c in FakeDevice(officer.api).pull_all()}
    assert pulled["target", str(shop)]["data"]["uscc"] == "91310113MA1GL0A116"


def test_a_blank_target_name_from_a_device_is_rejected(officer, world):
    """An officer reporting a shop, or correcting one, with a name of spaces: that change is
    rejected on ``name`` (the others of the batch still apply), and nothing is stored."""
    shop, other = uuid.uuid4(), uuid.uuid4()
    reported, kept, corrected = officer.push_ok(
        officer.change("target", shop, {**NEW_SHOP, "name": "   "}),
        officer.change("target", other, {**NEW_SHOP, "name": " 鲜果多 "}),
        officer.change("target", world.targets["shop1"].id, {"name": "\t"}, base_version=1),
    )
    assert list(rejected(reported)) == ["name"]
    assert list(rejected(corrected)) == ["name"]
    assert kept["status"] == "applied", kept
    assert officer.api.get(f"/api/v1/targets/{other}").get_json()["name"] == "鲜果多"
    assert officer.api.get(f"/api/v1/targets/{shop}").status_code == 404
    shop1 = officer.api.get(f"/api/v1/targets/{world.targets['shop1'].id}").get_json()
    assert (shop1["name"], shop1["version"]) == ("老王面馆", 1)


def test_a_target_name_or_address_with_a_control_character_from_a_device_is_rejected(
    officer, world
):
    """A shop reported, or corrected, with a vertical tab pasted into its name or address (a
    line break from a spreadsheet cell): rejected on that field, as the API refuses it; the
    label of such a name would not be XML. The others of the batch still apply."""
    shop, other = uuid.uuid4(), uuid.uuid4()
    shop1 = world.targets["shop1"].id
    reported, kept, renamed, moved = officer.push_ok(
        officer.change("target", shop, {**NEW_SHOP, "name": "新开张\x0b水果店"}),
        officer.change("target", other, {**NEW_SHOP, "name": "鲜果多\t二店"}),
        officer.change("target", shop1, {"name": "老王\x0c面馆"}, base_version=1),
        officer.change("target", shop1, {"address": "淞滨路\x1f14号"}, base_version=1),
    )
    assert rejected(reported) == {
        "name": ["text may not contain control characters (\\u000b at character 4)"]
    }
    assert list(rejected(renamed)) == ["name"]
    assert list(rejected(moved)) == ["address"]
    assert kept["status"] == "applied", kept
    assert officer.api.get(f"/api/v1/targets/{shop}").status_code == 404
    stored = officer.api.get(f"/api/v1/targets/{shop1}").get_json()
    assert (stored["name"], stored["version"]) == ("老王面馆", 1)


def test_a_sites_location_far_from_its_boundary_is_rejected(officer, world):
    """An officer correcting a site's gate: a point 3.9 km from the site's boundary is rejected
    on ``location`` (the site keeps its point); a point at the hoarding is applied."""
    site = world.targets["site1"].id  # boundary square(121.455, 31.355, 0.01)
    far, near = officer.push_ok(
        officer.change("target", site, {"location": {"lon": 121.50, "lat": 31.36}}, base_version=1),
        officer.change(
            "target", site, {"location": {"lon": 121.456, "lat": 31.356}}, base_version=1
        ),
    )
    assert "outside the site's boundary" in rejected(far)["location"][0]
    assert near["status"] == "applied", near
    location = officer.api.get(f"/api/v1/targets/{site}").get_json()["location"]
    assert location == {"lon": 121.456, "lat": 31.356}


def test_a_submitted_record_does_not_go_back_to_draft(officer, world):
    record = uuid.uuid4()
    officer.push_ok(
        officer.change(
            "inspection", record, new_inspection(world, ["officer1"], status="submitted")
        )
    )
    [result] = officer.push_ok(
        officer.change("inspection", record, {"status": "draft"}, base_version=1)
    )
    assert "status" in rejected(result)


def test_an_inspection_you_are_not_on_is_not_yours_to_write(login, world):
    officer, colleague = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = uuid.uuid4()
    [created] = officer.push_ok(
        officer.change("inspection", record, new_inspection(world, ["officer2"]))
    )
    assert created["error"]["error"] == "forbidden"
    colleague.push_ok(colleague.change("inspection", record, new_inspection(world, ["officer2"])))
    [edit] = officer.push_ok(
        officer.change("inspection", record, {"findings": "x"}, base_version=1)
    )
    assert edit["error"]["error"] == "forbidden"
    stranger = FakeDevice(login("officer3"))  # another squadron: an out-of-scope write
    [edit] = stranger.push_ok(
        stranger.change("inspection", record, {"findings": "x"}, base_version=1)
    )
    assert edit["error"]["error"] == "forbidden"


@pytest.mark.parametrize(
    "cursor", ["garbage", "eyJzIjoxfQ.AAAA", "a.b.c", "x" * 400, "abcd.%C3%A9", "%C3%A9.abcd"]
)
def test_a_malformed_cursor_is_422(login, world, cursor):
    response = login("officer1").get(f"/api/v1/sync/pull?cursor={cursor}")
    body = assert_error(response, 422, "validation_failed")
    assert "cursor" in body["errors"]["query"]


@pytest.mark.parametrize("base_version", [2**31, 2**63, 2**70])
def test_a_base_version_past_what_versions_hold_is_422_and_the_batch_goes_on(
    officer, world, base_version
):
    record, other = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(
        officer.change("inspection", record, new_inspection(world, ["officer1"])),
        officer.change("inspection", other, new_inspection(world, ["officer1"])),
    )
    bad, good = officer.push_ok(
        officer.change("inspection", record, {"findings": "x"}, base_version=base_version),
        officer.change("inspection", other, {"findings": "y"}, base_version=1),
    )
    assert "base_version" in rejected(bad)
    assert good["status"] == "applied"


def test_the_same_officer_twice_in_an_edit_is_422(officer, world):
    me = str(world.users["officer1"].id)
    record = uuid.uuid4()
    officer.push_ok(officer.change("inspection", record, new_inspection(world, ["officer1"])))
    [result] = officer.push_ok(
        officer.change("inspection", record, {"officer_ids": [me, me]}, base_version=1)
    )
    assert rejected(result)["officer_ids"] == ["each officer is listed once"]


def test_another_users_cursor_is_422(login, world):
    theirs = FakeDevice(login("officer2"))
    theirs.pull_all()
    response = login("officer1").get(f"/api/v1/sync/pull?cursor={theirs.cursor}")
    assert_error(response, 422, "validation_failed")


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
def test_pull_limit_out_of_range_is_422(login, world, limit):
    assert_error(
        login("officer1").get(f"/api/v1/sync/pull?limit={limit}"), 422, "validation_failed"
    )


def test_resolve_bad_input(login, world):
    leader = login("leader1")
    assert_error(
        leader.post(f"/api/v1/conflicts/{uuid.uuid4()}/resolve", json={"keep": "server"}),
        404,
        "not_found",
    )
    assert_error(
        leader.post(f"/api/v1/conflicts/{uuid.uuid4()}/resolve", json={"keep": "both"}),
        422,
        "validation_failed",
    )
    assert_error(
        leader.post(f"/api/v1/conflicts/{uuid.uuid4()}/resolve", json={"keep": "value"}),
        422,
        "validation_failed",
    )
    assert_error(leader.get("/api/v1/conflicts?status=maybe"), 422, "validation_failed")
