"""Checklists (标准化检查表单): devices read them; admins publish versions that never change."""

from __future__ import annotations

import pytest

from tests.conftest import assert_error, audit_entries, etag_of
from tests.sync_helpers import FakeDevice

SHOP_ITEMS_V1 = [
    {"code": "S01", "text": "是否存在跨门经营", "severity": "moderate", "phases": []},
    {"code": "S02", "text": "是否占道堆物", "severity": "moderate", "phases": []},
    {"code": "S03", "text": "餐饮油烟是否直排", "severity": "severe", "phases": []},
]
SHOP_ITEMS_V2 = [
    {"code": "S01", "text": "是否存在跨门经营或占道经营", "severity": "severe"},
    {
        "code": "S04",
        "text": "店招店牌是否安全牢固",
        "severity": "minor",
        "legal_basis": "上海市市容环境卫生管理条例",
    },
]
SITE_ITEMS = [{"code": "C01", "text": "围挡是否连续封闭", "severity": "moderate"}]


def items(checklist: dict) -> list[dict]:
    return [
        {k: item[k] for k in ("code", "text", "severity", "phases")} for item in checklist["items"]
    ]


def publish(
    api, checklist_id: int, title="沿街商户市容环境检查表(2025版)", new_items=None, if_match=None
):
    """Publish a version as ``api``, with ``If-Match`` ``if_match`` (by default the ETag of a
    fresh reading, when ``api`` may read the checklist)."""
    path = f"/api/v1/checklists/{checklist_id}"
    if if_match is None:
        read = api.get(path)
        if_match = read.headers["ETag"] if read.status_code == 200 else "*"
    return api.post(
        f"{path}/versions",
        json={"title": title, "items": SHOP_ITEMS_V2 if new_items is None else new_items},
        headers={"If-Match": if_match},
    )


# -- reading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["officer1", "officer3", "leader1", "supervisor", "admin"])
def test_everyone_lists_checklists_with_items(login, world, username):
    body = login(username).get("/api/v1/checklists").get_json()
    assert [(c["kind"], c["version"]) for c in body["items"]] == [("shop", 1), ("site", 1)]
    shop = body["items"][0]
    assert shop["id"] == world.checklists["shop"].id
    assert shop["title"] == "沿街商户市容环境检查表"
    assert items(shop) == SHOP_ITEMS_V1
    site = body["items"][1]
    assert [(i["code"], i["phases"]) for i in site["items"]] == [
        ("C01", []),
        ("C02", ["earthwork"]),
    ]


@pytest.mark.parametrize("kind", ["shop", "site"])
def test_list_filters_by_kind(login, world, kind):
    body = login("officer1").get(f"/api/v1/checklists?kind={kind}").get_json()
    assert [c["kind"] for c in body["items"]] == [kind]
    assert body["items"][0]["id"] == world.checklists[kind].id


def test_list_shows_the_newest_version(login, world):
    admin = login("admin")
    assert publish(admin, world.checklists["shop"].id).status_code == 201
    shop = admin.get("/api/v1/checklists?kind=shop").get_json()["items"][0]
    assert shop["version"] == 2
    assert shop["title"] == "沿街商户市容环境检查表(2025版)"
    assert [i["code"] for i in shop["items"]] == ["S01", "S04"]


def test_unknown_checklist_or_version_is_404(login, world):
    officer = login("officer1")
    checklist = world.checklists["shop"].id
    assert_error(officer.get("/api/v1/checklists/9999"), 404, "not_found")
    assert_error(officer.get(f"/api/v1/checklists/{checklist}?version=2"), 404, "not_found")
    assert officer.get(f"/api/v1/checklists/{checklist}?version=1").status_code == 200


# -- publishing -------------------------------------------------------------------------------


def test_older_versions_stay_as_they_were_after_a_new_one(app, login, world):
    admin = login("admin")
    officer = login("officer1")
    checklist = world.checklists["shop"].id
    path = f"/api/v1/checklists/{checklist}"
    v1 = officer.get(path).get_json()

    response = publish(admin, checklist)
    assert response.status_code == 201, response.get_json()
    v2 = response.get_json()
    assert (v2["id"], v2["version"], v2["kind"]) == (checklist, 2, "shop")
    assert [i["code"] for i in v2["items"]] == ["S01", "S04"]
    assert v2["items"][0]["text"] == "是否存在跨门经营或占道经营"
    assert v2["items"][1]["legal_basis"] == "上海市市容环境卫生管理条例"

    assert officer.get(path).get_json() == v2  # the newest by default
    assert officer.get(f"{path}?version=2").get_json() == v2
    assert officer.get(f"{path}?version=1").get_json() == v1  # unchanged, item for item
    assert items(v1) == SHOP_ITEMS_V1

    # A third version: both earlier ones are still served.
    third = publish(admin, checklist, "第三版", [{"code": "S05", "text": "x", "severity": "minor"}])
    assert third.get_json()["version"] == 3
    assert officer.get(f"{path}?version=1").get_json() == v1
    assert officer.get(f"{path}?version=2").get_json() == v2

    entries = audit_entries(app, entity="checklist", record_id=str(checklist))
    assert [e.action for e in entries] == [
        "checklist.create",
        "checklist.publish",
        "checklist.publish",
    ]
    assert entries[1].actor_id == world.users["admin"].id
    assert entries[1].after["version"] == 2


