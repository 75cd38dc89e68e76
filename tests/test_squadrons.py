"""Districts (区局), squadrons (中队) and their jurisdictions: everyone in the district reads
them, admins manage."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import (
    assert_error,
    audit_entries,
    etag_of,
    other_district,
    rectangle,
    shop_payload,
    square,
)
from tests.sync_helpers import FakeDevice, new_inspection


def new_squadron(world, **overrides) -> dict:
    return {
        "name": "淞南中队",
        "district_id": world.district.id,
        "jurisdiction": square(121.50, 31.30),
        **overrides,
    }


@pytest.mark.parametrize("username", ["officer1", "officer3", "leader2", "supervisor", "admin"])
def test_district_members_list_every_squadron_with_its_jurisdiction(login, world, username):
    body = login(username).get("/api/v1/squadrons").get_json()
    assert [s["name"] for s in body["items"]] == ["吴淞中队", "张庙中队"]
    first = body["items"][0]
    assert first["id"] == world.squadrons[0].id
    assert first["district_id"] == world.district.id
    assert first["jurisdiction"] == square(121.45, 31.35)
    assert first["version"] == 1
    assert body["has_more"] is False


def test_squadron_detail_has_an_etag(login, world):
    response = login("officer3").get(f"/api/v1/squadrons/{world.squadrons[0].id}")
    assert response.status_code == 200
    assert response.get_json()["name"] == "吴淞中队"
    assert response.headers["ETag"]


def test_squadrons_of_another_district_are_hidden(app, login, world):
    _, foreign = other_district(app)
    for username in ("officer1", "leader1", "supervisor"):
        api = login(username)
        assert_error(api.get(f"/api/v1/squadrons/{foreign}"), 404, "not_found")
        assert "莘庄中队" not in {
            s["name"] for s in api.get("/api/v1/squadrons").get_json()["items"]
        }
    assert login("admin").get(f"/api/v1/squadrons/{foreign}").status_code == 200


def test_squadron_list_pages(login, world):
    admin = login("admin")
    first = admin.get("/api/v1/squadrons?per_page=1").get_json()
    second = admin.get("/api/v1/squadrons?per_page=1&page=2").get_json()
    assert [s["name"] for s in first["items"] + second["items"]] == ["吴淞中队", "张庙中队"]
    assert (first["has_more"], second["has_more"]) == (True, False)


# -- creating ---------------------------------------------------------------------------------


def test_admin_creates_a_squadron(app, login, world):
    admin = login("admin")
    response = admin.post("/api/v1/squadrons", json=new_squadron(world))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["name"] == "淞南中队"
    assert body["jurisdiction"] == square(121.50, 31.30)
    assert body["version"] == 1
    assert admin.get(f"/api/v1/squadrons/{body['id']}").get_json() == body
    entries = audit_entries(app, entity="squadron", record_id=str(body["id"]))
    assert [e.action for e in entries] == ["squadron.create"]
    assert entries[0].actor_id == world.users["admin"].id
    assert entries[0].after["name"] == "淞南中队"


def test_a_jurisdiction_may_be_a_multipolygon(login, world):
    multi = {
        "type": "MultiPolygon",
        "coordinates": [square(121.50, 31.30)["coordinates"], square(121.60, 31.30)["coordinates"]],
    }
    response = login("admin").post(
        "/api/v1/squadrons", json=new_squadron(world, jurisdiction=multi)
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["jurisdiction"] == multi


def test_a_squadron_name_is_unique_in_its_district(app, login, world):
    admin = login("admin")
    body = assert_error(
        admin.post("/api/v1/squadrons", json=new_squadron(world, name="吴淞中队")),
        422,
        "validation_failed",
    )
    assert list(body["errors"]["json"]) == ["name"]
    assert len(admin.get("/api/v1/squadrons").get_json()["items"]) == 2
    # Another district may use the name.
    district, _ = other_district(app)
    response = admin.post(
        "/api/v1/squadrons", json=new_squadron(world, name="吴淞中队", district_id=district)
    )
    assert response.status_code == 201


def test_a_squadron_name_differing_only_by_spaces_is_a_duplicate(login, world):
    """The district has 吴淞中队; an admin adds "吴淞中队 " (a paste's trailing space). It was
    201, and two squadrons read the same in every list and in the CLI's `--squadron 吴淞`. Now
    the name is stored without the spaces around it, so it is the taken name (422 on `name`),
    and a name of spaces alone is refused, when adding and when renaming."""
    admin = login("admin")
    for name in ("吴淞中队 ", " 吴淞中队"):
        body = assert_error(
            admin.post("/api/v1/squadrons", json=new_squadron(world, name=name)),
            422,
            "validation_failed",
        )
        assert body["errors"]["json"]["name"] == [
            "a squadron of this district already has this name"
        ]
    body = assert_error(
        admin.post("/api/v1/squadrons", json=new_squadron(world, name="   ")),
        422,
        "validation_failed",
    )
    assert body["errors"]["json"] == {"name": ["may not be blank"]}
    path = f"/api/v1/squadrons/{world.squadrons[1].id}"
    etag = etag_of(admin, path)
    for name, why in (("吴淞中队\t", "already has this name"), ("  ", "may not be blank")):
        body = assert_error(
            admin.patch(path, json={"name": name}, headers={"If-Match": etag}),
            422,
            "validation_failed",
        )
        assert why in body["errors"]["json"]["name"][0]
    created = admin.post("/api/v1/squadrons", json=new_squadron(world, name=" 淞南中队 "))
    assert created.get_json()["name"] == "淞南中队"
    assert len(admin.get("/api/v1/squadrons").get_json()["items"]) == 3


def test_unknown_district_is_refused(login, world):
    body = assert_error(
        login("admin").post("/api/v1/squadrons", json=new_squadron(world, district_id=999)),
        422,
        "validation_failed",
    )
    assert list(body["errors"]["json"]) == ["district_id"]


@pytest.mark.parametrize("username", ["officer1", "leader1", "leader2", "supervisor"])
def test_only_admins_create_or_change_squadrons(login, world, username):
    api = login(username)
    assert_error(api.post("/api/v1/squadrons", json=new_squadron(world)), 403, "forbidden")
    path = f"/api/v1/squadrons/{world.squadrons[0].id}"
    etag = etag_of(api, path)
    assert_error(
        api.patch(path, json={"name": "改名中队"}, headers={"If-Match": etag}), 403, "forbidden"
    )
    after = api.get(path)
    assert after.get_json()["name"] == "吴淞中队"
    assert after.headers["ETag"] == etag
    assert len(api.get("/api/v1/squadrons").get_json()["items"]) == 2


# -- changing ---------------------------------------------------------------------------------


def test_admin_renames_and_redraws_with_if_match(app, login, world):
    admin = login("admin")
    path = f"/api/v1/squadrons/{world.squadrons[0].id}"
    first = etag_of(admin, path)

    assert_error(admin.patch(path, json={"name": "吴淞一中队"}), 428, "precondition_required")
    assert_error(
        admin.patch(path, json={"name": "吴淞一中队"}, headers={"If-Match": '"stale"'}),
        412,
        "precondition_failed",
    )
    assert admin.get(path).get_json()["version"] == 1

    redrawn = square(121.45, 31.35, 0.07)  # grown north and east, away from 张庙中队
    response = admin.patch(
        path, json={"name": "吴淞一中队", "jurisdiction": redrawn}, headers={"If-Match": first}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["jurisdiction"], body["version"]) == ("吴淞一中队", redrawn, 2)
    assert response.headers["ETag"] != first
    assert_error(
        admin.patch(path, json={"name": "吴淞二中队"}, headers={"If-Match": first}),
        412,
        "precondition_failed",
    )
    entries = audit_entries(app, entity="squadron", action="squadron.update")
    assert len(entries) == 1
    assert entries[0].before["name"] == "吴淞中队"
    assert entries[0].after["name"] == "吴淞一中队"
    assert entries[0].after["jurisdiction"] == redrawn


def test_renaming_onto_another_squadrons_name_is_refused(login, world):
    admin = login("admin")
    path = f"/api/v1/squadrons/{world.squadrons[0].id}"
    etag = etag_of(admin, path)
    body = assert_error(
        admin.patch(path, json={"name": "张庙中队"}, headers={"If-Match": etag}),
        422,
        "validation_failed",
    )
    assert list(body["errors"]["json"]) == ["name"]
    assert admin.get(path).headers["ETag"] == etag
    # Keeping its own name is no clash.
    response = admin.patch(path, json={"name": "吴淞中队"}, headers={"If-Match": etag})
    assert response.status_code == 200


def test_a_name_clash_that_slips_past_the_check_is_a_409_not_a_500(login, world, monkeypatch):
    # Two admins creating the same squadron at once both pass the name check; the database's
    # unique constraint stops the second one while the request is still running: API.md's
    # version_conflict (read again: the squadron is there now), not a code clients do not know.
    from fieldapp.org import operations

    monkeypatch.setattr(operations, "_check_name_free", lambda *args, **kwargs: None)
    admin = login("admin")
    response = admin.post("/api/v1/squadrons", json=new_squadron(world, name="吴淞中队"))
    assert_error(response, 409, "version_conflict")
    assert len(admin.get("/api/v1/squadrons").get_json()["items"]) == 2
    assert admin.post("/api/v1/squadrons", json=new_squadron(world)).status_code == 201


# -- jurisdictions: no overlaps, and targets follow the ground --------------------------------
# 吴淞中队 covers [121.45, 121.50] x [31.35, 31.40], 张庙中队 [121.40, 121.45] x [31.30, 31.35]
# (they meet at a corner); 老王面馆 is at (121.47, 31.37), the 吴淞 site at (121.46, 31.36).

#: East of 吴淞中队, sharing its border at 121.50°E.
SONGNAN = square(121.50, 31.35)


def _redraw(admin, squadron_id: int, jurisdiction: dict):
    path = f"/api/v1/squadrons/{squadron_id}"
    return admin.patch(
        path, json={"jurisdiction": jurisdiction}, headers={"If-Match": etag_of(admin, path)}
    )


def _squadron_of(admin, world, target: str) -> int:
    return admin.get(f"/api/v1/targets/{world.targets[target].id}").get_json()["squadron_id"]


def test_a_new_squadron_drawn_over_another_is_refused(login, world):
    """A squadron drawn over half of 吴淞中队: a shop there would lie in two squadrons, and the
    outside_jurisdiction check could no longer tell whose ground an inspection was on."""
    admin = login("admin")
    response = admin.post(
        "/api/v1/squadrons",
        json=new_squadron(world, name="友谊中队", jurisdiction=square(121.47, 31.36)),
    )
    body = assert_error(response, 422, "validation_failed")
    assert list(body["errors"]["json"]) == ["jurisdiction"]
    [message] = body["errors"]["json"]["jurisdiction"]
    assert message.startswith("overlaps the jurisdiction of 吴淞中队 over ")
    assert message.endswith(" km²")
    assert len(admin.get("/api/v1/squadrons").get_json()["items"]) == 2


def test_a_shared_border_or_a_sliver_along_it_is_no_overlap(login, world):
    """Neighbours share their border; the same street traced on two maps differs by metres,
    and that sliver is not an overlap. 20 m into a neighbour is."""
    admin = login("admin")
    along = admin.post(
        "/api/v1/squadrons", json=new_squadron(world, name="淞南中队", jurisdiction=SONGNAN)
    )
    assert along.status_code == 201, along.get_json()
    # north of 吴淞中队 (31.40°N), drawn 4 m into it
    sliver = admin.post(
        "/api/v1/squadrons",
        json=new_squadron(
            world, name="月浦中队", jurisdiction=rectangle(121.45, 31.39996, 121.50, 31.45)
        ),
    )
    assert sliver.status_code == 201, sliver.get_json()
    path = f"/api/v1/squadrons/{sliver.get_json()['id']}"
    wider = admin.patch(
        path,
        json={"jurisdiction": rectangle(121.45, 31.3998, 121.50, 31.45)},
        headers={"If-Match": etag_of(admin, path)},
    )
    body = assert_error(wider, 422, "validation_failed")
    [message] = body["errors"]["json"]["jurisdiction"]
    assert message.startswith("overlaps the jurisdiction of 吴淞中队 over ")


def test_a_squadron_of_another_district_may_be_drawn_over(app, login, world):
    admin = login("admin")
    district, _ = other_district(app)
    response = admin.post(
        "/api/v1/squadrons",
        json=new_squadron(world, district_id=district, jurisdiction=square(121.47, 31.36)),
    )
    assert response.status_code == 201, response.get_json()


def test_redrawing_a_jurisdiction_over_a_neighbour_is_refused(login, world):
    """张庙中队 redrawn to take in a quarter of 吴淞中队's ground."""
    admin = login("admin")
    body = assert_error(
        _redraw(admin, world.squadrons[1].id, square(121.40, 31.30, 0.1)), 422, "validation_failed"
    )
    [message] = body["errors"]["json"]["jurisdiction"]
    assert message.startswith("overlaps the jurisdiction of 吴淞中队 over ")
    squadron = admin.get(f"/api/v1/squadrons/{world.squadrons[1].id}").get_json()
    assert (squadron["jurisdiction"], squadron["version"]) == (square(121.40, 31.30), 1)


def test_a_redraw_that_would_leave_targets_in_no_squadrons_ground_is_refused(login, world):
    """吴淞中队 redrawn to its south-west corner: 老王面馆 would lie in no squadron's
    jurisdiction yet stay 吴淞's, and its inspections made before would be flagged
    outside_jurisdiction. The redraw is refused, saying which targets it would strand."""
    admin = login("admin")
    officer = login("officer1")
    device = FakeDevice(officer, clock_ms=int(time.time() * 1000) - 3_600_000)
    inspection_id = uuid.uuid4()
    [result] = device.push_ok(
        device.change("inspection", inspection_id, new_inspection(world, ["officer1", "officer2"]))
    )
    assert result["status"] == "applied", (result["error"] or {}).get("errors")
    checks = f"/api/v1/inspections/{inspection_id}/checks"
    assert "outside_jurisdiction" not in {f["flag"] for f in officer.get(checks).get_json()}

    response = _redraw(admin, world.squadrons[0].id, square(121.45, 31.35, 0.011))
    body = assert_error(response, 422, "validation_failed")
    code = world.targets["shop1"].code
    assert body["errors"]["json"]["jurisdiction"] == [
        f"would leave 1 active target ({code}) in no squadron's jurisdiction;"
        " draw them into one (or move them first)"
    ]
    assert _squadron_of(admin, world, "shop1") == world.squadrons[0].id
    assert "outside_jurisdiction" not in {f["flag"] for f in officer.get(checks).get_json()}


def test_a_refusal_counts_the_stranded_targets_and_names_a_few(login, world):
    admin = login("admin")
    leader = login("leader1")
    for number in range(6):
        shop = shop_payload(world.squadrons[0].id, name=f"水果店{number}")
        assert leader.post("/api/v1/targets", json=shop).status_code == 201
    response = _redraw(admin, world.squadrons[0].id, square(121.45, 31.35, 0.011))
    [message] = assert_error(response, 422, "validation_failed")["errors"]["json"]["jurisdiction"]
    assert message.startswith("would leave 7 active targets (")
    assert " and 2 more) in no squadron's jurisdiction" in message


def test_closed_targets_and_those_already_placed_elsewhere_do_not_hold_a_redraw(login, world):
    """An inactive shop does not count; nor does one an admin filed under a squadron whose
    ground it is not on (it was outside before the redraw too): both stay as they are."""
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    closed = admin.patch(path, json={"active": False}, headers={"If-Match": etag_of(admin, path)})
    assert closed.status_code == 200, closed.get_json()
    # 张庙's shop on 吴淞's ground (121.48, 31.38)
    placed = admin.post("/api/v1/targets", json=shop_payload(world.squadrons[1].id)).get_json()
    response = _redraw(admin, world.squadrons[0].id, square(121.45, 31.35, 0.011))
    assert response.status_code == 200, response.get_json()
    assert _squadron_of(admin, world, "shop1") == world.squadrons[0].id
    response = _redraw(admin, world.squadrons[1].id, square(121.40, 31.30, 0.04))
    assert response.status_code == 200, response.get_json()
    assert admin.get(f"/api/v1/targets/{placed['id']}").get_json()["squadron_id"] == (
        world.squadrons[1].id
    )


def test_a_boundary_moved_between_neighbours_redraws_both_and_the_targets_follow(app, login, world):
    """The border of 吴淞中队 and 淞南中队 moves west from 121.50°E to 121.465°E, so 老王面馆
    (121.47°E) passes to 淞南. One squadron at a time cannot do it (shrinking 吴淞 first
    strands the shop, growing 淞南 first overlaps); one request for the district's map redraws
    both, judged together, and the shop moves as an admin's move does."""
    admin = login("admin")
    officer = FakeDevice(login("officer1"))
    officer.pull_all()
    songnan = admin.post(
        "/api/v1/squadrons", json=new_squadron(world, name="淞南中队", jurisdiction=SONGNAN)
    ).get_json()
    wusong_id = world.squadrons[0].id
    wusong_after = rectangle(121.45, 31.35, 121.465, 31.40)
    songnan_after = rectangle(121.465, 31.35, 121.55, 31.40)
    shrink = _redraw(admin, wusong_id, wusong_after)
    assert (
        "in no squadron's jurisdiction"
        in assert_error(shrink, 422, "validation_failed")["errors"]["json"]["jurisdiction"][0]
    )
    grow = _redraw(admin, songnan["id"], songnan_after)
    assert assert_error(grow, 422, "validation_failed")["errors"]["json"]["jurisdiction"][
        0
    ].startswith("overlaps the jurisdiction of 吴淞中队")

    path = f"/api/v1/districts/{world.district.id}/jurisdictions"
    etag = admin.get(path).headers["ETag"]
    drawings = [
        {"id": wusong_id, "jurisdiction": wusong_after},
        {"id": songnan["id"], "jurisdiction": songnan_after},
    ]
    response = admin.put(path, json={"squadrons": drawings}, headers={"If-Match": etag})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["targets_moved"] == 1
    assert [(s["id"], s["jurisdiction"], s["version"]) for s in body["squadrons"]] == [
        (wusong_id, wusong_after, 2),
        (world.squadrons[1].id, square(121.40, 31.30), 1),
        (songnan["id"], songnan_after, 2),
    ]
    assert response.headers["ETag"] == admin.get(path).headers["ETag"] != etag
    assert _squadron_of(admin, world, "shop1") == songnan["id"]
    assert _squadron_of(admin, world, "site1") == wusong_id  # its gate is at 121.46°E

    # as an admin's move: 吴淞's devices are told it left, its leader no longer reads it
    shop = str(world.targets["shop1"].id)
    left = [c for c in officer.pull_all() if c["entity"] == "target" and c["id"] == shop]
    assert [c["op"] for c in left] == ["delete"]
    assert_error(login("leader1").get(f"/api/v1/targets/{shop}"), 404, "not_found")

    redrawn = audit_entries(app, entity="squadron", action="squadron.update")
    assert sorted((e.record_id, e.after["jurisdiction"]) for e in redrawn) == sorted(
        [(str(wusong_id), wusong_after), (str(songnan["id"]), songnan_after)]
    )
    [moved] = audit_entries(app, entity="target", action="target.update")
    assert (moved.record_id, moved.before, moved.after) == (
        shop,
        {"squadron_id": wusong_id},
        {"squadron_id": songnan["id"]},
    )
    assert moved.actor_id == world.users["admin"].id

    stale = admin.put(path, json={"squadrons": drawings}, headers={"If-Match": etag})
    assert_error(stale, 412, "precondition_failed")
    assert_error(admin.put(path, json={"squadrons": drawings}), 428, "precondition_required")


def test_a_squadron_redrawn_to_what_it_has_is_no_change(app, login, world):
    admin = login("admin")
    path = f"/api/v1/districts/{world.district.id}/jurisdictions"
    etag = admin.get(path).headers["ETag"]
    same = [{"id": world.squadrons[0].id, "jurisdiction": square(121.45, 31.35)}]
    response = admin.put(path, json={"squadrons": same}, headers={"If-Match": etag})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["targets_moved"] == 0
    assert response.headers["ETag"] == etag
    assert audit_entries(app, entity="squadron", action="squadron.update") == []


BOW_TIE = {
    "type": "Polygon",
    "coordinates": [
        [[121.5, 31.3], [121.55, 31.35], [121.55, 31.3], [121.5, 31.35], [121.5, 31.3]]
    ],
}


@pytest.mark.parametrize(
    "case",
    [
        "overlapping-each-other",
        "unknown-squadron",
        "another-districts-squadron",
        "invalid-polygon",
        "listed-twice",
        "stranding",
        "no-jurisdiction",
        "unknown-field",
        "none-listed",
    ],
)
def test_a_bad_redraw_of_several_is_refused_field_by_field(app, login, world, case):
    """Each fault is reported on the drawing at fault, by its place in the list; nothing is
    redrawn, no target moves."""
    admin = login("admin")
    wusong, zhangmiao = world.squadrons[0].id, world.squadrons[1].id
    # each alone is fine: 吴淞 grows west, 张庙 north; together they overlap by a square km
    west = {"id": wusong, "jurisdiction": rectangle(121.44, 31.35, 121.50, 31.40)}
    north = {"id": zhangmiao, "jurisdiction": rectangle(121.40, 31.30, 121.45, 31.36)}
    drawings, errors = {
        "overlapping-each-other": (
            [west, north],
            {
                "0": {"jurisdiction": "overlaps the jurisdiction of 张庙中队"},
                "1": {"jurisdiction": "overlaps the jurisdiction of 吴淞中队"},
            },
        ),
        "unknown-squadron": (
            [west, {"id": 999, "jurisdiction": SONGNAN}],
            {"1": {"id": "no squadron 999"}},
        ),
        "another-districts-squadron": (
            [{"id": other_district(app)[1], "jurisdiction": SONGNAN}],
            {"0": {"id": "莘庄中队 is not a squadron of 宝山区"}},
        ),
        "invalid-polygon": (
            [west, {"id": zhangmiao, "jurisdiction": BOW_TIE}],
            {"1": {"jurisdiction": "invalid polygon: "}},
        ),
        "listed-twice": ([west, west], {"1": {"id": "listed twice (also at 0)"}}),
        "stranding": (
            [{"id": wusong, "jurisdiction": square(121.45, 31.35, 0.011)}],
            {"0": {"jurisdiction": "would leave 1 active target"}},
        ),
        "no-jurisdiction": ([{"id": wusong}], {"0": {"jurisdiction": "Missing data"}}),
        "unknown-field": (
            [{**west, "name": "吴淞一中队"}],
            {"0": {"name": "Unknown field."}},
        ),
        "none-listed": ([], None),
    }[case]
    path = f"/api/v1/districts/{world.district.id}/jurisdictions"
    before = admin.get(path)
    response = admin.put(
        path, json={"squadrons": drawings}, headers={"If-Match": before.headers["ETag"]}
    )
    body = assert_error(response, 422, "validation_failed")
    assert list(body["errors"]["json"]) == ["squadrons"]
    found = body["errors"]["json"]["squadrons"]
    if errors is None:
        assert found == ["Length must be between 1 and 200."]
    else:
        assert {i: set(f) for i, f in found.items()} == {i: set(f) for i, f in errors.items()}
        for index, fields in errors.items():
            for name, start in fields.items():
                [message] = found[index][name]
                assert message.startswith(start), message
    after = admin.get(path)
    assert (after.get_json(), after.headers["ETag"]) == (before.get_json(), before.headers["ETag"])
    assert audit_entries(app, entity="squadron", action="squadron.update") == []
    assert audit_entries(app, entity="target", action="target.update") == []


def test_everyone_in_the_district_reads_its_map_and_only_admins_redraw_it(app, login, world):
    path = f"/api/v1/districts/{world.district.id}/jurisdictions"
    drawings = [{"id": world.squadrons[0].id, "jurisdiction": square(121.45, 31.35, 0.06)}]
    for username in ("officer1", "leader2", "supervisor"):
        api = login(username)
        read = api.get(path)
        assert read.status_code == 200
        assert [s["name"] for s in read.get_json()["squadrons"]] == ["吴淞中队", "张庙中队"]
        answer = api.put(
            path, json={"squadrons": drawings}, headers={"If-Match": read.headers["ETag"]}
        )
        assert_error(answer, 403, "forbidden")
    foreign, _ = other_district(app)
    assert_error(
        login("supervisor").get(f"/api/v1/districts/{foreign}/jurisdictions"), 404, "not_found"
    )
    assert login("admin").get(f"/api/v1/districts/{foreign}/jurisdictions").status_code == 200
    assert_error(login("admin").get("/api/v1/districts/999/jurisdictions"), 404, "not_found")


# -- districts ----------------------------------------------------------------------------------


def test_admin_adds_a_district_and_its_first_squadron(app, login, world):
    """A city-level admin adds a second district (the CLI's `fieldapp district add` does the
    same for a fresh installation); its squadrons then go in it."""
    admin = login("admin")
    response = admin.post("/api/v1/districts", json={"code": "310112", "name": " 闵行区 "})
    assert response.status_code == 201, response.get_json()
    district = response.get_json()
    assert (district["code"], district["name"]) == ("310112", "闵行区")
    listed = admin.get("/api/v1/districts").get_json()["items"]
    assert [d["code"] for d in listed] == ["310113", "310112"]
    squadron = admin.post(
        "/api/v1/squadrons", json=new_squadron(world, name="莘庄中队", district_id=district["id"])
    )
    assert squadron.status_code == 201, squadron.get_json()
    [entry] = audit_entries(app, entity="district", record_id=str(district["id"]))
    assert entry.action == "district.create"
    assert entry.actor_id == world.users["admin"].id
    assert (entry.after["code"], entry.after["name"]) == ("310112", "闵行区")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"code": "310113", "name": "宝山区"}, "code"),  # taken
        ({"code": "31011", "name": "闵行区"}, "code"),
        ({"code": "3101120", "name": "闵行区"}, "code"),
        ({"code": "310112\n", "name": "闵行区"}, "code"),
        ({"code": "310112", "name": "   "}, "name"),
        ({"code": "310112", "name": "闵" * 81}, "name"),
        ({"code": "310112"}, "name"),
        ({"code": "310112", "name": "闵行区", "province": "上海"}, "province"),
    ],
    ids=[
        "taken",
        "short",
        "seven-digits",
        "newline",
        "blank-name",
        "long-name",
        "no-name",
        "extra",
    ],
)
def test_a_bad_district_is_refused(app, login, world, body, field):
    admin = login("admin")
    answer = assert_error(admin.post("/api/v1/districts", json=body), 422, "validation_failed")
    assert list(answer["errors"]["json"]) == [field]
    assert len(admin.get("/api/v1/districts").get_json()["items"]) == 1
    assert audit_entries(app, entity="district") == []


