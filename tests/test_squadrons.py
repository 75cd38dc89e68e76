"""Districts (区局), squadrons (中队) and their jurisdictions: everyone in the district reads
them, admins manage."""

from __future__ import annotations

import pytest

from tests.conftest import assert_error, audit_entries, etag_of, other_district, square


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

    redrawn = square(121.44, 31.34, 0.07)
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
