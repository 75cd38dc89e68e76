"""Importing targets from CSV or GeoJSON, checked with the same schema as the API.

CSV columns: ``kind, name, address, squadron, lon, lat, business_type, uscc, permit_no, scale,
phase, credit_class, sensitive_surroundings, code`` (``squadron`` is an id or a name such as
``吴淞中队``; ``code`` updates the target with that 一店一码 code instead of adding one). A row
without a code updates the shop with its ``uscc``, or the site with its ``permit_no``, when one
is stored already (by name where several share it), so the same file can be imported again.

CSV files are read as UTF-8 (with or without a BOM) or, failing that, as GB18030, the superset
of GBK that Excel on a Chinese Windows saves "CSV" in.

CSV columns with no name in the header (Excel saves the empty columns of a sheet's used range)
are ignored while they hold nothing, and so are rows with no value at all (Excel's cleared
rows); a value under a column with no name is reported by the column's position.

GeoJSON (UTF-8, with or without a BOM): a FeatureCollection whose features carry the same names
as properties; a shop's geometry is its Point, a site's is its boundary Polygon, or a
MultiPolygon of one part, as GIS tools export polygon layers (its location is then the
``lon``/``lat`` properties, or a point on the boundary when those are missing). Any other
geometry is reported.

A row is checked against the stored target it updates as the write would check it (a field
that target's kind does not have, such as a shop's ``scale`` or boundary Polygon; a ``kind``
column that says otherwise). Every problem is reported with its line or feature; text the
database cannot store (a NUL character, which PostgreSQL refuses) is refused as the API refuses
it.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import marshmallow as ma
import sqlalchemy as sa
from shapely.geometry import shape

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
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
    """What an import did (or, in a dry run, would do) to the targets."""

    created: int = 0
    updated: int = 0
    #: Matched to a target that already holds every value the file gives it: not written.
    unchanged: int = 0
    #: New targets with nothing to know them by when the file comes again (no code, no uscc
    #: for a shop, no permit number for a site): a second import adds them a second time.
    created_without_key: int = 0


#: A progress line every this many rows, while checking and while writing.
PROGRESS_ROWS = 5000


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
    reader = csv.reader(io.StringIO(_csv_text(path, progress), newline=""))
    try:
        # A row of empty cells above the header (a title cleared since) is no header.
        header = next((line for line in reader if any(cell.strip() for cell in line)), [])
        # Excel saves every column of a sheet's used range: columns right of the data that
        # were once touched come as empty names, and hold nothing.
        unnamed = [column for column, name in enumerate(header) if not name.strip()]
        named = [name for name in header if name.strip()]
        unknown = set(named) - set(FIELDS)
        if unknown:
            raise ImportError_([f"header: unknown columns {', '.join(sorted(unknown))}"])
        twice = sorted({name for name in named if named.count(name) > 1})
        if twice:
            raise ImportError_([f"header: columns given twice: {', '.join(twice)}"])
        for values in reader:
            where = f"line {reader.line_num}"
            if not any(value.strip() for value in values):
                continue  # a blank line, or a row Excel left of commas only: no target
            if len(values) > len(header):
                counts = f"{len(values)} fields, but the header has {len(header)}"
                yield where, _Problem(f"{counts} (put a value holding a comma in double quotes)")
                continue
            stray = [
                column for column in unnamed if column < len(values) and values[column].strip()
            ]
            if stray:
                named_by_position = (
                    f"column {column + 1} has no name in the header but holds"
                    f" {values[column].strip()!r}"
                    for column in stray
                )
                yield where, _Problem("; ".join(named_by_position))
                continue
            cells = zip(header, values, strict=False)
            yield where, {name: value.strip() for name, value in cells if value.strip()}
    except csv.Error as exc:
        raise ImportError_([f"line {reader.line_num + 1}: not readable as CSV: {exc}"]) from None


def _rows_from_geojson(
    path: Path, progress: Callable[[str], None]
) -> Iterator[tuple[str, dict | _Problem]]:
    try:
        # With or without a BOM, as Windows tools (Notepad, GIS exports) save "UTF-8".
        document = json.loads(path.read_text(encoding="utf-8-sig"))
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
        if geometry.get("type") == "MultiPolygon":
            # GIS tools export polygon layers as MultiPolygon (QGIS does for any layer from a
            # shapefile): one part is the boundary.
            parts = geometry.get("coordinates")
            if not isinstance(parts, list) or len(parts) != 1:
                many = f"{len(parts)} parts" if isinstance(parts, list) else "no parts"
                why = f"a site's boundary is one Polygon, not a MultiPolygon of {many}"
                yield where, _Problem(f"geometry: {why}")
                continue
            geometry = {"type": "Polygon", "coordinates": parts[0]}
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
        else:
            taken = "a shop's is its Point, a site's its boundary Polygon (or Point)"
            yield where, _Problem(f"geometry: {taken}, not {geometry.get('type')!r}")
            continue
        yield where, row


def _squadron_ids() -> dict[str, list[int]]:
    """What a file's ``squadron`` column may say, and the squadrons each names: its id, its
    name, or its name without 中队. Within a district a squadron called exactly so is meant
    before one that only shortens to it (吴淞 and 吴淞中队 side by side), as ``fieldapp user
    add --squadron`` reads it; a name met in several districts names several squadrons."""
    squadrons = list(db.session.scalars(sa.select(Squadron).order_by(Squadron.id)))
    ids: dict[str, list[int]] = {str(s.id): [s.id] for s in squadrons}
    by_district: dict[tuple[str, int], tuple[list[int], list[int]]] = {}
    for squadron in squadrons:
        for name in {squadron.name, squadron.name.removesuffix("中队")}:
            exact, short = by_district.setdefault((name, squadron.district_id), ([], []))
            (exact if name == squadron.name else short).append(squadron.id)
    numbers = set(ids)  # a squadron's id: a name that reads like one does not shadow it
    for (name, _), (exact, short) in by_district.items():
        if name not in numbers:
            ids.setdefault(name, []).extend(exact or short)
    return ids


def _payload(row: dict, squadrons: dict[str, list[int]]) -> tuple[dict, list[str]]:
    problems = []
    payload = {k: v for k, v in row.items() if k not in ("squadron", "lon", "lat", "code")}
    if "squadron" in row:
        named = squadrons.get(str(row["squadron"]), [])
        squadron_id = named[0] if len(named) == 1 else None
        if not named:
            problems.append(f"squadron: no squadron {row['squadron']!r}")
        elif len(named) > 1:
            problems.append(
                f"squadron: {row['squadron']!r} names squadrons of several districts"
                f" (ids {', '.join(map(str, named))}); give the squadron's id"
            )
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


def _key(value) -> str:
    """A uscc or permit number as compared: no spaces, upper case (as people type them)."""
    return "".join(str(value).split()).upper()


def _natural_keys(kind: str, keys: set[str]) -> dict[str, list[tuple[uuid.UUID, str]]]:
    """Existing targets of ``kind`` by their uscc (shops) or permit number (sites): for each
    key in ``keys``, the (id, name) of every target that has it.

    Neither column is unique (a chain's outlets may share their company's uscc) nor indexed, so
    one pass over the kind's targets that have one, rather than a query per row.
    """
    if not keys:
        return {}
    column = Target.uscc if kind == "shop" else Target.permit_no
    found: dict[str, list[tuple[uuid.UUID, str]]] = {}
    rows = db.session.execute(
        sa.select(column, Target.id, Target.name).where(Target.kind == kind, column.is_not(None))
    )
    for value, target_id, name in rows:
        key = _key(value)
        if key in keys:
            found.setdefault(key, []).append((target_id, name))
    return found


def _match(row: dict, label: str, candidates: list[tuple[uuid.UUID, str]], rows_with_key: int):
    """The id of the existing target ``row`` is about, None for a new one, or a problem.

    ``label`` names the key (uscc or permit_no). Several targets with the key (or several rows
    with it in the file): the one with the row's name. A single target and a single row: that
    target, whatever its name (a shop renamed).
    """
    if not candidates:
        return None
    named = [target_id for target_id, name in candidates if name == row.get("name")]
    if len(named) == 1:
        return named[0]
    if not named and len(candidates) == 1 and rows_with_key == 1:
        return candidates[0][0]
    if named:
        return _Problem(f"{label}: {len(named)} targets have this {label} and this name")
    return _Problem(
        f"{label}: {len(candidates)} targets have this {label} and none this name;"
        " add a code column to say which one the row updates"
    )


def _changed(target: Target, data: dict) -> dict:
    """The values of ``data`` (loaded by the schema) that differ from what ``target`` holds.
    A uscc or permit number spelt another way (case, spaces) is the key the row was matched
    by, not a change."""
    columns = dict(data)
    location = columns.pop("location", None)
    if location is not None:
        columns["lon"], columns["lat"] = location["lon"], location["lat"]
    changed = {}
    for name, value in columns.items():
        stored = getattr(target, name)
        if name in KEY_COLUMNS.values() and value and stored and _key(value) == _key(stored):
            continue
        if audit.jsonable(stored) != audit.jsonable(value):
            changed[name] = value
    return changed


def import_targets(
    actor: Actor, path: str | Path, progress: Callable[[str], None] | None = None
) -> ImportReport:
    """Validate every row, then create or update targets. Raises :class:`ImportError_` listing
    every problem (with its line) before anything is written.

    A row updates an existing target, rather than adding one, when it names it: by its ``code``
    column, or by the uscc of a shop or the permit number of a site already stored. A target
    the row would not change is left alone (no new version, no audit entry), so importing the
    same file again changes nothing.
    """
    path = Path(path)
    say = progress or (lambda _: None)
    reader = _rows_from_geojson if path.suffix.lower() in (".geojson", ".json") else _rows_from_csv
    squadrons = _squadron_ids()
    problems: list[str] = []
    # Each readable row: where it is, the row, its payload, and its key (code, uscc or permit).
    rows: list[tuple[str, dict, dict, tuple[str, str] | None]] = []
    say(f"checking {path.name}")
    for where, row in reader(path, say):
        if isinstance(row, _Problem):
            problems.append(f"{where}: {row}")
            continue
        unstorable = text_errors(row)
        if unstorable:  # before any query sees the text
            problems += [f"{where}: {field}: {'; '.join(why)}" for field, why in unstorable.items()]
            continue
        payload, row_problems = _payload(row, squadrons)
        problems += [f"{where}: {p}" for p in row_problems]
        rows.append((where, row, payload, _natural_key(row)))

    codes = {str(row["code"]).upper() for _, row, _, _ in rows if row.get("code")}
    by_code = {
        target.code: target
        for chunk in _chunks(sorted(codes))
        for target in db.session.scalars(sa.select(Target).where(Target.code.in_(chunk)))
    }
    with_key = Counter(key for *_, key in rows if key is not None)
    by_key = {
        kind: _natural_keys(kind, {key[1] for key in with_key if key[0] == kind})
        for kind in ("shop", "site")
    }

    # Schemas built once: building one per row (and its nested location schema) was half the
    # time of checking a big file.
    create_schema, update_schema = TargetCreateArgs(), TargetUpdateArgs()
    work: list[tuple[uuid.UUID | None, dict]] = []
    wheres: list[str] = []  # the line or feature of each of them
    first_line: dict[uuid.UUID, str] = {}  # the row that first named each existing target
    report = ImportReport()
    for number, (where, row, payload, key) in enumerate(rows, start=1):
        if number % PROGRESS_ROWS == 0:
            say(f"  checked {number:,} / {len(rows):,} rows")
        code = str(row.get("code", "")).upper() or None
        if code is not None:
            coded = by_code.get(code)
            if coded is None:
                problems.append(f"{where}: code: no target with code {code}")
                continue
            target_id = coded.id
            if "kind" in payload and str(payload["kind"]) != coded.kind.value:
                # The row is about another target than the file's author thinks: a typo in
                # the code, or a wrong kind; either way, not to be guessed.
                problems.append(
                    f"{where}: kind: {code} is a {coded.kind.value}, not {payload['kind']!r}"
                )
                continue
            if target_id in first_line:
                problems.append(f"{where}: code: {code} appears twice in the file")
        elif key is not None:
            label = KEY_COLUMNS[key[0]]
            target_id = _match(row, label, by_key[key[0]].get(key[1], []), with_key[key])
            if isinstance(target_id, _Problem):
                problems.append(f"{where}: {target_id}")
                continue
            if target_id is not None and target_id in first_line:
                problems.append(
                    f"{where}: {label}: the same target as {first_line[target_id]}"
                    " (a row per target)"
                )
        else:
            target_id = None
        if target_id is not None:
            first_line.setdefault(target_id, where)
        schema = update_schema if target_id else create_schema
        if target_id:
            payload.pop("kind", None)
        try:
            data = schema.load(payload)
        except ma.ValidationError as exc:
            for field, messages in exc.normalized_messages().items():
                problems.append(f"{where}: {field}: {'; '.join(map(str, _flatten(messages)))}")
            continue
        work.append((target_id, data))
        wheres.append(where)
        if target_id is None and key is None:
            report.created_without_key += 1
    existing = _load_targets([target_id for target_id, _ in work if target_id is not None])
    # What the writes would refuse of a row (a site's point against its boundary, the stored
    # one for an edit of one part; a field the stored target's kind does not have): checked
    # here, so that it is reported with its line before anything is written.
    for where, (target_id, data) in zip(wheres, work, strict=True):
        errors = (
            operations.site_location_errors(data)
            if target_id is None
            else operations.edit_errors(existing[target_id], data)
        )
        for field, messages in errors.items():
            problems.append(f"{where}: {field}: {'; '.join(messages)}")
    if problems:
        raise ImportError_(problems)

    written = []
    for number, (target_id, data) in enumerate(work, start=1):
        if target_id is None:
            written.append(operations.create_target(actor, data, assess=False).id)
            report.created += 1
        else:
            target = existing[target_id]
            changes = _changed(target, data)
            if changes:
                written.append(operations.update_target(actor, target, changes, assess=False).id)
                report.updated += 1
            else:
                report.unchanged += 1
        if number % PROGRESS_ROWS == 0:
            say(f"  written {number:,} / {len(work):,}")
    # Risk for all of them at once: a few queries per 20,000 targets, not a few per target.
    db.session.flush()
    risk.assess_targets(actor, utcnow(), written, progress=say)
    return report


#: The column that knows a target again, by kind, when a row has no code.
KEY_COLUMNS = {"shop": "uscc", "site": "permit_no"}


def _natural_key(row: dict) -> tuple[str, str] | None:
    """(kind, uscc) of a shop row, (kind, permit number) of a site row, or None."""
    column = KEY_COLUMNS.get(str(row.get("kind", "")))
    if column is None or not row.get(column):
        return None
    return row["kind"], _key(row[column])


def _chunks(values: list, size: int = 500) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _load_targets(ids: list[uuid.UUID]) -> dict[uuid.UUID, Target]:
    """The targets with these ids, in a query per 500."""
    return {
        target.id: target
        for chunk in _chunks(ids)
        for target in db.session.scalars(sa.select(Target).where(Target.id.in_(chunk)))
    }


def _flatten(messages) -> list:
    if isinstance(messages, dict):
        return [f"{k}: {m}" for k, v in messages.items() for m in _flatten(v)]
    if isinstance(messages, list):
        return [m for item in messages for m in _flatten(item)]
    return [messages]
