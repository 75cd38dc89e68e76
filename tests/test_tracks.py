"""GPS tracks: points appended through sync, read back as simplified GeoJSON lines."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from fieldapp.db import db
from fieldapp.geo import wgs84_to_gcj02
from fieldapp.tracks.models import TrackPoint
from tests.conftest import assert_error, audit_entries
from tests.sync_helpers import FakeDevice

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def walk(start: datetime, lon: float, lat: float, count: int, *, step_s=10, step_lon=0.00005):
    """Points every ``step_s`` seconds heading east (0.00005° ≈ 4.8 m at 31.37°N)."""
    return [
        {
            "t": (start + timedelta(seconds=i * step_s)).isoformat(),
            "lon": round(lon + i * step_lon, 7),
            "lat": lat,
            "accuracy_m": 6.0,
        }
        for i in range(count)
    ]


def push_track(device: FakeDevice, officer_id, points) -> dict:
    [result] = device.push_ok(
        device.change("track", uuid.uuid4(), {"officer_id": str(officer_id), "points": points})
    )
    assert result["status"] == "applied", result
    return result


def get_track(api, officer_id, start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=3)):
    query = urlencode(
        {"officer_id": str(officer_id), "from": start.isoformat(), "to": end.isoformat()}
    )
    return api.get(f"/api/v1/tracks?{query}")


@pytest.fixture
def officer1(world, login):
    return FakeDevice(login("officer1")), world.users["officer1"].id


def test_a_straight_walk_is_one_simplified_line_with_distance_and_duration(officer1):
    device, officer_id = officer1
    push_track(device, officer_id, walk(T0, 121.47, 31.37, 61))
    response = get_track(device.api, officer_id)
    assert response.status_code == 200, response.get_json()
    track = response.get_json()
    assert track["type"] == "FeatureCollection" and track["points"] == 61
    [line] = track["features"]
    assert line["geometry"]["type"] == "LineString"
    assert line["geometry"]["coordinates"] == [[121.47, 31.37], [121.473, 31.37]]
    assert line["properties"]["points"] == 61 and line["properties"]["points_shown"] == 2
    assert line["properties"]["duration_s"] == 600
    assert line["properties"]["distance_m"] == pytest.approx(285.4, abs=0.5)
    assert track["distance_m"] == line["properties"]["distance_m"] and track["gaps"] == []


def test_silences_and_jumps_split_the_track_into_gaps(officer1):
    device, officer_id = officer1
    first = walk(T0, 121.47, 31.37, 10)
    after_pause = walk(T0 + timedelta(minutes=20), 121.4705, 31.37, 10)
    after_jump = walk(T0 + timedelta(minutes=21, seconds=40), 121.49, 31.37, 10)
    push_track(device, officer_id, first + after_pause + after_jump)
    track = get_track(device.api, officer_id).get_json()
    assert len(track["features"]) == 3
    pause, jump = track["gaps"]
    assert pause["seconds"] == pytest.approx(20 * 60 - 90)
    assert jump["distance_m"] > 1500 and jump["seconds"] == 10
    assert track["duration_s"] == 3 * 90


def test_points_in_gcj02_are_stored_as_wgs84_and_a_repeated_batch_adds_nothing(officer1):
    device, officer_id = officer1
    lon, lat = wgs84_to_gcj02(121.47, 31.37)
    points = [{"t": T0.isoformat(), "lon": lon, "lat": lat, "crs": "gcj02"}]
    push_track(device, officer_id, points)
    push_track(device, officer_id, points)
    track = get_track(device.api, officer_id).get_json()
    assert track["points"] == 1
    [point] = track["features"]
    assert point["geometry"]["type"] == "Point"
    assert point["geometry"]["coordinates"] == pytest.approx([121.47, 31.37], abs=1e-7)


def test_the_audit_entry_of_each_batch_says_how_many_points_were_new(app, officer1):
    """A device sends the same 3 points twice (a retry): the supervisor reading the audit log
    sees the batch that added them (3 new) and the retry that added none (0), on PostgreSQL
    as on SQLite."""
    device, officer_id = officer1
    points = walk(T0, 121.47, 31.37, 3)
    push_track(device, officer_id, points)
    push_track(device, officer_id, points)
    entries = audit_entries(app, action="track.append")
    assert [(entry.after["points"], entry.after["new_points"]) for entry in entries] == [
        (3, 3),
        (3, 0),
    ]


def test_two_devices_of_one_officer_both_keep_their_fixes_and_the_line_draws_the_better(
    officer1, app, login
):
    """The officer carries a phone and a pad; both record a fix at the same instants."""
    device, officer_id = officer1
    pad = FakeDevice(login("officer1", device_id="pad-second"))
    walk_points = walk(T0, 121.47, 31.37, 3)
    push_track(device, officer_id, [p | {"accuracy_m": 30.0} for p in walk_points])
    shifted = [p | {"lon": p["lon"] + 0.0002, "accuracy_m": 5.0} for p in walk_points]
    push_track(pad, officer_id, shifted)
    push_track(pad, officer_id, shifted)  # a repeated batch still adds nothing

    with app.app_context():
        stored = db.session.scalars(
            sa.select(TrackPoint.device_id).where(TrackPoint.officer_id == officer_id)
        ).all()
    assert sorted(stored).count("pad-second") == 3 and len(stored) == 6
    track = get_track(device.api, officer_id).get_json()
    assert (track["points"], track["points_dropped"]) == (3, 3)
    [line] = track["features"]
    drawn = line["geometry"]["coordinates"]
    assert drawn[0] == pytest.approx([shifted[0]["lon"], shifted[0]["lat"]], abs=1e-7)


def test_tracks_are_read_by_their_officer_and_those_above_them(officer1, login):
    device, officer_id = officer1
    push_track(device, officer_id, walk(T0, 121.47, 31.37, 3))
    for reader in ("officer1", "leader1", "supervisor", "admin"):
        assert get_track(login(reader), officer_id).get_json()["points"] == 3
    for outsider in ("officer2", "officer3", "leader2"):
        assert_error(get_track(login(outsider), officer_id), 404, "not_found")
    assert_error(get_track(device.api, uuid.uuid4()), 404, "not_found")


def test_bad_periods_are_refused_with_field_messages(officer1):
    device, officer_id = officer1
    body = assert_error(
        get_track(device.api, officer_id, T0, T0 - timedelta(hours=1)), 422, "validation_failed"
    )
    assert "to" in body["errors"]["query"]
    too_long = get_track(device.api, officer_id, T0, T0 + timedelta(days=40))
    assert "to" in assert_error(too_long, 422, "validation_failed")["errors"]["query"]
    missing = device.api.get("/api/v1/tracks?from=2026-11-20T00:00:00Z")
    errors = assert_error(missing, 422, "validation_failed")["errors"]["query"]
    assert {"officer_id", "to"} <= set(errors)
    naive = device.api.get(
        f"/api/v1/tracks?officer_id={officer_id}&from=2026-11-20T00:00:00&to=2026-11-21T00:00:00Z"
    )
    assert "from" in assert_error(naive, 422, "validation_failed")["errors"]["query"]


def test_a_period_of_plain_dates_is_whole_shanghai_days(officer1):
    """``from``/``to`` take a date as every list does: that Shanghai day, ``to`` included."""
    device, officer_id = officer1
    push_track(device, officer_id, walk(T0, 121.47, 31.37, 3))  # 09:00 on the 20th, Shanghai
    on = f"/api/v1/tracks?officer_id={officer_id}"
    assert device.api.get(f"{on}&from=2026-11-20&to=2026-11-20").get_json()["points"] == 3
    assert device.api.get(f"{on}&from=2026-11-21&to=2026-11-22").get_json()["points"] == 0


def test_a_days_track_ends_before_the_next_days_midnight_fix(officer1):
    """A fix at 23:59:50 and one at 00:00:00 the next day (Shanghai): the 20th's track shows
    the first only, the 21st's the second only; no fix is on two days' tracks."""
    device, officer_id = officer1
    last_of_day = datetime(2026, 11, 20, 15, 59, 50, tzinfo=UTC)
    midnight = datetime(2026, 11, 20, 16, 0, 0, tzinfo=UTC)  # 00:00 on the 21st in Shanghai
    points = [
        {"t": moment.isoformat(), "lon": 121.47, "lat": 31.37, "accuracy_m": 5.0}
        for moment in (last_of_day, midnight)
    ]
    push_track(device, officer_id, points)
    on = f"/api/v1/tracks?officer_id={officer_id}"
    day20 = device.api.get(f"{on}&from=2026-11-20&to=2026-11-20").get_json()
    day21 = device.api.get(f"{on}&from=2026-11-21&to=2026-11-21").get_json()
    assert day20["features"][0]["properties"]["ended_at"] == last_of_day.isoformat()
    assert day21["features"][0]["properties"]["started_at"] == midnight.isoformat()
    assert (day20["points"], day21["points"]) == (1, 1)
    exact = get_track(device.api, officer_id, last_of_day, midnight).get_json()
    assert exact["points"] == 1  # a time as ``to`` is exclusive too


def test_the_answer_names_the_period_it_drew(officer1):
    """A map client shows the period of the track: ``from`` and ``to`` as UTC instants."""
    device, officer_id = officer1
    on = f"/api/v1/tracks?officer_id={officer_id}"
    body = device.api.get(f"{on}&from=2026-11-20&to=2026-11-20").get_json()
    assert (body["from"], body["to"]) == ("2026-11-19T16:00:00+00:00", "2026-11-20T16:00:00+00:00")


def test_inaccurate_fixes_are_left_out_of_the_lines(officer1):
    device, officer_id = officer1
    points = walk(T0, 121.47, 31.37, 10)
    points[4] = {**points[4], "lat": 31.372, "accuracy_m": 350.0}  # a 220 m zigzag
    push_track(device, officer_id, points)
    track = get_track(device.api, officer_id).get_json()
    assert track["points"] == 9 and track["points_dropped"] == 1
    [line] = track["features"]
    assert all(lat == 31.37 for _, lat in line["geometry"]["coordinates"])
    assert line["properties"]["distance_m"] == pytest.approx(9 * 4.757, abs=0.5)
