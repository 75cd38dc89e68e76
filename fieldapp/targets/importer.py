"""Importing targets from CSV or GeoJSON, checked with the same schema as the API.

CSV columns: ``kind, name, address, squadron, lon, lat, business_type, uscc, permit_no, scale,
phase, credit_class, sensitive_surroundings, code`` (``squadron`` is an id or a name such as
``吴淞中队``; ``code`` updates the target with that 一店一码 code instead of adding one).

CSV files are read as UTF-8 (with or without a BOM) or, failing that, as GB18030, the superset
of GBK that Excel on a Chinese Windows saves "CSV" in.

GeoJSON: a FeatureCollection whose features carry the same names as properties; a shop's
geometry is its Point, a site's is its boundary Polygon (its location is then the ``lon``/``lat``
properties, or a point on the boundary when those are missing).

Every problem is reported with its line or feature; text the database cannot store (a NUL
character, which PostgreSQL refuses) is refused as the API refuses it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import marshmallow as ma
import sqlalchemy as sa
from shapely.geometry import shape

from fieldapp.actor import Actor
from fieldapp.db import db, utcnow
from fieldapp.org.models import Squadron
from fieldapp.risk import operations as risk
from fieldapp.targets import operations
from fieldapp.targets.models import Target
from schemas.common import text_errors
from schemas.targets import TargetCreateArgs, TargetUpdateArgs

FIELDS = (
    "kind",
    "name",
    "address",
    "squadron",
    "lon",
    "lat",
    "business_type",
    "uscc",
    "permit_no",
    "scale",
    "phase",
    "credit_class",
    "sensitive_surroundings",
    "code",
)


class ImportError_(Exception):
    """The file has problems; ``problems`` lists them as ``"line N: field: why"``."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0


class _Problem(str):
    """What a reader yields instead of a row that cannot be read: why."""


def _csv_text(path: Path, progress: Callable[[str], None]) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as not_utf8:
        # GB18030 decodes almost any bytes, so a UTF-8 file with a stray byte would come in as
        # mojibake, silently. A file that is mostly valid UTF-8 is refused at the bad byte.
        as_utf8 = raw.decode("utf-8", errors="replace")
        invalid = as_utf8.count("\ufffd")
        if sum(1 for ch in as_utf8 if ord(ch) > 0x7F) - invalid > invalid:
            line = raw[: not_utf8.start].count(b"\n") + 1
            raise ImportError_(
                [
                    f"line {line}: a byte that is not UTF-8 ({raw[not_utf8.start]:#04x}) in a"
                    " file that otherwise is; fix it or save the file again as CSV UTF-8"
                ]
            ) from None
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            raise ImportError_(
                [f"file: neither UTF-8 nor GBK/GB18030 text ({not_utf8}); save it as CSV UTF-8"]
            ) from None
    progress(f"{path.name} is not UTF-8: read as GBK/GB18030 (Excel's Chinese CSV)")
    return text


def _rows_from_csv(
    path: Path, progress: Callable[[str], None]
) -> Iterator[tuple[str, dict | _Problem]]:
    reader = csv.DictReader(io.StringIO(_csv_text(path, progress), newline=""))
    try:
        header = reader.fieldnames or ()
        unknown = set(header) - set(FIELDS)
        if unknown:
            raise ImportError_([f"header: unknown columns {', '.join(sorted(unknown))}"])
        twice = sorted({name for name in header if header.count(name) > 1})
        if twice:
            raise ImportError_([f"header: columns given twice: {', '.join(twice)}"])
        for row in reader:
            where = f"line {reader.line_num}"
            extra = row.pop(None, None)  # the fields past the header's last column
            if extra is not None:
                counts = f"{len(header) + len(extra)} fields, but the header has {len(header)}"
                yield where, _Problem(f"{counts} (put a value holding a comma in double quotes)")
                continue
            yield where, {k: v.strip() for k, v in row.items() if v is not None and v.strip()}
    except csv.Error as exc:
        raise ImportError_([f"line {reader.line_num + 1}: not readable as CSV: {exc}"]) from None


