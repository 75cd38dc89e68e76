"""Small geometry helpers shared by features (WGS-84 degrees, metres on the ground)."""

from __future__ import annotations

import math

import sqlalchemy as sa
from shapely.geometry import shape

#: Metres per degree of latitude (WGS-84 mean); a degree of longitude is this times cos(lat).
METRES_PER_DEGREE = 111_320.0


def bounds(geometry: dict) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of a GeoJSON geometry."""
    return shape(geometry).bounds


def degrees_box(lon: float, lat: float, metres: float) -> tuple[float, float, float, float]:
    """A lon/lat box that surely contains the circle of ``metres`` around the point."""
    dlat = metres / METRES_PER_DEGREE
    dlon = metres / (METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 1e-6))
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def squared_distance_expr(lon_col, lat_col, lon: float, lat: float):
    """SQL for the squared ground distance in m² from a point (equirectangular projection).

    Exact to well under 0.1% for the few kilometres a ``near`` search spans, and plain
    arithmetic, so the same query runs on SQLite and PostgreSQL.
    """
    kx = METRES_PER_DEGREE * math.cos(math.radians(lat))
    dx = (lon_col - sa.literal(lon)) * sa.literal(kx)
    dy = (lat_col - sa.literal(lat)) * sa.literal(METRES_PER_DEGREE)
    return dx * dx + dy * dy