def test_the_audit_of_a_new_version_says_what_officers_are_asked(app, login, world):
    """An admin rewords an item and publishes version 2. The `checklist.publish` entry held
    only codes, severities and phases, so it read like version 1's: the tamper-evident log
    could not tell what officers were asked, nor that anything changed. Each item's text and
    legal basis are in it now (and in `checklist.create`'s)."""
    admin = login("admin")
    checklist = world.checklists["shop"].id
    assert publish(admin, checklist).status_code == 201
    created, published = audit_entries(app, entity="checklist", record_id=str(checklist))
    assert created.after["items"][0] == {
        "code": "S01",
        "text": "是否存在跨门经营",
        "severity": "moderate",
        "phases": [],
        "legal_basis": "",
    }
    assert published.after["items"] == [
        {"phases": [], "legal_basis": "", **SHOP_ITEMS_V2[0]},
        {"phases": [], **SHOP_ITEMS_V2[1]},
    ]


def test_admin_creates_a_checklist(login, world):
    response = login("admin").post(
        "/api/v1/checklists",
        json={
            "kind": "site",
            "title": "建筑工地夜间施工检查表",
            "items": [
                {"code": "N01", "text": "是否办理夜间施工许可", "severity": "severe"},
                {
                    "code": "N02",
                    "text": "渣土车是否密闭",
                    "severity": "moderate",
                    "phases": ["earthwork", "foundation"],
                },
            ],
        },
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["kind"], body["version"], body["title"]) == ("site", 1, "建筑工地夜间施工检查表")
    assert [i["phases"] for i in body["items"]] == [[], ["earthwork", "foundation"]]
    listed = login("officer1").get("/api/v1/checklists?kind=site").get_json()["items"]
    assert body["id"] in [c["id"] for c in listed]


@pytest.mark.parametrize("how", ["create", "publish"])
def test_duplicate_item_codes_are_refused(login, world, how):
    admin = login("admin")
    twice = [
        {"code": "S01", "text": "跨门经营", "severity": "moderate"},
        {"code": "S02", "text": "占道堆物", "severity": "moderate"},
        {"code": "S01", "text": "又一个S01", "severity": "minor"},
    ]
    if how == "create":
        response = admin.post(
            "/api/v1/checklists", json={"kind": "shop", "title": "重复", "items": twice}
        )
    else:
        response = publish(admin, world.checklists["shop"].id, new_items=twice)
    body = assert_error(response, 422, "validation_failed")
    assert "S01" in body["errors"]["json"]["items"][0]
    assert admin.get(f"/api/v1/checklists/{world.checklists['shop'].id}").get_json()["version"] == 1
    assert len(admin.get("/api/v1/checklists").get_json()["items"]) == 2


@pytest.mark.parametrize("how", ["create", "publish"])
def test_phases_on_a_shop_checklist_are_refused(login, world, how):
    admin = login("admin")
    phased = [{"code": "S01", "text": "跨门经营", "severity": "moderate", "phases": ["earthwork"]}]
    if how == "create":
        response = admin.post(
            "/api/v1/checklists", json={"kind": "shop", "title": "带阶段", "items": phased}
        )
    else:
        response = publish(admin, world.checklists["shop"].id, new_items=phased)
    body = assert_error(response, 422, "validation_failed")
    assert list(body["errors"]["json"]) == ["items"]
    assert admin.get(f"/api/v1/checklists/{world.checklists['shop'].id}").get_json()["version"] == 1


