"""Targets: search and filters, the target's file (一店一档), QR lookup (一店一码), add and edit."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
import segno
import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.audit.models import AuditEntry
from fieldapp.db import db
from fieldapp.geo import metres_per_degree
from fieldapp.targets.importer import ImportError_, import_targets
from fieldapp.targets.models import Target
from schemas.common import NUL_MESSAGE
from tests.conftest import (
    assert_error,
    audit_entries,
    etag_of,
    move_target,
    shop_payload,
    site_payload,
    square,
)
from tests.review_helpers import push_inspection
from tests.sync_helpers import FakeDevice

ALL = {"老王面馆", "鑫隆五金店", "宝山区吴淞地区住宅项目"}
VALID_USCC = "91310113MA1H2B3C4R"


def names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [t["name"] for t in response.get_json()["items"]]


# -- listing and filters ---------------------------------------------------------------------


def test_list_answers_wire_shape_and_page_envelope(login, world):
    body = login("admin").get("/api/v1/targets").get_json()
    assert {t["name"] for t in body["items"]} == ALL
    assert (body["page"], body["per_page"], body["has_more"]) == (1, 50, False)
    shop = next(t for t in body["items"] if t["name"] == "老王面馆")
    assert shop["kind"] == "shop"
    assert shop["id"] == str(world.targets["shop1"].id)
    assert shop["code"] == world.targets["shop1"].code
    assert shop["address"] == "淞滨路100号"
    assert shop["squadron_id"] == world.squadrons[0].id
    assert shop["location"] == {"lon": 121.47, "lat": 31.37}
    assert shop["business_type"] == "catering"
    assert shop["uscc"] == "91310113MA1GL0A116"
    assert shop["credit_class"] in {"A", "B", "C", "D"}
    assert shop["version"] == 1


@pytest.mark.parametrize(
    "query, expected",
    [
        ("kind=shop", {"老王面馆", "鑫隆五金店"}),
        ("kind=site", {"宝山区吴淞地区住宅项目"}),
        ("q=面馆", {"老王面馆"}),  # name
        ("q=共康路", {"鑫隆五金店"}),  # address
        ("q=91310113ma1gl0a116", {"老王面馆"}),  # USCC, any case
        ("q=3101132024001", {"宝山区吴淞地区住宅项目"}),  # a site's permit number
        ("q=310113202400", set()),  # ... the whole of it
        ("q=%25", set()),  # "%" is a character, not a wildcard
        ("q=_", set()),
        ("q=没有这家店", set()),
        ("bbox=121.44,31.34,121.50,31.40", {"老王面馆", "宝山区吴淞地区住宅项目"}),
        ("bbox=121.41,31.31,121.43,31.33", {"鑫隆五金店"}),
        ("bbox=0,0,1,1", set()),
        ("kind=shop&bbox=121.44,31.34,121.50,31.40", {"老王面馆"}),
    ],
)
def test_list_filters(login, world, query, expected):
    assert set(names(login("admin").get(f"/api/v1/targets?{query}"))) == expected


def test_filter_by_squadron(login, world):
    admin = login("admin")
    first, second = (s.id for s in world.squadrons)
    assert set(names(admin.get(f"/api/v1/targets?squadron_id={first}"))) == {
        "老王面馆",
        "宝山区吴淞地区住宅项目",
    }
    assert names(admin.get(f"/api/v1/targets?squadron_id={second}")) == ["鑫隆五金店"]


def test_q_finds_a_target_by_its_code_in_any_case(login, world):
    code = world.targets["shop2"].code
    assert names(login("admin").get(f"/api/v1/targets?q={code.lower()}")) == ["鑫隆五金店"]


def test_q_ignores_the_spaces_around_a_scanned_code(login, world):
    """A scanner types the code with a newline (or a space) after it: the list finds the shop,
    as the by-code lookup does; a q of spaces only is refused like an empty one."""
    admin = login("admin")
    code = world.targets["shop2"].code
    assert names(admin.get(f"/api/v1/targets?q={code}%0A")) == ["鑫隆五金店"]
    assert names(admin.get(f"/api/v1/targets?q=%20{code}%20")) == ["鑫隆五金店"]
    assert names(admin.get("/api/v1/targets?q=%20面馆%20")) == ["老王面馆"]
    for blank in ("", "%20%20", "%0A"):
        body = assert_error(admin.get(f"/api/v1/targets?q={blank}"), 422, "validation_failed")
        assert body["errors"] == {"query": {"q": ["may not be blank"]}}


def test_near_lists_nearest_first_and_leaves_out_far_ones(login, world):
    admin = login("admin")
    # About 290 m from 老王面馆, 1.2 km from the site, 7 km from the hardware shop.
    here = "121.468,31.368"
    assert names(admin.get(f"/api/v1/targets?near={here},1500")) == [
        "老王面馆",
        "宝山区吴淞地区住宅项目",
    ]
    assert names(admin.get(f"/api/v1/targets?near={here},500")) == ["老王面馆"]
    assert names(admin.get(f"/api/v1/targets?near={here},100")) == []
    # From the other side the order turns round.
    assert names(admin.get("/api/v1/targets?near=121.458,31.358,2000")) == [
        "宝山区吴淞地区住宅项目",
        "老王面馆",
    ]


def test_near_counts_metres_on_the_ground_at_shanghai(login, world):
    """At Shanghai a degree of latitude is 110.9 km, not the mean 111.3 km: a shop 997 m due
    north is within ``near=...,1000`` and one 1003 m due east is not."""
    admin = login("admin")
    lon, lat = 121.47, 31.45
    per_lon, per_lat = metres_per_degree(lat)
    for name, location in (
        ("北边小卖部", {"lon": lon, "lat": lat + 997 / per_lat}),
        ("东边小卖部", {"lon": lon + 1003 / per_lon, "lat": lat}),
    ):
        created = admin.post(
            "/api/v1/targets",
            json=shop_payload(world.squadrons[0].id, name=name, location=location),
        )
        assert created.status_code == 201, created.get_json()
    assert names(admin.get(f"/api/v1/targets?near={lon},{lat},1000")) == ["北边小卖部"]
    assert names(admin.get(f"/api/v1/targets?near={lon},{lat},1010")) == [
        "北边小卖部",
        "东边小卖部",
    ]


def test_paging_walks_every_target_once(login, world):
    admin = login("admin")
    first = admin.get("/api/v1/targets?per_page=2").get_json()
    assert (first["page"], first["per_page"], first["has_more"]) == (1, 2, True)
    second = admin.get("/api/v1/targets?per_page=2&page=2").get_json()
    assert (second["page"], second["has_more"]) == (2, False)
    seen = [t["name"] for t in first["items"] + second["items"]]
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    assert sorted(seen) == sorted(ALL)
    beyond = admin.get("/api/v1/targets?per_page=2&page=3").get_json()
    assert beyond["items"] == [] and beyond["has_more"] is False
    exact = admin.get("/api/v1/targets?per_page=3").get_json()
    assert len(exact["items"]) == 3 and exact["has_more"] is False


def test_deactivated_targets_leave_the_list_unless_asked_for(login, world):
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    response = admin.patch(path, json={"active": False}, headers={"If-Match": etag_of(admin, path)})
    assert response.status_code == 200
    assert "老王面馆" not in names(admin.get("/api/v1/targets"))
    assert names(admin.get("/api/v1/targets?active=false")) == ["老王面馆"]
    # Still on file: by id and by code.
    assert admin.get(path).status_code == 200
    assert admin.get(f"/api/v1/targets/by-code/{world.targets['shop1'].code}").status_code == 200


# -- the target's file and the QR code lookup -------------------------------------------------


def test_shop_file_has_details_and_history_sections(login, world):
    response = login("officer1").get(f"/api/v1/targets/{world.targets['shop1'].id}")
    assert response.status_code == 200
    assert response.headers["ETag"]
    body = response.get_json()
    assert body["name"] == "老王面馆"
    assert body["kind"] == "shop"
    assert body["business_type"] == "catering"
    assert body["uscc"] == "91310113MA1GL0A116"
    assert body["location"] == {"lon": 121.47, "lat": 31.37}
    assert body["version"] == 1
    for section in ("recent_inspections", "open_rectifications", "complaints", "cases"):
        assert body[section] == []


def test_the_file_is_not_answered_304_once_anything_in_it_changed(login, world):
    """A client revalidating the file (一店一档) with ``If-None-Match`` is told "not modified"
    only while the file is the same: a new inspection or complaint changes no version of the
    target, yet it is in the file, so the answer is 200 with the new file and a new ETag; by id
    and by code alike. Each 304 carries the ETag it confirms."""
    leader = login("leader1")
    shop = world.targets["shop1"]
    for path in (f"/api/v1/targets/{shop.id}", f"/api/v1/targets/by-code/{shop.code}"):
        first = leader.get(path)
        etag = first.headers["ETag"]
        same = leader.get(path, headers={"If-None-Match": etag})
        assert same.status_code == 304 and same.headers["ETag"] == etag
        assert same.get_data() == b""
    push_inspection(world, FakeDevice(login("officer1")))
    complaint = {"target_id": str(shop.id), "category": "占道经营", "text": "门前堆放桌椅"}
    assert leader.post("/api/v1/complaints", json=complaint).status_code == 201
    for path in (f"/api/v1/targets/{shop.id}", f"/api/v1/targets/by-code/{shop.code}"):
        again = leader.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 200
        body = again.get_json()
        assert (len(body["recent_inspections"]), len(body["complaints"])) == (1, 1)
        assert body["version"] == first.get_json()["version"]
        assert again.headers["ETag"] != etag


def test_an_edit_may_send_an_etag_read_before_the_file_grew(login, world):
    """``If-Match`` is about the target, not about its file: an ETag read before a new
    inspection still names the target's version (200), and so does the version part alone (the
    tag clients held before the ETag covered the file); an earlier version's tag is 412."""
    leader = login("leader1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    before = etag_of(leader, path)
    push_inspection(world, FakeDevice(login("officer1")))
    assert leader.get(path).headers["ETag"] != before
    response = leader.patch(path, json={"address": "淞滨路101号"}, headers={"If-Match": before})
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"] == leader.get(path).headers["ETag"]
    version_only = response.headers["ETag"].split(".")[0] + '"'
    response = leader.patch(
        path, json={"address": "淞滨路102号"}, headers={"If-Match": version_only}
    )
    assert response.status_code == 200, response.get_json()
    assert_error(
        leader.patch(path, json={"address": "淞滨路103号"}, headers={"If-Match": version_only}),
        412,
        "precondition_failed",
    )


def test_site_file_has_scale_phase_and_boundary(login, world):
    body = login("leader1").get(f"/api/v1/targets/{world.targets['site1'].id}").get_json()
    assert body["kind"] == "site"
    assert (body["scale"], body["phase"], body["permit_no"]) == (
        "large",
        "earthwork",
        "3101132024001",
    )
    assert body["boundary"] == square(121.455, 31.355, 0.01)
    assert body["business_type"] is None and body["uscc"] is None


def test_file_shows_inspections_open_rectifications_and_complaints(app, login, world):
    from fieldapp.complaints.models import Complaint
    from fieldapp.inspections.models import Inspection, InspectionStatus, Origin, Outcome

    shop = world.targets["shop1"]
    started = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
    with app.app_context():
        ordered = Inspection(
            target_id=shop.id,
            squadron_id=shop.squadron_id,
            checklist_id=world.checklists["shop"].id,
            checklist_version=1,
            origin=Origin.scheduled,
            started_at=started,
            lon=121.47,
            lat=31.37,
            answers={"S01": {"result": "pass"}, "S03": {"result": "fail", "note": "油烟直排"}},
            outcome=Outcome.rectification_ordered,
            rectification_deadline=date(2025, 3, 10),
            status=InspectionStatus.submitted,  # an order counts once submitted
        )
        db.session.add(ordered)
        db.session.add(
            Complaint(
                target_id=shop.id,
                squadron_id=shop.squadron_id,
                category="油烟",
                text="饭店油烟扰民",
                substantiated=True,
            )
        )
        db.session.commit()
        ordered_id = ordered.id

    leader = login("leader1")
    body = leader.get(f"/api/v1/targets/{shop.id}").get_json()
    assert [i["id"] for i in body["recent_inspections"]] == [str(ordered_id)]
    assert body["recent_inspections"][0]["failed_items"] == ["S03"]
    assert body["recent_inspections"][0]["outcome"] == "rectification_ordered"
    assert [i["id"] for i in body["open_rectifications"]] == [str(ordered_id)]
    assert body["open_rectifications"][0]["rectification_deadline"] == "2025-03-10"
    assert [(c["category"], c["substantiated"]) for c in body["complaints"]] == [("油烟", True)]

    # The follow-up inspection (复查) closes the rectification; both stay in the history.
    with app.app_context():
        db.session.add(
            Inspection(
                target_id=shop.id,
                squadron_id=shop.squadron_id,
                checklist_id=world.checklists["shop"].id,
                checklist_version=1,
                origin=Origin.scheduled,
                started_at=started + timedelta(days=7),
                lon=121.47,
                lat=31.37,
                outcome=Outcome.compliant,
                follow_up_of=ordered_id,
                status=InspectionStatus.submitted,
            )
        )
        db.session.commit()
    body = leader.get(f"/api/v1/targets/{shop.id}").get_json()
    assert body["open_rectifications"] == []
    assert len(body["recent_inspections"]) == 2
    assert body["recent_inspections"][0]["outcome"] == "compliant"  # newest first


def test_by_code_finds_the_same_file_in_any_case(login, world):
    officer = login("officer1")
    shop = world.targets["shop1"]
    for code in (shop.code, shop.code.lower()):
        response = officer.get(f"/api/v1/targets/by-code/{code}")
        assert response.status_code == 200
        assert response.get_json()["id"] == str(shop.id)
        assert "recent_inspections" in response.get_json()


def _label(response) -> ET.Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "image/svg+xml"
    return ET.fromstring(response.get_data())


def _texts(svg: ET.Element) -> list[str]:
    return [text.text for text in svg.iter("{http://www.w3.org/2000/svg}text")]


def test_a_shop_s_label_holds_its_code_as_a_qr_code_with_code_and_name_under_it(login, world):
    """一店一码: the sticker for the shop front. The QR code holds the code that an officer's
    scan looks up (``by-code``), at error correction level Q (a soiled sticker still reads)."""
    shop = world.targets["shop1"]
    label = _label(login("officer1").get(f"/api/v1/targets/{shop.id}/label"))
    assert _texts(label) == [shop.code, shop.name]
    paths = [p.get("d") for p in label.iter("{http://www.w3.org/2000/svg}path")]
    expected = ET.fromstring(segno.make_qr(shop.code, error="q").svg_inline(scale=8, border=4))
    assert paths == [p.get("d") for p in expected.iter("path")]
    assert segno.make_qr(shop.code, error="q").error == "Q"


def test_a_label_follows_a_corrected_name_and_answers_304_while_it_is_the_same(login, world):
    leader = login("leader1")
    shop = world.targets["shop1"]
    path = f"/api/v1/targets/{shop.id}/label"
    first = leader.get(path)
    etag = first.headers["ETag"]
    assert leader.get(path, headers={"If-None-Match": etag}).status_code == 304
    target_path = f"/api/v1/targets/{shop.id}"
    response = leader.patch(
        target_path,
        json={"name": "老王面馆<总店> & 分店"},
        headers={"If-Match": etag_of(leader, target_path)},
    )
    assert response.status_code == 200, response.get_json()
    again = leader.get(path, headers={"If-None-Match": etag})
    assert again.headers["ETag"] != etag
    # Markup in a name is text on the label, never markup in it.
    assert _texts(_label(again)) == [shop.code, "老王面馆<总店> & 分店"]


def test_a_long_name_is_squeezed_to_the_label_s_width(login, world):
    leader = login("leader1")
    shop = world.targets["shop1"]
    target_path = f"/api/v1/targets/{shop.id}"
    long_name = "上海市宝山区吴淞街道淞滨路老王家常面馆第二分店"
    response = leader.patch(
        target_path, json={"name": long_name}, headers={"If-Match": etag_of(leader, target_path)}
    )
    assert response.status_code == 200, response.get_json()
    label = _label(leader.get(f"{target_path}/label"))
    name = list(label.iter("{http://www.w3.org/2000/svg}text"))[-1]
    assert name.text == long_name
    assert float(name.get("textLength")) < float(label.get("width"))
    short = _label(login("leader2").get(f"/api/v1/targets/{world.targets['shop2'].id}/label"))
    assert list(short.iter("{http://www.w3.org/2000/svg}text"))[-1].get("textLength") is None


def test_a_label_of_a_name_stored_with_a_control_character_is_still_svg(app, login, world):
    """Names stored before control characters were refused may hold one (a vertical tab pasted
    from a spreadsheet): the label prints all the same, the character as a space, instead of a
    document no browser or printer opens."""
    shop = world.targets["shop1"]
    with app.app_context():
        renamed = sa.update(Target).where(Target.id == shop.id).values(name="老王\x0b面馆\x1b")
        db.session.execute(renamed)
        db.session.commit()
    label = _label(login("leader1").get(f"/api/v1/targets/{shop.id}/label"))
    assert _texts(label) == [shop.code, "老王 面馆 "]


def test_a_label_is_scoped_like_its_target_and_takes_no_query(login, world):
    shop = world.targets["shop1"]
    assert_error(login("officer3").get(f"/api/v1/targets/{shop.id}/label"), 404, "not_found")
    response = login("officer1").get(f"/api/v1/targets/{shop.id}/label?format=png")
    assert_error(response, 422, "validation_failed")
    assert response.get_json()["errors"] == {"query": {"format": ["Unknown field."]}}


def test_unknown_target_or_code_is_404(login, world):
    admin = login("admin")
    assert_error(
        admin.get("/api/v1/targets/00000000-0000-4000-8000-000000000000"), 404, "not_found"
    )
    assert_error(admin.get("/api/v1/targets/by-code/SAAAAAAAAAA"), 404, "not_found")


# -- adding -----------------------------------------------------------------------------------


def test_leader_adds_a_shop_to_own_squadron_with_a_stable_code(login, world):
    leader = login("leader1")
    response = leader.post(
        "/api/v1/targets", json=shop_payload(world.squadrons[0].id, uscc=VALID_USCC)
    )
    assert response.status_code == 201, response.get_json()
    shop = response.get_json()
    assert shop["kind"] == "shop" and shop["name"] == "阿强水果店"
    assert shop["squadron_id"] == world.squadrons[0].id
    assert shop["uscc"] == VALID_USCC
    assert shop["version"] == 1
    assert shop["code"].startswith("S") and len(shop["code"]) == 11
    # The printed QR code finds it, and an edit never changes it.
    path = f"/api/v1/targets/{shop['id']}"
    renamed = leader.patch(
        path, json={"name": "阿强果品店"}, headers={"If-Match": etag_of(leader, path)}
    )
    assert renamed.get_json()["code"] == shop["code"]
    found = leader.get(f"/api/v1/targets/by-code/{shop['code']}")
    assert found.get_json()["id"] == shop["id"]
    assert found.get_json()["name"] == "阿强果品店"
    # New targets show up in the squadron's list at once.
    assert "阿强果品店" in names(login("officer2").get("/api/v1/targets"))


def test_admin_adds_a_site_anywhere(login, world):
    response = login("admin").post("/api/v1/targets", json=site_payload(world.squadrons[1].id))
    assert response.status_code == 201, response.get_json()
    site = response.get_json()
    assert site["code"].startswith("C")
    assert (site["scale"], site["phase"]) == ("medium", "structure")
    assert site["boundary"] == square(121.425, 31.325, 0.01)
    assert site["squadron_id"] == world.squadrons[1].id
    assert "张庙街道商业综合体项目" in names(login("officer3").get("/api/v1/targets"))


def test_codes_differ_between_targets(login, world):
    admin = login("admin")
    codes = {
        admin.post("/api/v1/targets", json=shop_payload(world.squadrons[0].id)).get_json()["code"]
        for _ in range(3)
    }
    codes |= {t.code for t in world.targets.values()}
    assert len(codes) == 6


@pytest.mark.parametrize(
    "kind, extra, field",
    [
        ("shop", {"scale": "large"}, "scale"),
        ("shop", {"phase": "earthwork"}, "phase"),
        ("shop", {"permit_no": "3101132025001"}, "permit_no"),
        ("shop", {"boundary": square(121.47, 31.37, 0.001)}, "boundary"),
        ("shop", {"business_type": None}, "business_type"),
        ("site", {"uscc": VALID_USCC}, "uscc"),
        ("site", {"business_type": "catering"}, "business_type"),
        ("site", {"scale": None}, "scale"),
        ("site", {"phase": None}, "phase"),
    ],
)
def test_fields_of_the_other_kind_are_refused_on_create(login, world, kind, extra, field):
    make = shop_payload if kind == "shop" else site_payload
    payload = {k: v for k, v in make(world.squadrons[0].id).items() if k not in extra}
    payload.update({k: v for k, v in extra.items() if v is not None})
    body = assert_error(
        login("admin").post("/api/v1/targets", json=payload), 422, "validation_failed"
    )
    assert field in body["errors"]["json"]


@pytest.mark.parametrize(
    "target, changes, field",
    [
        ("shop1", {"scale": "small"}, "scale"),
        ("shop1", {"phase": "finishing"}, "phase"),
        ("shop1", {"permit_no": "3101132025001"}, "permit_no"),
        ("shop1", {"boundary": square(121.47, 31.37, 0.001)}, "boundary"),
        ("shop1", {"business_type": None}, "business_type"),
        ("site1", {"uscc": VALID_USCC}, "uscc"),
        ("site1", {"business_type": "catering"}, "business_type"),
        ("site1", {"scale": None}, "scale"),
        ("site1", {"phase": None}, "phase"),
        ("shop1", {"kind": "site"}, "kind"),  # a target's kind never changes
        ("shop1", {"code": "SAAAAAAAAAA"}, "code"),  # nor its code
    ],
)
def test_fields_of_the_other_kind_are_refused_on_edit(login, world, target, changes, field):
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets[target].id}"
    etag = etag_of(admin, path)
    body = assert_error(
        admin.patch(path, json=changes, headers={"If-Match": etag}), 422, "validation_failed"
    )
    assert field in body["errors"]["json"]
    after = admin.get(path)
    assert after.get_json()["version"] == 1
    assert after.headers["ETag"] == etag


