"""Coordinate systems: GCJ-02 and BD-09 points come back to WGS-84 within centimetres."""

from __future__ import annotations

import math

import pytest

from fieldapp.geo import METRES_PER_DEGREE, gcj02_to_bd09, to_wgs84, wgs84_to_gcj02

POINTS = [(121.4737, 31.2304), (121.4892, 31.4054), (121.3600, 31.5000), (116.3975, 39.9087)]


def metres(a, b) -> float:
    dx = (a[0] - b[0]) * METRES_PER_DEGREE * math.cos(math.radians(a[1]))
    dy = (a[1] - b[1]) * METRES_PER_DEGREE
    return math.hypot(dx, dy)


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