@pytest.mark.parametrize("how", ["create", "publish"])
@pytest.mark.parametrize("blank", ["title", "text"])
def test_a_blank_item_text_or_title_is_refused(login, world, how, blank):
    """An admin publishes a version whose item text (or title) is only spaces. It was 201, and
    every officer's device showed an item with no question to answer, which every later
    inspection on that version had to answer. Now it is a 422 naming the item's text (or the
    title), and nothing is published."""
    admin = login("admin")
    title = " \u3000 " if blank == "title" else "沿街商户市容环境检查表"
    new_items = [
        {"code": "S01", "text": "是否存在跨门经营", "severity": "moderate"},
        {"code": "S02", "text": "   " if blank == "text" else "是否占道堆物", "severity": "minor"},
    ]
    if how == "create":
        response = admin.post(
            "/api/v1/checklists", json={"kind": "shop", "title": title, "items": new_items}
        )
    else:
        response = publish(admin, world.checklists["shop"].id, title, new_items)
    body = assert_error(response, 422, "validation_failed")
    if blank == "title":
        assert body["errors"]["json"] == {"title": ["may not be blank"]}
    else:
        assert body["errors"]["json"] == {"items": {"1": {"text": ["may not be blank"]}}}
    assert admin.get(f"/api/v1/checklists/{world.checklists['shop'].id}").get_json()["version"] == 1
    assert len(admin.get("/api/v1/checklists").get_json()["items"]) == 2


def test_unknown_phase_is_refused(login, world):
    response = publish(
        login("admin"),
        world.checklists["site"].id,
        new_items=[{"code": "C01", "text": "围挡", "severity": "minor", "phases": ["demolition"]}],
    )
    body = assert_error(response, 422, "validation_failed")
    assert "phases" in body["errors"]["json"]["items"]["0"]


@pytest.mark.parametrize("how", ["create", "publish"])
def test_a_phase_named_twice_in_an_item_is_refused(login, world, how):
    """Lists of distinct things refuse duplicates (officer_ids, assignee_ids, item codes); a
    site item's `phases` took ["earthwork", "earthwork"] and served it so to every device."""
    admin = login("admin")
    twice = [
        {"code": "C01", "text": "裸土是否覆盖", "severity": "severe", "phases": ["earthwork"]},
        {
            "code": "C02",
            "text": "冲洗设施",
            "severity": "moderate",
            "phases": ["earthwork", "structure", "earthwork"],
        },
    ]
    if how == "create":
        response = admin.post(
            "/api/v1/checklists", json={"kind": "site", "title": "重复阶段", "items": twice}
        )
    else:
        response = publish(admin, world.checklists["site"].id, "建筑工地文明施工检查表", twice)
    body = assert_error(response, 422, "validation_failed")
    assert body["errors"]["json"] == {
        "items": {"1": {"phases": ["a phase is named twice: earthwork"]}}
    }
    assert admin.get(f"/api/v1/checklists/{world.checklists['site'].id}").get_json()["version"] == 1
    assert len(admin.get("/api/v1/checklists").get_json()["items"]) == 2


def test_site_checklist_versions_keep_their_phases(login, world):
    admin = login("admin")
    site = world.checklists["site"].id
    response = publish(
        admin,
        site,
        "建筑工地文明施工检查表(2025版)",
        [{"code": "C03", "text": "冲洗设施", "severity": "moderate", "phases": ["earthwork"]}],
    )
    assert response.status_code == 201
    old = admin.get(f"/api/v1/checklists/{site}?version=1").get_json()
    assert [(i["code"], i["phases"]) for i in old["items"]] == [("C01", []), ("C02", ["earthwork"])]


def test_publishing_a_version_needs_the_etag_of_the_newest_reading(login, world):
    """A version is sent whole. Admin A reads the form; admin B publishes v2 adding S04; A
    publishes from the old reading: B's item silently disappeared from the form devices fill
    in, as publishing ignored If-Match. Now it is refused like the checklist's PATCH: 412 from
    a stale reading, 428 without If-Match, and B's version stays the newest."""
    admin_a, admin_b = login("admin", "desk-a"), login("admin", "desk-b")
    checklist = world.checklists["shop"].id
    path = f"/api/v1/checklists/{checklist}"
    read = admin_a.get(path)
    etag, wanted = read.headers["ETag"], items(read.get_json())
    added = [*wanted, {"code": "S04", "text": "是否擅自设置店招店牌", "severity": "minor"}]
    response = publish(admin_b, checklist, "沿街商户检查表", added)
    assert response.status_code == 201, response.get_json()
    assert response.headers["ETag"] == admin_b.get(path).headers["ETag"]

    edited = [dict(wanted[0], text="是否存在跨门经营(含出店摆卖)"), *wanted[1:]]
    stale = publish(admin_a, checklist, "沿街商户检查表", edited, if_match=etag)
    assert_error(stale, 412, "precondition_failed")
    missing = admin_a.post(f"{path}/versions", json={"title": "沿街商户检查表", "items": edited})
    assert_error(missing, 428, "precondition_required")
    newest = admin_a.get(path).get_json()
    assert newest["version"] == 2
    assert "S04" in {i["code"] for i in newest["items"]}
    # Read again, A publishes on top of B's version.
    assert publish(admin_a, checklist, "沿街商户检查表", edited).get_json()["version"] == 3


