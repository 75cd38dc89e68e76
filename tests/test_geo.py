"""Coordinate systems: GCJ-02 and BD-09 points come back to WGS-84 within centimetres."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from fieldapp.geo import (
    LocalFrame,
    bd09_to_gcj02,
    degrees_box,
    distance_m,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    metres_per_degree,
    squared_distance_expr,
    to_wgs84,
    wgs84_to_gcj02,
)

POINTS = [(121.4737, 31.2304), (121.4892, 31.4054), (121.3600, 31.5000), (116.3975, 39.9087)]


def metres(a, b) -> float:
    return distance_m(*a, *b)


@pytest.mark.parametrize("point", POINTS)
def test_gcj02_is_offset_by_hundreds_of_metres_and_comes_back(point):
    gcj = wgs84_to_gcj02(*point)
    assert 100 < metres(point, gcj) < 1000
    assert metres(point, to_wgs84(*gcj, "gcj02")) < 0.01


@pytest.mark.parametrize("point", POINTS)
def test_bd09_comes_back_within_a_metre(point):
    bd = gcj02_to_bd09(*wgs84_to_gcj02(*point))
    assert metres(point, to_wgs84(*bd, "bd09")) < 1.0


def test_outside_china_nothing_moves():
    assert wgs84_to_gcj02(2.3522, 48.8566) == (2.3522, 48.8566)
    assert to_wgs84(2.3522, 48.8566, "wgs84") == (2.3522, 48.8566)


# -- published reference points ------------------------------------------------------------------
# wandergis/coordtransform (README / test/app.js) for 116.404, 39.915, and the WGS-84 → GCJ-02
# pairs of googollee/eviltransform's tests (Shanghai, Shenzhen, Beijing) given to 5 decimals.

COORDTRANSFORM = {
    "bd09_to_gcj02": (116.39762729119315, 39.90865673957631),
    "gcj02_to_bd09": (116.41036949371029, 39.92133699351021),
    "wgs84_to_gcj02": (116.41024449916938, 39.91640428150164),
}

EVILTRANSFORM = [  # (wgs lon, wgs lat), (gcj lon, gcj lat)
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
]


@pytest.mark.parametrize("name", sorted(COORDTRANSFORM))
def test_conversions_match_coordtransforms_published_values(name):
    convert = {
        "bd09_to_gcj02": bd09_to_gcj02,
        "gcj02_to_bd09": gcj02_to_bd09,
        "wgs84_to_gcj02": wgs84_to_gcj02,
    }[name]
    assert convert(116.404, 39.915) == pytest.approx(COORDTRANSFORM[name], abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM)
def test_conversions_match_eviltransforms_reference_pairs(wgs, gcj):
    assert wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-5)
    # back from the published GCJ-02 point: the same place within a few centimetres
    assert metres(wgs, gcj02_to_wgs84(*gcj)) < 0.05
    assert metres(wgs, to_wgs84(*gcj02_to_bd09(*gcj), "bd09")) < 1.0


def test_a_degree_has_its_published_length_on_the_ellipsoid():
    # lengths of a degree on WGS-84 (e.g. the table in Wikipedia's "Latitude" article)
    assert metres_per_degree(0) == pytest.approx((111_319.5, 110_574.3), abs=1)
    assert metres_per_degree(30) == pytest.approx((96_486.3, 110_852.4), abs=1)
    assert metres_per_degree(45) == pytest.approx((78_846.8, 111_132.0), abs=2)


def test_distances_at_shanghai_latitude():
    # People's Square to the Bund: within 0.5% of the great-circle distance on the mean sphere
    # (the sphere itself is up to 0.5% off the ellipsoid), and far from a degree-blind 111 km/°
    a, b = (121.4737, 31.2304), (121.4903, 31.2363)
    phi1, phi2 = math.radians(a[1]), math.radians(b[1])
    h = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(b[0] - a[0]) / 2) ** 2
    )
    great_circle = 2 * 6_371_008.8 * math.asin(math.sqrt(h))
    assert distance_m(*a, *b) == pytest.approx(great_circle, rel=5e-3)
    assert distance_m(*a, *b) < 0.9 * math.hypot(0.0166, 0.0059) * 111_320
    # a degree of longitude at 31.2°N is 95.3 km, not 111.3 km
    assert distance_m(121.0, 31.2, 122.0, 31.2) == pytest.approx(95_304, rel=1e-3)


# -- near: the distance the database computes ------------------------------------------------


def point_at(lon: float, lat: float, bearing_deg: float, metres: float) -> tuple[float, float]:
    """The point ``metres`` from (lon, lat) towards ``bearing_deg`` as :func:`distance_m`
    measures it (a local frame, then scaled until distance_m agrees to a millimetre)."""
    frame = LocalFrame(lon, lat)
    angle = math.radians(bearing_deg)
    reach = metres
    for _ in range(20):
        point = frame.lonlat(reach * math.sin(angle), reach * math.cos(angle))
        measured = distance_m(lon, lat, *point)
        if abs(measured - metres) < 1e-3:
            break
        reach *= metres / measured
    return point


@pytest.mark.parametrize("centre", [(121.47, 31.45), (116.40, 39.91), (126.63, 45.75)])
@pytest.mark.parametrize("metres", [100, 1000, 50_000])
def test_the_sql_distance_is_the_distance_on_the_ground(centre, metres):
    """What ``near`` compares in SQL is distance_m (scales at the mean latitude) to within a
    thousandth of a percent in every direction, and the index box around the point holds all
    of it: a shop 997 m due north is within 1000 m, wherever that is."""
    engine = sa.create_engine("sqlite://")
    lon, lat = centre
    with engine.connect() as connection:
        for bearing in range(0, 360, 45):
            p_lon, p_lat = point_at(lon, lat, bearing, metres)
            expr = squared_distance_expr(sa.literal(p_lon), sa.literal(p_lat), lon, lat)
            squared = connection.execute(sa.select(expr)).scalar_one()
            assert math.sqrt(squared) == pytest.approx(metres, rel=1e-5), bearing
            minlon, minlat, maxlon, maxlat = degrees_box(lon, lat, metres)
            assert minlon <= p_lon <= maxlon and minlat <= p_lat <= maxlat, bearing
    engine.dispose()