def refused_on_create_and_edit(api, world, shop: str, **field) -> None:
    """A shop created with ``field`` and ``shop`` edited to it are both 422 on that field alone."""
    [name] = field
    created = api.post("/api/v1/targets", json=shop_payload(world.squadrons[0].id, **field))
    body = assert_error(created, 422, "validation_failed")
    assert list(body["errors"]["json"]) == [name]
    path = f"/api/v1/targets/{world.targets[shop].id}"
    edited = api.patch(path, json=field, headers={"If-Match": etag_of(api, path)})
    body = assert_error(edited, 422, "validation_failed")
    assert list(body["errors"]["json"]) == [name]


@pytest.mark.parametrize(
    "uscc",
    [
        "91310113MA1GL0A117",  # check character wrong
        "91310113MA1GL0A11",  # 17 characters
        "91310113MA1GL0A1166",  # 19 characters
        "9131011 MA1GL0A116",
        "",
    ],
)
def test_invalid_uscc_is_refused(login, world, uscc):
    refused_on_create_and_edit(login("admin"), world, "shop2", uscc=uscc)


@pytest.mark.parametrize("uscc", ["91310113MA1GL0A116", "91310113MA1H2B3C4R"])
def test_valid_uscc_is_accepted(login, world, uscc):
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets['shop2'].id}"
    response = admin.patch(path, json={"uscc": uscc}, headers={"If-Match": etag_of(admin, path)})
    assert response.status_code == 200
    assert response.get_json()["uscc"] == uscc


