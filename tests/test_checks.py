"""Automatic case-file checks: every flag raised where it should be and not where it should
not, with a detail a supervisor can read; and the bulk function the monthly report uses."""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from fieldapp.checks import operations as checks
from fieldapp.db import db, utcnow
from fieldapp.inspections.models import Inspection
from fieldapp.org import operations as org_ops
from fieldapp.org.models import JurisdictionVersion
from fieldapp.targets import operations as target_ops
from fieldapp.targets.models import TargetKind
from tests.conftest import SYSTEM, assert_error, etag_of, move_target, rectangle, square
from tests.evidence_helpers import make_image, photo_metadata, put_photo
from tests.review_helpers import review_ok
from tests.sync_helpers import FakeDevice, new_inspection

SHANGHAI = timedelta(hours=8)


@pytest.fixture
def device(login):
    return FakeDevice(login("officer1"), clock_ms=int(time.time() * 1000) - 3_600_000)


@pytest.fixture
def far_shop(app, world):
    """A shop in squadron 1's north-east corner, about 3.6 km from 老王面馆."""
    with app.app_context():
        target = target_ops.create_target(
            SYSTEM,
            {
                "kind": TargetKind.shop,
                "name": "东方便利店",
                "address": "泰和路900号",
                "squadron_id": world.squadrons[0].id,
                "location": {"lon": 121.495, "lat": 31.395},
                "business_type": "retail",
            },
        )
        db.session.commit()
        world.targets["far"] = target
        target_id = target.id
    return target_id


def recent(hours_ago: float, minutes: int = 20) -> dict:
    """started_at / ended_at of an inspection that happened ``hours_ago``."""
    start = utcnow().replace(microsecond=0) - timedelta(hours=hours_ago)
    return {
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(minutes=minutes)).isoformat(),
    }


def push_inspection(world, device, *, officers=("officer1", "officer2"), hours_ago=1.0, **fields):
    inspection_id = fields.pop("id", None) or uuid.uuid4()
    target = fields.pop("target", "shop1")
    body = new_inspection(
        world, list(officers), status="submitted", target=target, **recent(hours_ago)
    )
    body.update(fields)
    [result] = device.push_ok(device.change("inspection", inspection_id, body))
    assert result["status"] == "applied", result
    return inspection_id


def flags_of(api, inspection_id) -> dict[str, str]:
    response = api.get(f"/api/v1/inspections/{inspection_id}/checks")
    assert response.status_code == 200, response.get_json()
    return {entry["flag"]: entry["detail"] for entry in response.get_json()}


def local_exif_time(moment: datetime) -> str:
    return (moment.astimezone(UTC) + SHANGHAI).strftime("%Y:%m:%d %H:%M:%S")


@contextlib.contextmanager
def server_clock_in_utc():
    """The server process's own clock zone is UTC (as on most hosts), not Shanghai's."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_a_clean_inspection_raises_no_flag(world, device):
    taken = utcnow() - timedelta(minutes=50)
    data = make_image(gps=(121.4702, 31.3701), taken=local_exif_time(taken))
    inspection_id = push_inspection(world, device)
    photo_id = uuid.uuid4()
    device.push_ok(device.change("photo", photo_id, photo_metadata(inspection_id, data)))
    device.push_ok(
        device.change("inspection", inspection_id, {"photo_ids": [str(photo_id)]}, base_version=1)
    )
    assert put_photo(device.api, photo_id, data).status_code == 201
    assert flags_of(device.api, inspection_id) == {}


def test_single_officer(world, device):
    alone = push_inspection(world, device, officers=("officer1",))
    assert "only 1 officer recorded (officer1)" in flags_of(device.api, alone)["single_officer"]
    assert "single_officer" not in flags_of(device.api, push_inspection(world, device))


def test_location_far_from_the_shop_in_metres_at_shanghai_latitude(world, device):
    # 0.0045° of longitude east: 428.7 m at 31.37°N (the naive 111 km/° would say 501 m)
    far = push_inspection(
        world, device, location={"lon": 121.4745, "lat": 31.37, "accuracy_m": 5.0, "crs": "wgs84"}
    )
    detail = flags_of(device.api, far)["location_far_from_target"]
    assert detail.startswith("inspection point 428 m from the shop (老王面馆)")
    near = push_inspection(
        world, device, location={"lon": 121.4712, "lat": 31.37, "accuracy_m": 5.0, "crs": "wgs84"}
    )
    assert "location_far_from_target" not in flags_of(device.api, near)


def test_location_of_a_site_counts_from_its_boundary(world, device):
    inside = push_inspection(
        world,
        device,
        target="site1",
        location={"lon": 121.4640, "lat": 31.3640, "accuracy_m": 5.0, "crs": "wgs84"},
    )
    assert "location_far_from_target" not in flags_of(device.api, inside)
    outside = push_inspection(
        world,
        device,
        target="site1",
        location={"lon": 121.468, "lat": 31.36, "accuracy_m": 5.0, "crs": "wgs84"},
    )
    detail = flags_of(device.api, outside)["location_far_from_target"]
    assert "285 m outside the site's boundary" in detail


def test_a_gcj02_point_is_judged_after_conversion(world, device):
    from fieldapp.geo import wgs84_to_gcj02

    lon, lat = wgs84_to_gcj02(121.4701, 31.3702)  # ~500 m off if taken as WGS-84
    inspection_id = push_inspection(
        world, device, location={"lon": lon, "lat": lat, "accuracy_m": 5.0, "crs": "gcj02"}
    )
    assert "location_far_from_target" not in flags_of(device.api, inspection_id)


def test_outside_jurisdiction_with_a_tolerance_at_the_edge(world, device):
    # squadron 1's jurisdiction starts at 121.45°E
    outside = push_inspection(
        world, device, location={"lon": 121.44, "lat": 31.37, "accuracy_m": 5.0, "crs": "wgs84"}
    )
    flags = flags_of(device.api, outside)
    assert flags["outside_jurisdiction"] == (
        "inspection point 951 m outside the jurisdiction of 吴淞中队"
    )
    at_edge = push_inspection(
        world, device, location={"lon": 121.4498, "lat": 31.37, "accuracy_m": 5.0, "crs": "wgs84"}
    )
    assert "outside_jurisdiction" not in flags_of(device.api, at_edge)


# -- the jurisdiction of the inspection's day ----------------------------------------------------

#: 475 m west of 吴淞中队's western border (121.45°E), where no squadron's ground is.
WEST_OF_WUSONG = {"lon": 121.445, "lat": 31.37, "accuracy_m": 5.0, "crs": "wgs84"}

#: 吴淞中队's ground grown west to 121.44°E, taking in WEST_OF_WUSONG.
WUSONG_GROWN_WEST = rectangle(121.44, 31.35, 121.50, 31.40)


@pytest.fixture
def drawn_long_ago(app, world):
    """The world's squadrons as drawn a month ago (made with the test, they were drawn now)."""
    with app.app_context():
        db.session.execute(
            sa.update(JurisdictionVersion).values(valid_from=utcnow() - timedelta(days=30))
        )
        db.session.commit()