def _rows_from_geojson(
    path: Path, progress: Callable[[str], None]
) -> Iterator[tuple[str, dict | _Problem]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImportError_([f"file: not valid JSON: {exc}"]) from None
    except RecursionError:
        raise ImportError_(["file: not valid GeoJSON: nested too deep"]) from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ImportError_(["file: expected a GeoJSON FeatureCollection"])
    features = document.get("features")
    if not isinstance(features, list):
        raise ImportError_(["file: features must be a list of GeoJSON features"])
    for index, feature in enumerate(features):
        where = f"feature {index}"
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            yield where, _Problem("a feature needs a geometry")
            continue
        properties = feature.get("properties")
        if not isinstance(properties, dict | None):
            yield where, _Problem("properties must be an object (or null)")
            continue
        row = dict(properties or {})
        geometry = feature["geometry"]
        if geometry.get("type") == "Point":
            coords = geometry.get("coordinates")
            if not isinstance(coords, list) or len(coords) not in (2, 3):
                yield where, _Problem("geometry: a Point's coordinates are [lon, lat]")
                continue
            row.setdefault("lon", coords[0])
            row.setdefault("lat", coords[1])
        elif geometry.get("type") == "Polygon":
            row["boundary"] = geometry
            if "lon" not in row or "lat" not in row:
                try:
                    point = shape(geometry).exterior.interpolate(0)
                    row["lon"], row["lat"] = point.x, point.y
                except Exception:  # the schema reports the broken polygon itself
                    pass
        yield where, row


def _squadron_ids() -> dict[str, int]:
    ids = {}
    for squadron in db.session.scalars(sa.select(Squadron)):
        ids[str(squadron.id)] = squadron.id
        ids[squadron.name] = squadron.id
        ids[squadron.name.removesuffix("中队")] = squadron.id
    return ids


def _payload(row: dict, squadrons: dict[str, int]) -> tuple[dict, list[str]]:
    problems = []
    payload = {k: v for k, v in row.items() if k not in ("squadron", "lon", "lat", "code")}
    if "squadron" in row:
        squadron_id = squadrons.get(str(row["squadron"]))
        if squadron_id is None:
            problems.append(f"squadron: no squadron {row['squadron']!r}")
        payload["squadron_id"] = squadron_id
    if "lon" in row or "lat" in row:
        try:
            if isinstance(row.get("lon"), bool) or isinstance(row.get("lat"), bool):
                raise TypeError("true and false are not coordinates")
            payload["location"] = {"lon": float(row.get("lon")), "lat": float(row.get("lat"))}
        except (TypeError, ValueError, OverflowError):
            problems.append("lon/lat: must be numbers")
    if "sensitive_surroundings" in payload and isinstance(payload["sensitive_surroundings"], str):
        payload["sensitive_surroundings"] = payload["sensitive_surroundings"].lower() in (
            "1",
            "true",
            "yes",
            "是",
        )
    return payload, problems


def import_targets(
    actor: Actor, path: str | Path, progress: Callable[[str], None] | None = None
) -> ImportReport:
    """Validate every row, then create or update targets. Raises :class:`ImportError_` listing
    every problem (with its line) before anything is written."""
    path = Path(path)
    reader = _rows_from_geojson if path.suffix.lower() in (".geojson", ".json") else _rows_from_csv
    squadrons = _squadron_ids()
    problems: list[str] = []
    work: list[tuple[Target | None, dict]] = []
    seen_codes: set[str] = set()
    for where, row in reader(path, progress or (lambda _: None)):
        if isinstance(row, _Problem):
            problems.append(f"{where}: {row}")
            continue
        unstorable = text_errors(row)
        if unstorable:  # before any query sees the text
            problems += [f"{where}: {field}: {'; '.join(why)}" for field, why in unstorable.items()]
            continue
        payload, row_problems = _payload(row, squadrons)
        problems += [f"{where}: {p}" for p in row_problems]
        code = str(row.get("code", "")).upper() or None
        existing = db.session.scalar(sa.select(Target).where(Target.code == code)) if code else None
        if code and existing is None:
            problems.append(f"{where}: code: no target with code {code}")
            continue
        if code is not None:
            if code in seen_codes:
                problems.append(f"{where}: code: {code} appears twice in the file")
            seen_codes.add(code)
        schema = TargetUpdateArgs() if existing else TargetCreateArgs()
        if existing:
            payload.pop("kind", None)
        try:
            data = schema.load(payload)
        except ma.ValidationError as exc:
            for field, messages in exc.normalized_messages().items():
                problems.append(f"{where}: {field}: {'; '.join(map(str, _flatten(messages)))}")
            continue
        # Checked here too, so that it is reported with its line before anything is written.
        for field, messages in operations.site_location_errors(data, existing).items():
            problems.append(f"{where}: {field}: {'; '.join(messages)}")
        work.append((existing, data))
    if problems:
        raise ImportError_(problems)
    report = ImportReport()
    written = []
    for number, (existing, data) in enumerate(work, start=1):
        if existing is None:
            written.append(operations.create_target(actor, data, assess=False).id)
            report.created += 1
        else:
            written.append(operations.update_target(actor, existing, data, assess=False).id)
            report.updated += 1
        if progress and number % 5000 == 0:
            progress(f"  {number:,} / {len(work):,}")
    # Risk for all of them at once: a few queries per 20,000 targets, not a few per target.
    db.session.flush()
    risk.assess_targets(actor, utcnow(), written, progress=progress or (lambda _: None))
    return report


def _flatten(messages) -> list:
    if isinstance(messages, dict):
        return [f"{k}: {m}" for k, v in messages.items() for m in _flatten(v)]
    if isinstance(messages, list):
        return [m for item in messages for m in _flatten(item)]
    return [messages]