@pytest.mark.parametrize("username", ["officer1", "leader1", "supervisor"])
def test_only_admins_create_or_publish(login, world, username):
    api = login(username)
    checklist = world.checklists["shop"].id
    assert_error(publish(api, checklist), 403, "forbidden")
    assert_error(
        api.post(
            "/api/v1/checklists",
            json={"kind": "shop", "title": "x", "items": SHOP_ITEMS_V2},
        ),
        403,
        "forbidden",
    )
    assert api.get(f"/api/v1/checklists/{checklist}").get_json()["version"] == 1
    assert len(api.get("/api/v1/checklists").get_json()["items"]) == 2


def test_publishing_to_an_unknown_checklist_is_404(login, world):
    assert_error(publish(login("admin"), 9999), 404, "not_found")


# -- retiring ---------------------------------------------------------------------------------


def test_an_admin_retires_and_reinstates_a_checklist(app, login, world):
    """A form is withdrawn. Nothing could set `active` (PATCH was 405), so a withdrawn form
    stayed on every device for good. Now the admin retires it with `PATCH {"active": false}`
    and its ETag (428 without, 412 after a change since it was read), audited: it leaves the
    list, devices pull it as inactive, its versions and number stay; it can be reinstated."""
    checklist = world.checklists["site"].id
    path = f"/api/v1/checklists/{checklist}"
    admin = login("admin")
    device = FakeDevice(login("officer1"))
    device.pull_all()
    read = etag_of(admin, path)
    assert_error(admin.patch(path, json={"active": False}), 428, "precondition_required")
    assert publish(admin, checklist, "第二版", SITE_ITEMS).status_code == 201
    assert_error(
        admin.patch(path, json={"active": False}, headers={"If-Match": read}),
        412,
        "precondition_failed",
    )

    response = admin.patch(path, json={"active": False}, headers={"If-Match": etag_of(admin, path)})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["active"], body["version"]) == (False, 2)
    assert response.headers["ETag"] == admin.get(path).headers["ETag"]
    listed = login("officer1").get("/api/v1/checklists").get_json()["items"]
    assert [c["id"] for c in listed] == [world.checklists["shop"].id]
    [pulled] = [c for c in device.pull_all() if c["entity"] == "checklist"]
    assert (pulled["id"], pulled["data"]["active"], pulled["data"]["version"]) == (
        str(checklist),
        False,
        2,
    )
    assert pulled["version"] == 3  # the record changed: its version moves, the form's not
    # Retiring what is retired changes nothing.
    again = admin.patch(path, json={"active": False}, headers={"If-Match": etag_of(admin, path)})
    assert again.status_code == 200
    # A version published later is the next number, whatever the record's version.
    assert publish(admin, checklist, "第三版", SITE_ITEMS).get_json()["version"] == 3
    reinstated = admin.patch(
        path, json={"active": True}, headers={"If-Match": etag_of(admin, path)}
    )
    assert reinstated.get_json()["active"] is True
    assert checklist in [c["id"] for c in admin.get("/api/v1/checklists").get_json()["items"]]
    entries = audit_entries(app, entity="checklist", record_id=str(checklist))
    assert [(e.action, e.before, e.after) for e in entries if "publish" not in e.action] == [
        ("checklist.create", None, entries[0].after),
        ("checklist.retire", {"active": True}, {"active": False}),
        ("checklist.reinstate", {"active": False}, {"active": True}),
    ]


@pytest.mark.parametrize(
    "body, field",
    [({}, "active"), ({"active": "no"}, "active"), ({"active": False, "title": "x"}, "title")],
)
def test_a_bad_retirement_is_refused(login, world, body, field):
    admin = login("admin")
    path = f"/api/v1/checklists/{world.checklists['site'].id}"
    etag = etag_of(admin, path)
    answer = assert_error(
        admin.patch(path, json=body, headers={"If-Match": etag}), 422, "validation_failed"
    )
    assert list(answer["errors"]["json"]) == [field]
    assert admin.get(path).headers["ETag"] == etag


@pytest.mark.parametrize("username", ["officer1", "leader1", "supervisor"])
def test_only_admins_retire_checklists(login, world, username):
    api = login(username)
    path = f"/api/v1/checklists/{world.checklists['site'].id}"
    assert_error(
        api.patch(path, json={"active": False}, headers={"If-Match": etag_of(api, path)}),
        403,
        "forbidden",
    )
    assert api.get(path).get_json()["active"] is True