def redraw(monkeypatch, admin, squadron_id: int, jurisdiction: dict, *, hours_ago: float):
    """Redraw a squadron's jurisdiction as the admin did ``hours_ago``."""
    moment = utcnow() - timedelta(hours=hours_ago)
    path = f"/api/v1/squadrons/{squadron_id}"
    with monkeypatch.context() as patched:
        patched.setattr(org_ops, "utcnow", lambda: moment)
        response = admin.patch(
            path, json={"jurisdiction": jurisdiction}, headers={"If-Match": etag_of(admin, path)}
        )
    assert response.status_code == 200, response.get_json()


@pytest.mark.usefixtures("drawn_long_ago")
def test_an_inspection_is_judged_by_the_jurisdiction_of_its_day(world, device, login, monkeypatch):
    """吴淞中队 grew west 5 hours ago and went back 3 hours ago: the same point is outside its
    ground for the inspections before and after, inside for the one between. A boundary moved
    since does not change what a case file said of the inspection (nor a past month's report)."""
    before = push_inspection(world, device, hours_ago=6, location=WEST_OF_WUSONG)
    redraw(monkeypatch, login("admin"), world.squadrons[0].id, WUSONG_GROWN_WEST, hours_ago=5)
    between = push_inspection(world, device, hours_ago=4, location=WEST_OF_WUSONG)
    redraw(monkeypatch, login("admin"), world.squadrons[0].id, square(121.45, 31.35), hours_ago=3)
    after = push_inspection(world, device, hours_ago=2, location=WEST_OF_WUSONG)
    expected = "inspection point 476 m outside the jurisdiction of 吴淞中队"
    assert flags_of(device.api, before)["outside_jurisdiction"] == expected
    assert "outside_jurisdiction" not in flags_of(device.api, between)
    assert flags_of(device.api, after)["outside_jurisdiction"] == expected