@pytest.mark.parametrize(
    "printed",
    ["9131-0113-MA1G-L0A1-16", "91310113ma1gl0a116", " 9131 0113 MA1G L0A1 16 "],
    ids=["hyphens", "lower-case", "spaces"],
)
def test_a_uscc_written_as_printed_is_stored_canonical_and_found_by_q(login, world, printed):
    """A code copied off a business licence (hyphens, spaces, lower case) is a valid code: it
    is stored as its 18 upper-case characters (never a 500 for the 18-character column), shown
    so on the wire, and ``q`` finds the shop by it, typed either way."""
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets['shop2'].id}"
    response = admin.patch(path, json={"uscc": printed}, headers={"If-Match": etag_of(admin, path)})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["uscc"] == "91310113MA1GL0A116"
    found = names(admin.get("/api/v1/targets", query_string={"q": printed}))
    assert "鑫隆五金店" in found
    assert "鑫隆五金店" in names(admin.get("/api/v1/targets?q=91310113MA1GL0A116"))
    created = admin.post("/api/v1/targets", json=shop_payload(world.squadrons[0].id, uscc=printed))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["uscc"] == "91310113MA1GL0A116"


@pytest.mark.parametrize(
    "blank", ["   ", "\u3000\t", "\n"], ids=["spaces", "ideographic", "newline"]
)
def test_a_blank_name_is_refused_on_create_and_edit(login, world, blank):
    """A shop named with nothing but white space would have no name on the list, the file or
    its QR label: 422 on ``name``, and the edit leaves the target as it was."""
    leader = login("leader1")
    refused_on_create_and_edit(leader, world, "shop1", name=blank)
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    assert leader.get(path).get_json()["name"] == "老王面馆"


