"""Small geometry helpers shared by features (WGS-84 degrees, metres on the ground)."""

from __future__ import annotations

import math

import sqlalchemy as sa
from shapely.geometry import Point, shape

#: The fewest metres a degree of latitude spans anywhere (at the equator; 111.7 km at the poles).
_LEAST_METRES_PER_LAT_DEGREE = 110_574.0


def bounds(geometry: dict) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of a GeoJSON geometry."""
    return shape(geometry).bounds


def degrees_box(lon: float, lat: float, metres: float) -> tuple[float, float, float, float]:
    """A lon/lat box that surely contains every point :func:`squared_distance_expr` puts
    within ``metres`` of the point (an index-friendly first cut; the distance decides).

    North-south, the fewest metres a degree of latitude spans anywhere; east-west, the metres
    a degree of longitude spans at the box's edge nearest the pole, where they are fewest. A
    box that reaches a pole spans every longitude.
    """
    dlat = metres / _LEAST_METRES_PER_LAT_DEGREE
    poleward = abs(lat) + dlat
    per_lon = metres_per_degree(poleward)[0] if poleward < 90 else 0.0
    dlon = metres / per_lon if per_lon > metres / 180 else 360.0
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def squared_distance_expr(lon_col, lat_col, lon: float, lat: float):
    """SQL for the squared ground distance in m² from a point, as :func:`distance_m` measures
    it: degrees scaled by :func:`metres_per_degree` at the mean latitude of the two points.

    The scales at the mean latitude are taken to first order in the row's latitude (over the
    50 km of a ``near`` search they change by 0.5% for longitude, and the first order leaves
    less than 0.001%), so the SQL is plain arithmetic and the same query runs on SQLite and
    PostgreSQL.
    """
    per_lon, per_lat = metres_per_degree(lat)
    slope_lon, slope_lat = _metres_per_degree_slopes(lat)
    dlat = lat_col - sa.literal(lat)
    # At the mean latitude, lat + dlat/2: half the slope per degree of the row's offset.
    dx = (lon_col - sa.literal(lon)) * (sa.literal(per_lon) + sa.literal(slope_lon / 2) * dlat)
    dy = dlat * (sa.literal(per_lat) + sa.literal(slope_lat / 2) * dlat)
    return dx * dx + dy * dy


# -- Chinese map coordinate systems --------------------------------------------------------------
# GCJ-02 (national standard offset used by Chinese map SDKs) and BD-09 (Baidu's further offset).
# The forward GCJ-02 formula is the published one; the inverse is solved by fixed-point iteration
# to well under a centimetre, rather than the common one-step approximation (metres off).

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0


def _outside_china(lon: float, lat: float) -> bool:
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _gcj_delta(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (
        (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if _outside_china(lon, lat):
        return lon, lat
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    if _outside_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = glon - lon, glat - lat
        wlon, wlat = wlon - dlon, wlat - dlat
        if abs(dlon) < 1e-10 and abs(dlat) < 1e-10:
            break
    return wlon, wlat


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """A point sent in ``crs`` (``wgs84``, ``gcj02`` or ``bd09``) as WGS-84."""
    if crs == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if crs == "bd09":
        return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
    return lon, lat


def off_the_globe(lon: float, lat: float, crs: str) -> list[str]:
    """Which of ``lon`` and ``lat`` (a point on the globe in ``crs``) fall off the globe once
    converted to WGS-84: none, but for a BD-09 point at the antimeridian or the south pole.

    BD-09 lies about 0.0065° east and 0.006° north of GCJ-02 everywhere, so taking it back
    crosses those edges (lon -180 in BD-09 is -180.0065); GCJ-02 differs from WGS-84 only inside
    China, far from every edge, so the GCJ-02 point outside China is the WGS-84 one, and one
    inside China is nowhere near an edge. Cheaper than converting: a push checks every point.
    """
    if crs != "bd09":
        return []
    lon, lat = bd09_to_gcj02(lon, lat)
    if not _outside_china(lon, lat):
        return []
    return [
        name for name, value, limit in (("lon", lon, 180), ("lat", lat, 90)) if abs(value) > limit
    ]


# -- distances on the ground ---------------------------------------------------------------------


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``lat`` on the WGS-84 ellipsoid.

    The published series (e.g. the USGS / Wikipedia "length of a degree" formulas): at
    Shanghai (31.2°N) a degree of longitude is 95.3 km and a degree of latitude 110.9 km; using
    the mean 111.32 km for both would overstate east-west distances there by 17%.
    """
    phi = math.radians(lat)
    per_lat = 111_132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    per_lon = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi) + 0.118 * math.cos(5 * phi)
    return per_lon, per_lat


def _metres_per_degree_slopes(lat: float) -> tuple[float, float]:
    """How :func:`metres_per_degree`'s two values change per degree of latitude at ``lat``
    (the derivatives of its series)."""
    phi = math.radians(lat)
    per_radian_lat = 1_119.64 * math.sin(2 * phi) - 4.7 * math.sin(4 * phi)
    per_radian_lon = (
        -111_412.84 * math.sin(phi) + 280.5 * math.sin(3 * phi) - 0.59 * math.sin(5 * phi)
    )
    return math.radians(per_radian_lon), math.radians(per_radian_lat)


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Ground distance in metres between two WGS-84 points a few kilometres apart or more.

    Scaled at the mean latitude by :func:`metres_per_degree`: within 0.1% of the geodesic up to
    tens of kilometres, which is what inspection checks and tracks measure.
    """
    per_lon, per_lat = metres_per_degree((lat1 + lat2) / 2)
    return math.hypot((lon2 - lon1) * per_lon, (lat2 - lat1) * per_lat)


def metres_outside(lon: float, lat: float, polygon: dict) -> float:
    """How far in metres the point lies outside a GeoJSON polygon (0 inside or on it),
    measured in a local frame at the point."""
    frame = LocalFrame(lon, lat)
    return frame.geometry(shape(polygon)).distance(Point(0.0, 0.0))


class LocalFrame:
    """Planar metres around an origin (x east, y north), for shapely distances in metres."""

    def __init__(self, lon0: float, lat0: float):
        self.lon0, self.lat0 = lon0, lat0
        self.per_lon, self.per_lat = metres_per_degree(lat0)

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.per_lon, (lat - self.lat0) * self.per_lat

    def geometry(self, geom):
        """A shapely geometry in lon/lat moved into this frame."""
        import shapely

        return shapely.transform(
            geom,
            lambda coords: (coords - (self.lon0, self.lat0)) * (self.per_lon, self.per_lat),
        )

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        return self.lon0 + x / self.per_lon, self.lat0 + y / self.per_lat