@pytest.mark.usefixtures("drawn_long_ago")
def test_bulk_checks_read_the_drawings_of_any_number_of_days_in_the_same_queries(
    app, world, device, login, monkeypatch
):
    """The monthly report checks a month of inspections at once: each is judged by its own
    day's drawing, and the queries do not grow with the inspections or the drawings."""
    first = push_inspection(world, device, hours_ago=6, location=WEST_OF_WUSONG)
    redraw(monkeypatch, login("admin"), world.squadrons[0].id, WUSONG_GROWN_WEST, hours_ago=5)
    second = push_inspection(world, device, hours_ago=4, location=WEST_OF_WUSONG)
    redraw(monkeypatch, login("admin"), world.squadrons[0].id, square(121.45, 31.35), hours_ago=3)
    third = push_inspection(world, device, hours_ago=2, location=WEST_OF_WUSONG)
    elsewhere = push_inspection(
        world,
        FakeDevice(login("officer3")),
        officers=("officer3",),
        target="shop2",
        location={"lon": 121.42, "lat": 31.32, "accuracy_m": 5.0, "crs": "wgs84"},
    )
    with app.app_context():
        settings = checks.CheckSettings.from_config(app.config)
        statements = []
        counting = lambda *args: statements.append(1)  # noqa: E731
        sa.event.listen(db.engine, "before_cursor_execute", counting)
        try:
            [alone] = checks.check_inspections([first], settings, utcnow()).values()
            one = len(statements)
            statements.clear()
            found = checks.check_inspections([first, second, third, elsewhere], settings, utcnow())
            assert len(statements) <= one
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", counting)
    outside = {i for i, flags in found.items() if "outside_jurisdiction" in {f.flag for f in flags}}
    assert outside == {first, third}
    assert "outside_jurisdiction" in {f.flag for f in alone}


def pass_shop1_to_songnan(admin, world) -> int:
    """Add 淞南中队 east of 吴淞中队 and move their border west to 121.465°E, so 老王面馆
    (121.47°E) follows the ground to 淞南 (its id)."""
    songnan = admin.post(
        "/api/v1/squadrons",
        json={
            "name": "淞南中队",
            "district_id": world.district.id,
            "jurisdiction": square(121.50, 31.35),
        },
    ).get_json()
    path = f"/api/v1/districts/{world.district.id}/jurisdictions"
    drawings = [
        {"id": world.squadrons[0].id, "jurisdiction": rectangle(121.45, 31.35, 121.465, 31.40)},
        {"id": songnan["id"], "jurisdiction": rectangle(121.465, 31.35, 121.55, 31.40)},
    ]
    response = admin.put(
        path, json={"squadrons": drawings}, headers={"If-Match": admin.get(path).headers["ETag"]}
    )
    assert response.get_json()["targets_moved"] == 1
    return songnan["id"]


def test_an_inspection_made_before_its_shop_passed_to_a_neighbour_keeps_a_clean_file(
    world, device, login
):
    """The border of 吴淞中队 and a new 淞南中队 moves west, and 老王面馆 passes to 淞南: the
    inspection 吴淞's officers made there before is still judged by 吴淞's ground of its day."""
    inspection_id = push_inspection(world, device)
    pass_shop1_to_songnan(login("admin"), world)
    assert "outside_jurisdiction" not in flags_of(device.api, inspection_id)
    assert "outside_jurisdiction" not in flags_of(login("supervisor"), inspection_id)


def test_an_inspection_begun_offline_before_its_shop_passed_to_a_neighbour_is_judged_by_the_ground_it_was_on(  # noqa: E501
    app, world, device, login
):
    """officer1 (吴淞) inspects 老王面馆 offline on 吴淞's ground; before the pad syncs, the
    border moves and the shop passes to 淞南. The push files the inspection in 淞南 (begun in
    good faith before the move), whose ground of that day did not cover the shop: it is judged
    by the ground of the squadron the shop was in when the inspection began (吴淞's), not
    flagged outside the ground of a squadron it never stood on."""
    device.pull_all()
    started = utcnow()
    time.sleep(0.05)
    songnan = pass_shop1_to_songnan(login("admin"), world)
    begun = {"started_at": started.isoformat(), "ended_at": utcnow().isoformat()}
    inspection_id = push_inspection(world, device, **begun)
    with app.app_context():
        assert db.session.get(Inspection, inspection_id).squadron_id == songnan
    assert "outside_jurisdiction" not in flags_of(login("supervisor"), inspection_id)
    # a point off 吴淞's ground of that day is still flagged, against 吴淞's ground
    away = push_inspection(world, device, location=WEST_OF_WUSONG, **begun)
    assert flags_of(login("supervisor"), away)["outside_jurisdiction"] == (
        "inspection point 476 m outside the jurisdiction of 吴淞中队"
    )


def test_a_shop_that_left_its_squadron_came_back_and_left_again_keeps_its_first_inspection_clean(
    world, device, login
):
    """Only the latest move out of each squadron is kept (the scope exits): 老王面馆 moves to
    张庙, back to 吴淞, and to 张庙 again; the time before its first move reads as spent in
    张庙. The inspection 吴淞's officers filed before all that, on 吴淞's ground, is still
    clean: the squadron it is filed in is the ground of its day too."""
    inspection_id = push_inspection(world, device)
    admin = login("admin")
    shop = world.targets["shop1"].id
    for squadron in (world.squadrons[1], world.squadrons[0], world.squadrons[1]):
        move_target(admin, shop, squadron.id)
    assert "outside_jurisdiction" not in flags_of(login("supervisor"), inspection_id)


def test_low_accuracy(world, device):
    rough = push_inspection(
        world, device, location={"lon": 121.4701, "lat": 31.3702, "accuracy_m": 120.0}
    )
    assert flags_of(device.api, rough)["low_accuracy"].startswith("GPS accuracy 120 m")
    assert "low_accuracy" not in flags_of(device.api, push_inspection(world, device))