@pytest.mark.parametrize("username", ["officer1", "leader1", "supervisor"])
def test_only_admins_add_districts_and_others_see_their_own(login, world, username):
    api = login(username)
    body = {"code": "310112", "name": "闵行区"}
    assert_error(api.post("/api/v1/districts", json=body), 403, "forbidden")
    assert login("admin").post("/api/v1/districts", json=body).status_code == 201
    listed = api.get("/api/v1/districts").get_json()["items"]
    assert [d["code"] for d in listed] == ["310113"]


def test_a_redraw_does_not_undo_an_admins_move_of_a_shop_made_while_it_ran(pg_app, monkeypatch):
    """While the 吴淞/淞南 border moves (the redraw has read which targets leave 吴淞), a
    colleague files one of those shops under 张庙 (PATCH with If-Match). Either the move waits
    for the redraw and then meets a shop the redraw moved (its version changed: refused), or it
    answered 200 first and the redraw leaves the shop in 张庙: never the colleague told 200 and
    the shop moved on to 淞南 anyway (PostgreSQL, where the two run at once)."""
    from fieldapp.org import operations as org_ops
    from tests.conftest import add_shop, paused_while_edited, sign_in, status_of

    app, world = pg_app
    admin = sign_in(app, "admin", "pad-race-redraw-admin")
    colleague = sign_in(app, "admin", "pad-race-redraw-colleague")
    leader = sign_in(app, "leader1", "pad-race-redraw-leader")
    shop = add_shop(leader, world.squadrons[0].id, "竞态水果店")  # at (121.48, 31.38)
    songnan = admin.post(
        "/api/v1/squadrons", json=new_squadron(world, name="淞南中队", jurisdiction=SONGNAN)
    ).get_json()["id"]
    map_path = f"/api/v1/districts/{world.district.id}/jurisdictions"
    drawings = [
        {"id": world.squadrons[0].id, "jurisdiction": rectangle(121.45, 31.35, 121.465, 31.40)},
        {"id": songnan, "jurisdiction": rectangle(121.465, 31.35, 121.55, 31.40)},
    ]
    etag = etag_of(admin, map_path)
    path = f"/api/v1/targets/{shop}"
    shop_etag = etag_of(colleague, path)
    answers = paused_while_edited(
        monkeypatch,
        org_ops,
        "_set_jurisdiction",
        lambda: admin.put(map_path, json={"squadrons": drawings}, headers={"If-Match": etag}),
        lambda: colleague.patch(
            path, json={"squadron_id": world.squadrons[1].id}, headers={"If-Match": shop_etag}
        ),
    )
    assert status_of(answers["request"]) == 200, answers
    now_in = admin.get(path).get_json()["squadron_id"]
    if status_of(answers["edit"]) == 200:
        assert now_in == world.squadrons[1].id
    else:
        assert now_in == songnan