@pytest.mark.parametrize("field", ["name", "address"])
@pytest.mark.parametrize("control", ["\x0b", "\x01", "\x1b"], ids=["vtab", "soh", "esc"])
def test_a_name_or_address_with_a_control_character_is_refused(login, world, field, control):
    """A name or address pasted from a spreadsheet with a control character in it (a vertical
    tab for a line break in the cell) shows as nothing or a box, and the QR label of such a
    name would not be XML: 422 on that field, on create and edit, saying what and where."""
    leader = login("leader1")
    refused_on_create_and_edit(leader, world, "shop1", **{field: f"淞滨{control}路"})
    response = leader.post(
        "/api/v1/targets", json=shop_payload(world.squadrons[0].id, **{field: f"淞滨{control}路"})
    )
    assert response.get_json()["errors"]["json"] == {
        field: [f"text may not contain control characters (\\u{ord(control):04x} at character 3)"]
    }
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    assert leader.get(path).get_json()["name"] == "老王面馆"


def test_a_name_may_hold_a_tab_and_a_permit_number_no_control_character(login, world):
    """Tab and line breaks are text XML holds (a spreadsheet's tab between words is kept);
    a site's permit number with a form feed is refused as a name would be."""
    admin = login("admin")
    kept = admin.post(
        "/api/v1/targets", json=shop_payload(world.squadrons[0].id, name="阿强\t水果店")
    )
    assert kept.status_code == 201, kept.get_json()
    assert kept.get_json()["name"] == "阿强\t水果店"
    refused = admin.post(
        "/api/v1/targets", json=site_payload(world.squadrons[0].id, permit_no="310113\x0c2025")
    )
    body = assert_error(refused, 422, "validation_failed")
    assert list(body["errors"]["json"]) == ["permit_no"]