def test_photo_location_and_time_come_from_the_camera(world, device):
    inspection_id = push_inspection(world, device)
    started = utcnow() - timedelta(hours=1)
    far_and_early = make_image(
        gps=(121.4805, 31.3702), taken=local_exif_time(started - timedelta(hours=2))
    )
    near_and_on_time = make_image(
        gps=(121.4702, 31.3702), taken=local_exif_time(started + timedelta(minutes=5))
    )
    ids = []
    for data in (far_and_early, near_and_on_time):
        photo_id = uuid.uuid4()
        ids.append(photo_id)
        device.push_ok(device.change("photo", photo_id, photo_metadata(inspection_id, data)))
        assert put_photo(device.api, photo_id, data).status_code == 201
    flags = flags_of(device.api, inspection_id)
    assert flags["photo_location_mismatch"].startswith(
        f"photo {str(ids[0])[:8]} taken 989 m from the inspection point (camera GPS)"
    )
    assert f"photo {str(ids[0])[:8]} taken at" in flags["photo_time_outside_inspection"]


def test_a_photo_taken_a_year_earlier_at_the_same_hour_says_its_year(world, device):
    """A photo from last year at the same clock time is rightly flagged; the detail names its
    date with the year, where before it read "taken at 12-05 12:45, outside the inspection
    (12-05 12:40–13:00)", a sentence that contradicts itself."""
    inspection_id = push_inspection(world, device)
    started = utcnow() - timedelta(hours=1)
    a_year_before = started + timedelta(minutes=5) - timedelta(days=365)
    photo = photo_metadata(inspection_id, make_image(), taken_at=a_year_before.isoformat())
    [result] = device.push_ok(device.change("photo", uuid.uuid4(), photo))
    assert result["status"] == "applied", result
    detail = flags_of(device.api, inspection_id)["photo_time_outside_inspection"]
    local = a_year_before.astimezone(UTC).replace(tzinfo=None) + SHANGHAI
    assert f"taken at {local:%Y-%m-%d %H:%M}, outside" in detail, detail
    assert f"inspection ({started.astimezone(UTC) + SHANGHAI:%Y-}" in detail, detail


@pytest.mark.parametrize("blank", ["\x00" * 6, " " * 6], ids=["nuls", "spaces"])
def test_a_camera_that_wrote_a_blank_offset_is_read_in_local_time(world, device, blank):
    """A camera that does not know its zone pads OffsetTimeOriginal with NULs or blanks. Its
    clock shows Shanghai time, on a server whose own zone is UTC too: the photo taken five
    minutes into the inspection is in it, not eight hours off."""
    from PIL import ExifTags, Image

    with server_clock_in_utc():
        started = utcnow().replace(microsecond=0) - timedelta(hours=1)
        inspection_id = push_inspection(world, device)
        exif = Image.Exif()
        detail = exif.get_ifd(ExifTags.IFD.Exif)
        detail[ExifTags.Base.DateTimeOriginal] = local_exif_time(started + timedelta(minutes=5))
        detail[ExifTags.Base.OffsetTimeOriginal] = blank
        out = io.BytesIO()
        Image.linear_gradient("L").resize((320, 240)).convert("RGB").save(out, "JPEG", exif=exif)
        data = out.getvalue()
        photo_id = uuid.uuid4()
        device.push_ok(device.change("photo", photo_id, photo_metadata(inspection_id, data)))
        response = put_photo(device.api, photo_id, data)
        assert response.status_code == 201, response.get_json()
        expected = (started + timedelta(minutes=5)).astimezone(UTC).isoformat()
        assert response.get_json()["exif_taken_at"] == expected
        assert "photo_time_outside_inspection" not in flags_of(device.api, inspection_id)


def test_photo_location_falls_back_to_what_the_device_reported(world, device):
    inspection_id = push_inspection(world, device)
    data = make_image()  # no EXIF at all
    device.push_ok(
        device.change(
            "photo",
            uuid.uuid4(),
            photo_metadata(
                inspection_id,
                data,
                location={"lon": 121.4701, "lat": 31.3802, "accuracy_m": 5.0, "crs": "wgs84"},
                taken_at=(utcnow() - timedelta(minutes=55)).isoformat(),
            ),
        )
    )
    flags = flags_of(device.api, inspection_id)
    assert "(device)" in flags["photo_location_mismatch"]
    assert "photo_time_outside_inspection" not in flags


def test_missing_photos_for_a_failed_item(world, device):
    photo = str(uuid.uuid4())
    failed = push_inspection(
        world,
        device,
        answers={
            "S01": {"result": "pass", "note": "", "photo_ids": []},
            "S02": {"result": "fail", "note": "占道", "photo_ids": []},
            "S03": {"result": "fail", "note": "油烟", "photo_ids": [photo]},
        },
    )
    flags = flags_of(device.api, failed)
    assert flags["missing_photos"] == "item S02 failed without a photo"
    assert flags["photos_missing_upload"] == f"1 of 1 photos are not uploaded yet: {photo[:8]}"


