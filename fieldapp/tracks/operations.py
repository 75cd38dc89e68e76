"""GPS tracks for display: an officer's points over a period as GeoJSON lines, split where the
device was silent or jumped, simplified for a map, with distance, duration and the gaps."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import shapely
import sqlalchemy as sa
from shapely.geometry import LineString

from fieldapp.db import db
from fieldapp.geo import LocalFrame, distance_m
from fieldapp.tracks.models import TrackPoint


@dataclass(frozen=True)
class TrackSettings:
    gap: timedelta
    gap_metres: float
    simplify_metres: float
    max_span: timedelta
    max_accuracy_m: float = 100.0

    @classmethod
    def from_config(cls, config) -> TrackSettings:
        return cls(
            timedelta(minutes=config["TRACK_GAP_MINUTES"]),
            config["TRACK_GAP_METRES"],
            config["TRACK_SIMPLIFY_METRES"],
            timedelta(days=config["TRACK_MAX_DAYS"]),
            config["TRACK_MAX_ACCURACY_M"],
        )


def _segments(points: list, settings: TrackSettings) -> tuple[list[list], list[dict]]:
    """Consecutive points split at pauses longer than the gap or jumps farther than allowed."""
    segments: list[list] = []
    gaps: list[dict] = []
    for point in points:
        if segments:
            last = segments[-1][-1]
            pause = point.at - last.at
            jump = distance_m(last.lon, last.lat, point.lon, point.lat)
            if pause > settings.gap or jump > settings.gap_metres:
                gaps.append(
                    {
                        "from": last.at.isoformat(),
                        "to": point.at.isoformat(),
                        "seconds": pause.total_seconds(),
                        "distance_m": round(jump, 1),
                    }
                )
                segments.append([point])
                continue
            segments[-1].append(point)
        else:
            segments.append([point])
    return segments, gaps


def _feature(segment: list, settings: TrackSettings) -> dict:
    metres = sum(distance_m(a.lon, a.lat, b.lon, b.lat) for a, b in itertools.pairwise(segment))
    properties = {
        "started_at": segment[0].at.isoformat(),
        "ended_at": segment[-1].at.isoformat(),
        "duration_s": (segment[-1].at - segment[0].at).total_seconds(),
        "distance_m": round(metres, 1),
        "points": len(segment),
    }
    if len(segment) == 1:
        geometry = {"type": "Point", "coordinates": [segment[0].lon, segment[0].lat]}
        properties["points_shown"] = 1
        return {"type": "Feature", "geometry": geometry, "properties": properties}
    frame = LocalFrame(segment[0].lon, segment[0].lat)
    line = LineString([frame.xy(p.lon, p.lat) for p in segment])
    simplified = shapely.simplify(line, settings.simplify_metres, preserve_topology=False)
    coordinates = [[round(c, 7) for c in frame.lonlat(x, y)] for x, y in simplified.coords]
    properties["points_shown"] = len(coordinates)
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coordinates},
        "properties": properties,
    }


def track_lines(
    officer_id: uuid.UUID, start: datetime, end: datetime, settings: TrackSettings
) -> dict:
    """The officer's track from ``start`` up to, not including, ``end`` (as every list bounds
    a period: a day's track does not take the next day's midnight fix) as a GeoJSON
    FeatureCollection: one feature per continuous stretch, and the totals and gaps as members
    of the collection.
    Fixes less accurate than ``max_accuracy_m`` are left out (``points_dropped``), and so are
    all but the most accurate of the fixes two of the officer's devices took at one instant
    (one person is in one place: drawing both would zigzag; both stay stored)."""
    fixes = db.session.execute(
        sa.select(TrackPoint.t.label("at"), TrackPoint.lon, TrackPoint.lat, TrackPoint.accuracy_m)
        .where(TrackPoint.officer_id == officer_id, TrackPoint.t >= start, TrackPoint.t < end)
        .order_by(TrackPoint.t, TrackPoint.accuracy_m.asc().nulls_last(), TrackPoint.id)
    ).all()
    accurate = [p for p in fixes if p.accuracy_m is None or p.accuracy_m <= settings.max_accuracy_m]
    points = [p for i, p in enumerate(accurate) if i == 0 or p.at != accurate[i - 1].at]
    segments, gaps = _segments(points, settings)
    features = [_feature(segment, settings) for segment in segments]
    return {
        "type": "FeatureCollection",
        "features": features,
        "officer_id": str(officer_id),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "points": len(points),
        "points_dropped": len(fixes) - len(points),
        "distance_m": round(sum(f["properties"]["distance_m"] for f in features), 1),
        "duration_s": sum(f["properties"]["duration_s"] for f in features),
        "gaps": gaps,
    }