def test_a_name_is_stored_without_the_spaces_around_it(login, world):
    leader = login("leader1")
    response = leader.post(
        "/api/v1/targets", json=shop_payload(world.squadrons[0].id, name="  阿强 水果店 ")
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["name"] == "阿强 水果店"


def east_of_the_site_payload_boundary(metres: float) -> dict:
    """A point ``metres`` east of the east edge of site_payload's boundary (121.435)."""
    return {"lon": 121.435 + metres / metres_per_degree(31.33)[0], "lat": 31.33}


def test_a_site_far_from_its_own_boundary_is_refused(login, world):
    """A site whose point is 2,000 km from its boundary would be found by ``near`` and
    ``bbox`` where it is not, and its inspections flagged for standing at the gate: 422 on
    ``location``. A gate up to 500 m outside the hoarding is a site's gate."""
    admin = login("admin")
    squadron = world.squadrons[0].id
    body = assert_error(
        admin.post(
            "/api/v1/targets", json=site_payload(squadron, location={"lon": 100.0, "lat": 10.0})
        ),
        422,
        "validation_failed",
    )
    assert list(body["errors"]["json"]) == ["location"]
    assert "outside the site's boundary" in body["errors"]["json"]["location"][0]
    far = site_payload(squadron, location=east_of_the_site_payload_boundary(520))
    assert_error(admin.post("/api/v1/targets", json=far), 422, "validation_failed")
    near = site_payload(squadron, location=east_of_the_site_payload_boundary(480))
    assert admin.post("/api/v1/targets", json=near).status_code == 201
    # Without a boundary there is nothing to hold the point to.
    loose = site_payload(squadron, location={"lon": 121.3, "lat": 31.5}, boundary=None)
    assert admin.post("/api/v1/targets", json=loose).status_code == 201


def test_an_edit_moving_a_sites_point_or_boundary_apart_is_refused(login, world):
    """An edit that moves only the point is held to the stored boundary, one that redraws only
    the boundary to the stored point (the error names the field sent); moving both together
    is an edit like any other. A refused edit leaves the site as it was."""
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets['site1'].id}"  # boundary square(121.455, 31.355)
    for changes, field in (
        ({"location": {"lon": 121.50, "lat": 31.36}}, "location"),  # 3.9 km east
        ({"boundary": square(121.40, 31.30, 0.01)}, "boundary"),
        (
            {"location": {"lon": 121.50, "lat": 31.36}, "boundary": square(121.40, 31.30)},
            "location",
        ),
    ):
        response = admin.patch(path, json=changes, headers={"If-Match": etag_of(admin, path)})
        body = assert_error(response, 422, "validation_failed")
        assert list(body["errors"]["json"]) == [field], changes
    assert admin.get(path).get_json()["version"] == 1
    both = {"location": {"lon": 121.405, "lat": 31.305}, "boundary": square(121.40, 31.30, 0.01)}
    response = admin.patch(path, json=both, headers={"If-Match": etag_of(admin, path)})
    assert response.status_code == 200, response.get_json()
    inside = {"location": {"lon": 121.401, "lat": 31.309}}
    response = admin.patch(path, json=inside, headers={"If-Match": etag_of(admin, path)})
    assert response.status_code == 200, response.get_json()


def test_unknown_squadron_is_refused_for_an_admin(login, world):
    body = assert_error(
        login("admin").post("/api/v1/targets", json=shop_payload(9999)), 422, "validation_failed"
    )
    assert list(body["errors"]["json"]) == ["squadron_id"]


# -- editing ----------------------------------------------------------------------------------