def test_a_photo_whose_metadata_names_the_failed_item_is_its_photo(world, device):
    """The device attached the photo of the failed item through the photo's metadata
    (``item_code``) rather than the answer's photo_ids: the item has its photo. Another
    inspection's photo of that item code does not count for this one."""
    answers = {
        "S01": {"result": "pass", "note": "", "photo_ids": []},
        "S02": {"result": "fail", "note": "占道经营", "photo_ids": []},
        "S03": {"result": "fail", "note": "油烟", "photo_ids": []},
    }
    inspection_id = push_inspection(world, device, answers=answers)
    other = push_inspection(world, device)
    taken = (utcnow() - timedelta(minutes=55)).isoformat()
    for owner, code in ((inspection_id, "S02"), (other, "S03")):
        data = make_image(320 + len(code), 240)
        photo_id = uuid.uuid4()
        [result] = device.push_ok(
            device.change(
                "photo", photo_id, photo_metadata(owner, data, item_code=code, taken_at=taken)
            )
        )
        assert result["status"] == "applied", result
        assert put_photo(device.api, photo_id, data).status_code == 201
    assert (
        flags_of(device.api, inspection_id)["missing_photos"] == "item S03 failed without a photo"
    )


def test_a_photo_claimed_by_metadata_alone_is_missing_until_uploaded(world, device):
    """A photo whose metadata names the inspection belongs to its case file, named in
    photo_ids or not: while its bytes have not arrived the file lacks evidence."""
    inspection_id = push_inspection(world, device)
    data = make_image()
    photo_id = uuid.uuid4()
    [result] = device.push_ok(
        device.change(
            "photo",
            photo_id,
            photo_metadata(
                inspection_id,
                data,
                item_code="S01",
                taken_at=(utcnow() - timedelta(minutes=55)).isoformat(),
            ),
        )
    )
    assert result["status"] == "applied", result
    assert flags_of(device.api, inspection_id)["photos_missing_upload"] == (
        f"1 of 1 photos are not uploaded yet: {str(photo_id)[:8]}"
    )
    assert put_photo(device.api, photo_id, data).status_code == 201
    assert "photos_missing_upload" not in flags_of(device.api, inspection_id)


def test_photos_missing_upload_clears_once_uploaded(world, device):
    data = make_image()
    photo_id = uuid.uuid4()
    inspection_id = push_inspection(world, device, photo_ids=[str(photo_id)])
    device.push_ok(device.change("photo", photo_id, photo_metadata(inspection_id, data)))
    assert "photos_missing_upload" in flags_of(device.api, inspection_id)
    assert put_photo(device.api, photo_id, data).status_code == 201
    assert "photos_missing_upload" not in flags_of(device.api, inspection_id)


def test_camera_gps_of_a_photo_named_before_its_metadata_is_checked(world, device):
    """The inspection names the photo and its bytes arrived, its metadata not yet: the checks
    count it as uploaded, so they judge what its camera recorded too (1 km away here)."""
    photo_id = uuid.uuid4()
    started = utcnow() - timedelta(hours=1)
    taken = local_exif_time(started + timedelta(minutes=5))
    data = make_image(gps=(121.4805, 31.3702), taken=taken)  # ~1 km east of the shop
    answers = {"S02": {"result": "fail", "note": "占道", "photo_ids": [str(photo_id)]}}
    inspection_id = push_inspection(world, device, answers=answers)
    assert put_photo(device.api, photo_id, data).status_code == 201
    flags = flags_of(device.api, inspection_id)
    assert "photos_missing_upload" not in flags and "missing_photos" not in flags
    assert flags["photo_location_mismatch"].startswith(
        f"photo {str(photo_id)[:8]} taken 989 m from the inspection point (camera GPS)"
    )
    assert "photo_time_outside_inspection" not in flags


def test_bulk_checks_agree_with_one_at_a_time_on_a_photo_two_inspections_name(app, world, device):
    """The monthly report checks a month at once; each inspection's flags must be those its own
    page shows. A follow-up names the first inspection's uploaded photo (its metadata belongs
    to the first): uploaded for both, alone or together."""
    data = make_image()
    photo_id = uuid.uuid4()
    first = push_inspection(world, device, photo_ids=[str(photo_id)])
    taken = (utcnow() - timedelta(minutes=55)).isoformat()
    device.push_ok(device.change("photo", photo_id, photo_metadata(first, data, taken_at=taken)))
    named_only = uuid.uuid4()  # named by the follow-up, never uploaded
    follow_up = push_inspection(world, device, photo_ids=[str(photo_id), str(named_only)])
    assert "photos_missing_upload" in flags_of(device.api, follow_up)
    assert put_photo(device.api, photo_id, data).status_code == 201
    alone = {i: flags_of(device.api, i) for i in (first, follow_up)}
    assert alone[follow_up]["photos_missing_upload"] == (
        f"1 of 2 photos are not uploaded yet: {str(named_only)[:8]}"
    )
    assert "photos_missing_upload" not in alone[first]
    with app.app_context():
        settings = checks.CheckSettings.from_config(app.config)
        together = checks.check_inspections([first, follow_up], settings, utcnow())
    assert {i: {f.flag.value: f.detail for f in together[i]} for i in together} == alone


def test_a_photo_during_a_draft_still_under_way_is_inside_it(world, device):
    """A draft synced while the inspection is under way has no end yet: it lasts until now. A
    photo 25 minutes after the start is inside it; one stamped an hour in the future is not."""
    start = utcnow().replace(microsecond=0) - timedelta(minutes=30)
    inspection_id = uuid.uuid4()
    body = new_inspection(world, ["officer1", "officer2"], started_at=start.isoformat())
    device.push_ok(device.change("inspection", inspection_id, body))
    during = photo_metadata(
        inspection_id, make_image(), taken_at=(start + timedelta(minutes=25)).isoformat()
    )
    [result] = device.push_ok(device.change("photo", uuid.uuid4(), during))
    assert result["status"] == "applied", result
    assert "photo_time_outside_inspection" not in flags_of(device.api, inspection_id)
    future_id = uuid.uuid4()
    future = photo_metadata(
        inspection_id,
        make_image(320, 240),
        taken_at=(utcnow() + timedelta(hours=1)).isoformat(),
    )
    device.push_ok(device.change("photo", future_id, future))
    detail = flags_of(device.api, inspection_id)["photo_time_outside_inspection"]
    assert detail.startswith(f"photo {str(future_id)[:8]} taken at")
    assert "now, not ended yet" in detail


def backdate(app, inspection_id, days: int, submitted_after: timedelta) -> None:
    """The inspection happened ``days`` ago and was first submitted ``submitted_after`` its end
    (as the server would hold it)."""
    with app.app_context():
        inspection = db.session.get(Inspection, inspection_id)
        inspection.started_at -= timedelta(days=days)
        inspection.ended_at -= timedelta(days=days)
        inspection.submitted_at = inspection.ended_at + submitted_after
        inspection.first_submitted_at = inspection.submitted_at
        db.session.commit()


def resubmit_after_return(device, leader, inspection_id) -> dict:
    """The leader returns the inspection today; the officer resubmits it at once."""
    review_ok(leader, inspection_id, "return", "请补充照片")
    version = device.api.get(f"/api/v1/inspections/{inspection_id}").get_json()["version"]
    [result] = device.push_ok(
        device.change(
            "inspection",
            inspection_id,
            {"status": "submitted", "findings": "补充说明"},
            base_version=version,
        )
    )
    assert result["status"] in ("applied", "merged"), result
    return device.api.get(f"/api/v1/inspections/{inspection_id}").get_json()


def test_a_resubmission_after_a_return_is_not_a_late_submission(app, world, device, login):
    """Submitted an hour after the inspection ended, returned by the leader three days later
    and resubmitted at once: the officer was not late (the leader's delay is not theirs). The
    record still says when it was resubmitted, and the review queue waits from then."""
    inspection_id = push_inspection(world, device)
    backdate(app, inspection_id, days=3, submitted_after=timedelta(hours=1))
    assert "late_submission" not in flags_of(device.api, inspection_id)
    record = resubmit_after_return(device, login("leader1"), inspection_id)
    assert "late_submission" not in flags_of(device.api, inspection_id)
    resubmitted = datetime.fromisoformat(record["submitted_at"])
    assert utcnow() - resubmitted < timedelta(days=1)


def test_a_late_first_submission_stays_late_after_a_resubmission(app, world, device, login):
    inspection_id = push_inspection(world, device)
    backdate(app, inspection_id, days=5, submitted_after=timedelta(days=2))
    resubmit_after_return(device, login("leader1"), inspection_id)
    assert flags_of(device.api, inspection_id)["late_submission"].startswith(
        "first submitted 2 days after the inspection ended"
    )


def test_late_submission_and_a_draft_left_unsubmitted(world, device):
    late = push_inspection(world, device, hours_ago=72)
    assert flags_of(device.api, late)["late_submission"].startswith("submitted 3 days after")
    draft_id = uuid.uuid4()
    body = new_inspection(world, ["officer1", "officer2"], status="draft", **recent(30))
    device.push_ok(device.change("inspection", draft_id, body))
    assert "still not submitted" in flags_of(device.api, draft_id)["late_submission"]
    assert "late_submission" not in flags_of(device.api, push_inspection(world, device))