def test_edit_needs_if_match_and_moves_the_version_on(login, world):
    leader = login("leader1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    first = etag_of(leader, path)

    assert_error(leader.patch(path, json={"name": "王记面馆"}), 428, "precondition_required")
    for wrong in ('"not-the-etag"', '""'):
        assert_error(
            leader.patch(path, json={"name": "王记面馆"}, headers={"If-Match": wrong}),
            412,
            "precondition_failed",
        )
    assert leader.get(path).get_json()["name"] == "老王面馆"

    response = leader.patch(
        path,
        json={"name": "王记面馆", "location": {"lon": 121.471, "lat": 31.371}},
        headers={"If-Match": first},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "王记面馆"
    assert body["location"] == {"lon": 121.471, "lat": 31.371}
    assert body["version"] == 2
    second = response.headers["ETag"]
    assert second and second != first
    assert leader.get(path).headers["ETag"] == second

    # The first ETag is stale now: a second device editing from it is stopped.
    assert_error(
        leader.patch(path, json={"address": "淞滨路102号"}, headers={"If-Match": first}),
        412,
        "precondition_failed",
    )
    again = leader.patch(path, json={"address": "淞滨路102号"}, headers={"If-Match": second})
    assert again.get_json()["version"] == 3


def test_edit_can_clear_optional_fields(login, world):
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    response = admin.patch(
        path,
        json={"uscc": None, "credit_class": "D", "sensitive_surroundings": True},
        headers={"If-Match": etag_of(admin, path)},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["uscc"] is None
    assert (body["credit_class"], body["sensitive_surroundings"]) == ("D", True)


def test_admin_moves_a_target_to_another_squadron(login, world):
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    response = admin.patch(
        path,
        json={"squadron_id": world.squadrons[1].id},
        headers={"If-Match": etag_of(admin, path)},
    )
    assert response.status_code == 200
    assert response.get_json()["squadron_id"] == world.squadrons[1].id
    assert "老王面馆" in names(login("officer3").get("/api/v1/targets"))
    assert_error(login("officer1").get(path), 404, "not_found")


def test_an_open_case_moves_with_its_shop_so_the_new_leader_reads_it_in_the_shops_file(
    app, login, world
):
    """A case (立案) is opened on 老王面馆 (吴淞) and the supervisor orders 吴淞 about it. The
    shop moves to 张庙: the open order follows the shop, and so does the case (audited as
    ``case.move``), so 张庙's leader, asked about the case, finds it in the shop's file."""
    from fieldapp.inspections.models import Case
    from tests.review_helpers import FAILED_S03, review_ok

    supervisor = login("supervisor")
    opened = push_inspection(
        world, FakeDevice(login("officer1")), answers=FAILED_S03, outcome="case_opened"
    )
    review_ok(login("leader1"), opened, "approve")
    with app.app_context():
        case_id = str(
            db.session.scalar(sa.select(Case.id).where(Case.inspection_id == uuid.UUID(opened)))
        )
    order = supervisor.post(
        "/api/v1/supervision/orders",
        json={
            "squadron_id": world.squadrons[0].id,
            "case_id": case_id,
            "text": "该案件办理超期, 请说明情况",
            "deadline": "2027-01-20T17:00:00+08:00",
        },
    )
    assert order.status_code == 201, order.get_json()
    move_target(login("admin"), world.targets["shop1"].id, world.squadrons[1].id)
    leader2 = login("leader2")
    order_now = leader2.get(f"/api/v1/supervision/orders/{order.get_json()['id']}")
    assert order_now.status_code == 200
    assert order_now.get_json()["squadron_id"] == world.squadrons[1].id
    shop_file = leader2.get(f"/api/v1/targets/{world.targets['shop1'].id}").get_json()
    assert case_id in [c["id"] for c in shop_file["cases"]], shop_file["cases"]
    [move] = audit_entries(app, action="case.move")
    assert (move.record_id, move.before, move.after) == (
        case_id,
        {"squadron_id": world.squadrons[0].id},
        {"squadron_id": world.squadrons[1].id},
    )


# -- audit ------------------------------------------------------------------------------------


def test_create_and_edit_leave_audit_entries_with_before_and_after(app, login, world):
    leader = login("leader1")
    created = leader.post("/api/v1/targets", json=shop_payload(world.squadrons[0].id)).get_json()
    path = f"/api/v1/targets/{created['id']}"
    leader.patch(
        path,
        json={"name": "阿强果品店", "credit_class": "C"},
        headers={"If-Match": etag_of(leader, path)},
    )

    entries = audit_entries(app, entity="target", record_id=created["id"])
    assert [e.action for e in entries] == ["target.create", "target.update"]
    create, update = entries
    assert create.before is None
    assert create.after["name"] == "阿强水果店"
    assert create.after["code"] == created["code"]
    assert create.after["squadron_id"] == world.squadrons[0].id
    assert update.before == {"name": "阿强水果店", "credit_class": "B"}
    assert update.after == {"name": "阿强果品店", "credit_class": "C"}
    for entry in entries:
        assert entry.actor_id == world.users["leader1"].id
        assert entry.device_id == leader.device_id


def test_refused_edit_leaves_no_audit_entry(app, login, world):
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    admin.patch(path, json={"scale": "small"}, headers={"If-Match": etag_of(admin, path)})
    admin.patch(path, json={"name": "x"}, headers={"If-Match": '"stale"'})
    assert audit_entries(app, entity="target", action="target.update") == []


# -- importing (fieldapp targets import; tests/test_cli.py runs the command) -------------------


def test_import_refuses_text_the_database_cannot_store_before_any_query(ctx, world, tmp_path):
    """A NUL character: SQLite would store it, PostgreSQL refuses it (in a name, or in the code
    that is looked up); the import reports it by line, as the API refuses such text."""
    path = tmp_path / "shops.csv"
    path.write_text(
        "kind,name,address,squadron,lon,lat,business_type,code\n"
        "shop,老王\x00面馆,宝山区淞滨路14号,吴淞,121.49,31.40,catering,\n"
        ",改名,,,,,,S\x0001\n"
        "shop,小杨水果,宝山区淞滨路16号,吴淞,121.49,31.40,fresh_produce,\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportError_) as refused:
        import_targets(Actor.for_system("import"), path)
    assert refused.value.problems == [
        f"line 2: name: {NUL_MESSAGE}",
        f"line 3: code: {NUL_MESSAGE}",
    ]
    db.session.rollback()
    path.write_text(
        "kind,name,address,squadron,lon,lat,business_type\n"
        "shop,小杨水果,宝山区淞滨路16号,吴淞,121.49,31.40,fresh_produce\n",
        encoding="gbk",
    )
    assert import_targets(Actor.for_system("import"), path).created == 1
    assert db.session.scalar(sa.select(Target.name).where(Target.name == "小杨水果"))


def test_import_stores_a_uscc_as_printed_in_its_canonical_form(ctx, world, tmp_path):
    """A register exported from another system writes the 统一社会信用代码 as printed: the
    import takes it as the API does and stores the 18 upper-case characters."""
    path = tmp_path / "shops.csv"
    path.write_text(
        "kind,name,address,squadron,lon,lat,business_type,uscc\n"
        "shop,小杨水果,宝山区淞滨路16号,吴淞,121.49,31.40,fresh_produce,9131-0113-ma1g-l0a1-16\n",
        encoding="utf-8",
    )
    assert import_targets(Actor.for_system("import"), path).created == 1
    stored = db.session.scalar(sa.select(Target.uscc).where(Target.name == "小杨水果"))
    assert stored == "91310113MA1GL0A116"


def _squadron(district_id: int, name: str, lon: float) -> int:
    from fieldapp.org.models import Squadron

    squadron = Squadron(district_id=district_id, name=name, jurisdiction=square(lon, 30.0, 0.01))
    db.session.add(squadron)
    db.session.flush()
    return squadron.id


def _import_one_shop_of(tmp_path, squadron: str):
    path = tmp_path / "shops.csv"
    path.write_text(
        "kind,name,address,squadron,lon,lat,business_type\n"
        f"shop,小杨水果,宝山区淞滨路16号,{squadron},121.49,31.40,fresh_produce\n",
        encoding="utf-8",
    )
    return import_targets(Actor.for_system("import"), path)


def test_import_takes_the_squadron_called_exactly_so_before_one_that_shortens_to_it(
    ctx, world, tmp_path
):
    """A district with 吴淞中队 and a new station called just 吴淞: a file naming 吴淞 means
    the station (as ``fieldapp user add --squadron 吴淞`` does); whichever came last won."""
    station = _squadron(world.squadrons[0].district_id, "吴淞", 120.0)
    assert _import_one_shop_of(tmp_path, "吴淞").created == 1
    stored = db.session.scalar(sa.select(Target.squadron_id).where(Target.name == "小杨水果"))
    assert stored == station


def test_import_refuses_a_squadron_name_of_several_districts_with_its_line(ctx, world, tmp_path):
    """Another district has a 吴淞中队 too: 吴淞 names two squadrons, and the shop went to
    whichever was read last. The row is reported, naming both ids, and nothing is written."""
    from fieldapp.org.models import District

    minhang = District(code="310112", name="闵行区")
    db.session.add(minhang)
    db.session.flush()
    other = _squadron(minhang.id, "吴淞中队", 120.0)
    with pytest.raises(ImportError_) as refused:
        _import_one_shop_of(tmp_path, "吴淞")
    [problem] = [p for p in refused.value.problems if p.startswith("line 2: squadron:")]
    assert "names squadrons of several districts" in problem and str(other) in problem
    assert str(world.squadrons[0].id) in problem
    assert db.session.scalar(sa.select(Target.id).where(Target.name == "小杨水果")) is None
    assert _import_one_shop_of(tmp_path, str(world.squadrons[0].id)).created == 1


def test_import_refuses_a_blank_name(ctx, world, tmp_path):
    """The import takes names as the API does: a GeoJSON feature named with spaces is reported
    by its feature, and nothing is written."""
    path = tmp_path / "shops.geojson"
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [121.49, 31.40]},
        "properties": {
            "kind": "shop",
            "name": "   ",
            "squadron": "吴淞",
            "business_type": "retail",
        },
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(ImportError_) as refused:
        import_targets(Actor.for_system("import"), path)
    assert refused.value.problems == ["feature 0: name: may not be blank"]


def test_import_refuses_a_control_character_in_a_name_or_address_with_its_line(
    ctx, world, tmp_path
):
    """A register kept in a spreadsheet has a line break inside a cell saved as a vertical tab:
    the import reports the row's line and the field, as the API refuses such text, and nothing
    is written."""
    path = tmp_path / "shops.csv"
    path.write_text(
        "kind,name,address,squadron,lon,lat,business_type\n"
        "shop,小杨水果,宝山区淞滨路16号,吴淞,121.49,31.40,fresh_produce\n"
        "shop,老王\x0b面馆,宝山区淞滨路14号,吴淞,121.49,31.40,catering\n"
        "shop,阿强水果店,宝山区\x1c淞滨路18号,吴淞,121.49,31.40,fresh_produce\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportError_) as refused:
        import_targets(Actor.for_system("import"), path)
    assert refused.value.problems == [
        "line 3: name: text may not contain control characters (\\u000b at character 3)",
        "line 4: address: text may not contain control characters (\\u001c at character 4)",
    ]
    db.session.rollback()
    assert db.session.scalar(sa.select(Target.id).where(Target.name == "小杨水果")) is None


def test_import_refuses_a_site_far_from_its_boundary_with_its_line(ctx, world, tmp_path):
    """A site's boundary with a gate 2,000 km away (GeoJSON), and an existing site's gate moved
    away from its stored boundary (CSV, by code): each reported with its feature or line, before
    anything is written."""
    boundary = square(121.425, 31.325, 0.01)
    path = tmp_path / "sites.geojson"
    feature = {
        "type": "Feature",
        "geometry": boundary,
        "properties": {
            "kind": "site",
            "name": "远方工地",
            "squadron": "吴淞",
            "scale": "small",
            "phase": "earthwork",
            "lon": 100.0,
            "lat": 10.0,
        },
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(ImportError_) as refused:
        import_targets(Actor.for_system("import"), path)
    [problem] = refused.value.problems
    assert problem.startswith("feature 0: location: ") and "outside the site's boundary" in problem
    csv_path = tmp_path / "moves.csv"
    csv_path.write_text(f"code,lon,lat\n{world.targets['site1'].code},121.50,31.36\n")
    with pytest.raises(ImportError_) as refused:
        import_targets(Actor.for_system("import"), csv_path)
    [problem] = refused.value.problems
    assert problem.startswith("line 2: location: ")
    db.session.rollback()
    assert db.session.get(Target, world.targets["site1"].id).lon == 121.46


def test_import_reports_a_field_of_the_other_kind_for_a_stored_target_with_its_line(
    ctx, world, tmp_path
):
    """A row naming a stored shop by its code but carrying a site's column (scale), and a
    GeoJSON feature drawing a boundary (a site's) for a shop: problems of those rows, reported
    with their line or feature before anything is written (a dry run too), not an error half
    way through writing."""
    shop = world.targets["shop1"]
    path = tmp_path / "fix.csv"
    path.write_text(f"code,scale\n{shop.code},large\n", encoding="utf-8")
    with pytest.raises(ImportError_) as refused:
        import_targets(Actor.for_system("import"), path)
    assert refused.value.problems == ["line 2: scale: not a field of a shop"]
    feature = {
        "type": "Feature",
        "geometry": square(121.47, 31.37, 0.001),
        "properties": {"code": shop.code, "name": "老王面馆"},
    }
    geojson = tmp_path / "fix.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(ImportError_) as refused:
        import_targets(Actor.for_system("import"), geojson)
    assert refused.value.problems == ["feature 0: boundary: not a field of a shop"]
    db.session.rollback()
    assert db.session.get(Target, shop.id).version == 1


def test_import_reports_a_kind_that_contradicts_the_stored_target(ctx, world, tmp_path):
    """A row naming a shop by its code but saying it is a site is about another target than its
    author thinks (a mistyped code, or kind): reported, not silently taken as the shop's."""
    shop = world.targets["shop1"]
    path = tmp_path / "fix.csv"
    path.write_text(f"kind,code,name\nsite,{shop.code},新名字\n", encoding="utf-8")
    with pytest.raises(ImportError_) as refused:
        import_targets(Actor.for_system("import"), path)
    assert refused.value.problems == [f"line 2: kind: {shop.code} is a shop, not 'site'"]
    db.session.rollback()
    path.write_text(f"kind,code,name\nshop,{shop.code},新名字\n", encoding="utf-8")
    assert import_targets(Actor.for_system("import"), path).updated == 1
    assert db.session.get(Target, shop.id).name == "新名字"


def test_an_import_moving_a_target_takes_its_open_conflicts_along(app, login, world, tmp_path):
    """A target moved by an import is the new squadron's like one moved by PATCH: its open
    conflict waits in that squadron's queue, for its leader to settle."""
    from tests.sync_helpers import FakeDevice

    first, second = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    shop = world.targets["shop1"]
    first.push_ok(first.change("target", shop.id, {"name": "老王面馆(总店)"}, base_version=1))
    [result] = second.push_ok(
        second.change("target", shop.id, {"name": "王记面馆"}, base_version=1)
    )
    assert result["status"] == "conflict", result
    path = tmp_path / "moves.csv"
    path.write_text(f"code,squadron\n{shop.code},{world.squadrons[1].id}\n", encoding="utf-8")
    with app.app_context():
        assert import_targets(Actor.for_system("import"), path).updated == 1
        db.session.commit()

    def queue(username):
        found = login(username).get(f"/api/v1/conflicts?record_id={shop.id}").get_json()
        return [entry["id"] for entry in found["items"]]

    assert (queue("leader1"), queue("leader2")) == ([], [result["conflicts"][0]["conflict_id"]])


IMPORT_HEADER = "kind,name,address,squadron,lon,lat,business_type,uscc,scale,phase,permit_no\n"
SHOP_AND_SITE = (
    IMPORT_HEADER
    + f"shop,阿英生煎,宝山区淞滨路12号,吴淞,121.47,31.37,catering,{VALID_USCC},,,\n"
    + "site,淞兴路道路改建工程,宝山区淞兴路,吴淞,121.46,31.36,,,medium,earthwork,3101132025000101\n"
)


def import_text(tmp_path, text: str):
    path = tmp_path / "targets.csv"
    path.write_text(text, encoding="utf-8")
    report = import_targets(Actor.for_system("import"), path)
    db.session.commit()  # as the command does: the audit entries are written at commit
    return report


def target_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Target))


def test_importing_the_same_file_again_adds_and_changes_nothing(ctx, world, tmp_path):
    """Shops are known again by their uscc (统一社会信用代码), sites by their permit number:
    the second import finds both unchanged, writes no new version and no audit entry."""
    first = import_text(tmp_path, SHOP_AND_SITE)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    count = target_count()
    entries = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    again = import_text(tmp_path, SHOP_AND_SITE)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert target_count() == count
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == entries
    assert again.created_without_key == first.created_without_key == 0


def test_a_row_with_a_stored_uscc_or_permit_number_updates_that_target(app, ctx, world, tmp_path):
    """A corrected address for 老王面馆 (by its uscc, the typed one in lower case with a space)
    and a new phase for the 吴淞 site (by its permit number): updated in place, audited."""
    shop, site = world.targets["shop1"], world.targets["site1"]
    report = import_text(
        tmp_path,
        IMPORT_HEADER
        + "shop,老王面馆,淞滨路102号,吴淞,121.47,31.37,catering,91310113ma1gl0a116 ,,,\n"
        + "site,宝山区吴淞地区住宅项目,,吴淞,121.46,31.36,,,large,structure,3101132024001\n",
    )
    assert (report.created, report.updated, report.unchanged) == (0, 2, 0)
    assert db.session.get(Target, shop.id).address == "淞滨路102号"
    assert db.session.get(Target, site.id).phase.value == "structure"
    updates = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "target.update")
    ).all()
    assert {(e.record_id, json.dumps(e.after, ensure_ascii=False)) for e in updates} == {
        (str(shop.id), '{"address": "淞滨路102号"}'),
        (str(site.id), '{"phase": "structure"}'),
    }


def test_outlets_sharing_a_uscc_are_told_apart_by_name(ctx, world, tmp_path):
    """A chain's outlets may carry their company's uscc: each row goes to the outlet of its
    name; a row that names none of several outlets is refused with a way out (the code)."""
    chain = (
        IMPORT_HEADER
        + f"shop,全家(淞滨路店),淞滨路1号,吴淞,121.47,31.37,retail,{VALID_USCC},,,\n"
        + f"shop,全家(同济路店),同济路1号,吴淞,121.48,31.38,retail,{VALID_USCC},,,\n"
    )
    assert import_text(tmp_path, chain).created == 2
    again = import_text(tmp_path, chain.replace("淞滨路1号", "淞滨路3号"))
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    renamed = chain.replace("全家(同济路店)", "全家(同济支路店)")
    with pytest.raises(ImportError_) as refused:
        import_text(tmp_path, renamed)
    assert refused.value.problems == [
        "line 3: uscc: 2 targets have this uscc and none this name;"
        " add a code column to say which one the row updates"
    ]


def test_two_rows_for_one_stored_target_are_refused(ctx, world, tmp_path):
    row = "shop,老王面馆,淞滨路100号,吴淞,121.47,31.37,catering,91310113MA1GL0A116,,,\n"
    with pytest.raises(ImportError_) as refused:
        import_text(tmp_path, IMPORT_HEADER + row + row)
    assert refused.value.problems == ["line 3: uscc: the same target as line 2 (a row per target)"]


def test_rows_nothing_can_know_again_are_counted_as_such(ctx, world, tmp_path):
    """No code, uscc or permit number: the command warns that importing again adds them again."""
    report = import_text(
        tmp_path,
        "kind,name,address,squadron,lon,lat,business_type\n"
        "shop,小杨水果,宝山区淞滨路16号,吴淞,121.49,31.40,fresh_produce\n",
    )
    assert (report.created, report.created_without_key) == (1, 1)


def test_a_case_opened_after_its_shop_moved_is_in_the_shops_file_for_the_new_leader(
    app, login, world
):
    """officer1 (吴淞) submits an inspection of 老王面馆 that opens a case (立案). Before
    leader1 approves it, an admin moves the shop to 张庙. The approval opens the case with the
    squadron that answers for the shop now, 张庙, whose leader finds it in the shop's file; it
    was opened in 吴淞 (the inspection's squadron), after the move had taken the shop's open
    cases along, and so in no file 张庙 reads."""
    from fieldapp.inspections.models import Case
    from tests.review_helpers import FAILED_S03, review_ok

    opened = push_inspection(
        world, FakeDevice(login("officer1")), answers=FAILED_S03, outcome="case_opened"
    )
    move_target(login("admin"), world.targets["shop1"].id, world.squadrons[1].id)
    review_ok(login("leader1"), opened, "approve")
    with app.app_context():
        case = db.session.scalar(sa.select(Case).where(Case.inspection_id == uuid.UUID(opened)))
        case_id, squadron_id = str(case.id), case.squadron_id
    shop_file = login("leader2").get(f"/api/v1/targets/{world.targets['shop1'].id}").get_json()
    assert case_id in [c["id"] for c in shop_file["cases"]], (squadron_id, shop_file["cases"])