def test_rectification_overdue_until_a_follow_up(world, device):
    today = (utcnow() + SHANGHAI).date()
    ordered = {"outcome": "rectification_ordered", "legal_basis": "《上海市市容环境卫生管理条例》"}
    overdue = push_inspection(  # ordered five days ago, with a deadline two days later
        world,
        device,
        hours_ago=24 * 5,
        rectification_deadline=(today - timedelta(days=3)).isoformat(),
        **ordered,
    )
    assert flags_of(device.api, overdue)["rectification_overdue"].startswith(
        f"rectification deadline {(today - timedelta(days=3)).isoformat()} passed 3 days ago"
    )
    in_time = push_inspection(
        world, device, rectification_deadline=(today + timedelta(days=3)).isoformat(), **ordered
    )
    assert "rectification_overdue" not in flags_of(device.api, in_time)
    push_inspection(world, device, follow_up_of=str(overdue), hours_ago=0.5)
    assert "rectification_overdue" not in flags_of(device.api, overdue)


def test_checked_as_at_an_earlier_moment_later_follow_ups_and_photos_do_not_count(
    app, world, device
):
    """The monthly report judges a past month's inspections as at the month's end. What the
    server received after that moment (the follow-up 复查, a photo's metadata naming the
    failed item, the photo's bytes) does not clear that month's flags; asked as at now, the
    same inspection's page counts all of it."""
    today = (utcnow() + SHANGHAI).date()
    answers = {"S02": {"result": "fail", "note": "占道", "photo_ids": []}}
    ordered = push_inspection(
        world,
        device,
        hours_ago=24 * 5,
        answers=answers,
        outcome="rectification_ordered",
        legal_basis="《上海市市容环境卫生管理条例》",
        rectification_deadline=(today - timedelta(days=3)).isoformat(),
    )
    month_end = utcnow()
    data, photo_id = make_image(), uuid.uuid4()
    taken = (utcnow() - timedelta(hours=24 * 5 - 0.1)).isoformat()
    device.push_ok(
        device.change(
            "photo", photo_id, photo_metadata(ordered, data, item_code="S02", taken_at=taken)
        )
    )
    push_inspection(world, device, follow_up_of=str(ordered), hours_ago=0.5)
    before_upload = utcnow()
    assert put_photo(device.api, photo_id, data).status_code == 201
    # Submitted five days after it ended: late, whenever it is judged.
    assert set(flags_of(device.api, ordered)) == {"late_submission"}
    with app.app_context():
        settings = checks.CheckSettings.from_config(app.config)

        def flagged(moment) -> set[str]:
            [flags] = checks.check_inspections([ordered], settings, moment).values()
            return {flag.flag.value for flag in flags}

        assert flagged(month_end) == {"late_submission", "missing_photos", "rectification_overdue"}
        assert flagged(before_upload) == {"late_submission", "photos_missing_upload"}
        assert flagged(utcnow()) == {"late_submission"}


def test_impossible_travel_between_an_officers_inspections(world, device, far_shop):
    push_inspection(world, device, hours_ago=3)  # 老王面馆, ended 2h40m ago
    there = {"lon": 121.495, "lat": 31.395, "accuracy_m": 5.0, "crs": "wgs84"}
    start = utcnow().replace(microsecond=0) - timedelta(hours=3) + timedelta(minutes=21)
    quick = push_inspection(
        world,
        device,
        target_id=str(far_shop),
        location=there,
        started_at=start.isoformat(),
        ended_at=(start + timedelta(minutes=10)).isoformat(),
    )
    detail = flags_of(device.api, quick)["impossible_travel"]
    assert detail.startswith("officer1 was at 老王面馆 until") and "3.6 km away" in detail
    assert re.search(r"started here 1 min later, 2[0-9]{2} km/h; the limit is 80 km/h", detail)
    later = push_inspection(world, device, target_id=str(far_shop), location=there, hours_ago=1)
    assert "impossible_travel" not in flags_of(device.api, later)


def test_impossible_travel_from_another_squadron_names_it_only_to_those_who_may_read_it(
    world, device, login
):
    """officer1 helped officer3 at 张庙's 鑫隆五金店, then inspected 吴淞's 老王面馆 two minutes
    later. leader1, who may not read the 张庙 inspection (404), still sees the flag with its
    times and distance, but neither that shop's name nor that inspection's id (API.md: never
    another squadron's data). officer1, who co-signed it, and the district's supervisor see
    both."""
    helper = FakeDevice(login("officer3"), clock_ms=int(time.time() * 1000) - 3_600_000)
    start = utcnow().replace(microsecond=0) - timedelta(hours=3)
    elsewhere = push_inspection(
        world,
        helper,
        officers=("officer3", "officer1"),
        target="shop2",
        started_at=start.isoformat(),
        ended_at=(start + timedelta(minutes=20)).isoformat(),
        location={"lon": 121.42, "lat": 31.32, "accuracy_m": 5.0, "crs": "wgs84"},
    )
    later = start + timedelta(minutes=22)
    here = push_inspection(
        world,
        device,
        started_at=later.isoformat(),
        ended_at=(later + timedelta(minutes=20)).isoformat(),
    )

    def travel(api) -> dict:
        response = api.get(f"/api/v1/inspections/{here}/checks")
        assert response.status_code == 200, response.get_json()
        [flag] = [f for f in response.get_json() if f["flag"] == "impossible_travel"]
        return flag

    leader = login("leader1")
    assert_error(leader.get(f"/api/v1/inspections/{elsewhere}"), 404, "not_found")
    hidden = travel(leader)
    assert hidden["detail"].startswith("officer1 was at an inspection in another squadron until")
    assert "km away, and started here 2 min later" in hidden["detail"]
    assert hidden["facts"]["previous_inspection_id"] is None
    assert hidden["facts"]["distance_m"] > 1000
    shop = world.targets["shop2"].name
    assert shop not in str(hidden) and str(elsewhere) not in str(hidden)
    for reader in (device.api, login("supervisor")):
        named = travel(reader)
        assert named["detail"].startswith(f"officer1 was at {shop} until"), named
        assert named["facts"]["previous_inspection_id"] == str(elsewhere)


def test_clock_skew_set_by_sync_is_reported(world, login):
    ahead = FakeDevice(login("officer1"), clock_ms=int(time.time() * 1000) + 3_600_000)
    skewed = push_inspection(world, ahead)
    assert "more than 60 s ahead" in flags_of(ahead.api, skewed)["clock_skew"]
    assert "clock_skew" not in flags_of(ahead.api, push_inspection(world, FakeDevice(ahead.api)))


def test_checks_are_scoped_like_the_inspection(world, device, login):
    inspection_id = push_inspection(world, device)
    assert flags_of(login("supervisor"), inspection_id) == {}
    assert_error(
        login("officer3").get(f"/api/v1/inspections/{inspection_id}/checks"), 404, "not_found"
    )
    assert_error(device.api.get(f"/api/v1/inspections/{uuid.uuid4()}/checks"), 404, "not_found")


def test_bulk_checks_count_flags_for_a_report(app, world, device):
    alone = push_inspection(world, device, officers=("officer1",))
    rough = push_inspection(
        world,
        device,
        officers=("officer1",),
        location={"lon": 121.4701, "lat": 31.3702, "accuracy_m": 99.0},
    )
    clean = push_inspection(world, device)
    with app.app_context():
        settings = checks.CheckSettings.from_config(app.config)
        found = checks.check_inspections([alone, rough, clean, uuid.uuid4()], settings, utcnow())
        assert set(found) == {alone, rough, clean}
        assert found[clean] == []
        assert checks.count_flags(found) == {"single_officer": 2, "low_accuracy": 1}
        ids = db.session.scalars(sa.select(Inspection.id)).all()
        assert set(checks.check_inspections(ids, settings, utcnow())) == set(ids)


def test_thresholds_come_from_configuration(app):
    from fieldapp.config import ConfigError, evidence_settings

    settings = evidence_settings({"FIELDAPP_CHECK_SHOP_DISTANCE_M": "300"})
    assert settings["CHECK_SHOP_DISTANCE_M"] == 300.0
    with pytest.raises(ConfigError, match="FIELDAPP_CHECK_MAX_SPEED_KMH"):
        evidence_settings({"FIELDAPP_CHECK_MAX_SPEED_KMH": "fast"})
    with pytest.raises(ConfigError, match="FIELDAPP_LOCAL_TIMEZONE"):
        evidence_settings({"FIELDAPP_LOCAL_TIMEZONE": "Mars/Olympus"})


def test_bytes_uploaded_before_their_metadata_count_as_uploaded(world, device):
    data = make_image()
    photo_id = uuid.uuid4()
    inspection_id = push_inspection(world, device, photo_ids=[str(photo_id)])
    assert "photos_missing_upload" in flags_of(device.api, inspection_id)
    assert put_photo(device.api, photo_id, data).status_code == 201
    assert "photos_missing_upload" not in flags_of(device.api, inspection_id)


@pytest.mark.parametrize(
    ("started", "ended"),
    [
        ("9999-12-31T20:00:00+00:00", "9999-12-31T23:59:59+00:00"),
        ("0001-01-01T00:00:00+00:00", "0001-01-01T01:00:00+00:00"),
    ],
)
def test_times_at_the_calendar_s_edges_are_checked_not_a_500(login, world, device, started, ended):
    """A device may record any time of years 1 to 9999; the checks' time windows around it
    stop at the calendar's edge instead of overflowing."""
    inspection_id = push_inspection(world, device, started_at=started, ended_at=ended)
    photo = photo_metadata(inspection_id, make_image(), item_code="S01")
    [result] = device.push_ok(device.change("photo", uuid.uuid4(), photo))
    assert result["status"] == "applied"

    flags = flags_of(login("leader1"), inspection_id)

    # The photo (taken in 2026) is far outside the inspection's time, and said so.
    assert "photo_time_outside_inspection" in flags
