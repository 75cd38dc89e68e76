"""The automatic case-file checks, computed for many inspections at once.

:func:`check_inspections` takes inspection ids (one, or a month of a district for the monthly
report) and returns each one's flags. It reads what the checks need in a few set queries (no
query per inspection), parses each target's boundary and each squadron's jurisdiction once and
prepares them (shapely), and measures distances in metres on the ground at the points' own
latitude (:mod:`fieldapp.geo`).
"""

from __future__ import annotations

import bisect
import itertools
import json
import operator
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import shapely
import sqlalchemy as sa
from shapely.geometry import Point, shape
from sqlalchemy.dialects import postgresql

from fieldapp.auth.models import User
from fieldapp.checks.models import ORDER, Flag, FlagCode
from fieldapp.db import db
from fieldapp.geo import LocalFrame, distance_m
from fieldapp.inspections.models import Inspection, InspectionStatus, inspection_officers
from fieldapp.inspections.operations import unsettled_order
from fieldapp.org.models import JurisdictionVersion, Squadron
from fieldapp.photos.models import Photo, PhotoUpload, UploadState
from fieldapp.targets.models import Target, TargetKind
from sync.models import ScopeExit

#: Ids per IN (...) list: well under SQLite's variable limit, and small plans on PostgreSQL.
CHUNK = 900


@dataclass(frozen=True)
class CheckSettings:
    """The thresholds (configuration; docs/evidence.md explains each)."""

    shop_distance_m: float = 150.0
    site_distance_m: float = 100.0
    jurisdiction_tolerance_m: float = 50.0
    max_accuracy_m: float = 50.0
    photo_distance_m: float = 200.0
    photo_time_margin: timedelta = timedelta(minutes=10)
    max_speed_kmh: float = 80.0
    travel_min_distance_m: float = 1000.0
    submission_delay: timedelta = timedelta(hours=24)
    local_zone: str = "Asia/Shanghai"

    @classmethod
    def from_config(cls, config) -> CheckSettings:
        return cls(
            shop_distance_m=config["CHECK_SHOP_DISTANCE_M"],
            site_distance_m=config["CHECK_SITE_DISTANCE_M"],
            jurisdiction_tolerance_m=config["CHECK_JURISDICTION_TOLERANCE_M"],
            max_accuracy_m=config["CHECK_MAX_ACCURACY_M"],
            photo_distance_m=config["CHECK_PHOTO_DISTANCE_M"],
            photo_time_margin=timedelta(minutes=config["CHECK_PHOTO_TIME_MARGIN_MINUTES"]),
            max_speed_kmh=config["CHECK_MAX_SPEED_KMH"],
            travel_min_distance_m=config["CHECK_TRAVEL_MIN_DISTANCE_M"],
            submission_delay=timedelta(hours=config["CHECK_SUBMISSION_HOURS"]),
            local_zone=config["LOCAL_TIMEZONE"],
        )


def metres_text(metres: float) -> str:
    """420 m, 1.2 km: distances as a person says them."""
    return f"{metres / 1000:.1f} km" if metres >= 1000 else f"{metres:.0f} m"


def shifted(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, held at the calendar's first or last instant rather than overflowing
    (devices may record any time of years 1 to 9999)."""
    try:
        return moment + delta
    except OverflowError:
        edge = datetime.max if delta > timedelta(0) else datetime.min
        return edge.replace(tzinfo=moment.tzinfo)


def duration_text(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes / 60
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


class _Ids:
    """Record ids as text while the checks run, turned into :class:`uuid.UUID` only at the end.

    Some 100,000 ids pass through a 10,000-inspection run; making a UUID object of each took
    a third of the time. On SQLite a UUID column is 32 hex characters already; on PostgreSQL
    the columns are read as text. Lookups still compare the uuid columns themselves (indexed),
    with the ids given as text and cast once.
    """

    def __init__(self):
        self.sqlite = db.session.get_bind().dialect.name == "sqlite"

    def col(self, column):
        """``column`` (a uuid column) read as text."""
        return sa.type_coerce(column, sa.String) if self.sqlite else sa.cast(column, sa.String)

    def raw(self, value: uuid.UUID) -> str:
        return value.hex if self.sqlite else str(value)

    def canon(self, raw) -> uuid.UUID | None:
        return None if raw is None else uuid.UUID(raw)

    def among(self, column, values: Sequence) -> sa.ColumnElement[bool]:
        """``column IN values`` for a uuid column and ids as text. On PostgreSQL one array
        parameter (``= ANY(...)``): the driver spends longer splitting a query with 900
        placeholders than the server takes to run it."""
        if self.sqlite:
            return sa.type_coerce(column, sa.String).in_(values)
        texts = sa.bindparam(None, list(values), type_=postgresql.ARRAY(sa.String))
        return column == sa.any_(sa.cast(texts, postgresql.ARRAY(sa.Uuid)))

    def chunks(self, values: Sequence) -> Iterable[Sequence]:
        """Pieces small enough for SQLite's parameter limit (PostgreSQL: arrays, any length)."""
        size = CHUNK if self.sqlite else 20_000
        for start in range(0, len(values), size):
            yield values[start : start + size]


def _chunks(ids: Sequence) -> Iterable[Sequence]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


# -- the facts the checks read -------------------------------------------------------------------


def _inspection_columns(ids: _Ids, now: datetime) -> tuple:
    """What the checks read of an inspection; JSON as text, parsed only where it matters.
    ``open_order``: a rectification order in force and unsettled as at ``now`` (each record as
    its history says it stood then), by the rule ``GET /rectifications`` lists them by
    (:func:`~fieldapp.inspections.operations.unsettled_order`)."""
    return (
        ids.col(Inspection.id).label("id"),
        ids.col(Inspection.target_id).label("target_id"),
        Inspection.squadron_id,
        Inspection.started_at,
        Inspection.ended_at,
        Inspection.lon,
        Inspection.lat,
        Inspection.accuracy_m,
        sa.cast(Inspection.answers, sa.Text).label("answers_text"),
        Inspection.outcome,
        Inspection.rectification_deadline,
        sa.cast(Inspection.photo_ids, sa.Text).label("photo_ids_text"),
        Inspection.status,
        Inspection.submitted_at,
        Inspection.first_submitted_at,
        sa.cast(Inspection.flags, sa.Text).label("flags_text"),
        unsettled_order(now).label("open_order"),
    )


_PHOTO_REFERENCE = re.compile(r'"photo_ids":\s*\["')


_ROW_FIELDS = (
    "id",
    "target_id",
    "squadron_id",
    "started_at",
    "ended_at",
    "lon",
    "lat",
    "accuracy_m",
    "outcome",
    "rectification_deadline",
    "status",
    "submitted_at",
    "first_submitted_at",
    "flags_text",
    "open_order",
)


class _Facts:
    """One inspection's row as plain attributes, its JSON parsed only where it matters."""

    __slots__ = (*_ROW_FIELDS, "answers", "photo_ids")

    def __init__(self, row):
        for name, value in zip(_ROW_FIELDS, operator.attrgetter(*_ROW_FIELDS)(row), strict=True):
            setattr(self, name, value)
        text = row.answers_text or "{}"
        # only failed items and photo references matter: most answers are never parsed
        parse = '"fail"' in text or _PHOTO_REFERENCE.search(text) is not None
        self.answers = json.loads(text) if parse else {}
        photos = row.photo_ids_text
        self.photo_ids = json.loads(photos) if photos and photos not in ("[]", "null") else []


class _Places:
    """Targets and squadrons, each geometry parsed and prepared once per run."""

    def __init__(self, ids: _Ids):
        self.ids = ids
        self.targets: dict[object, tuple] = {}
        #: Target id -> the squadron it is in now.
        self.target_squadrons: dict[object, int] = {}
        self.squadron_names: dict[int, str] = {}
        #: Inspection id -> the grounds it is judged by: (squadron id, key of the drawing in
        #: :attr:`drawings`), the squadron its target was in when it started first.
        self.drawing_of: dict[object, tuple[tuple[int, tuple[str, int]], ...]] = {}
        self.drawings: dict[tuple[str, int], object] = {}

    def load_targets(self, wanted: set) -> None:
        missing = [i for i in wanted if i not in self.targets]
        target_id = self.ids.col(Target.id)
        for chunk in self.ids.chunks(missing):
            rows = db.session.execute(
                sa.select(
                    target_id.label("id"),
                    Target.kind,
                    Target.name,
                    Target.lon,
                    Target.lat,
                    Target.boundary,
                    Target.squadron_id,
                ).where(self.ids.among(Target.id, chunk))
            )
            for row in rows:
                boundary = None
                if row.boundary:
                    frame = LocalFrame(row.lon, row.lat)
                    boundary = (frame, frame.geometry(shape(row.boundary)))
                    shapely.prepare(boundary[1])
                self.targets[row.id] = (row.kind, row.name, row.lon, row.lat, boundary)
                self.target_squadrons[row.id] = row.squadron_id

    def squadrons_at_start(self, rows: list[_Facts]) -> dict[object, int]:
        """For each inspection of ``rows``, the squadron its target was in when it started.

        An inspection is filed in its target's squadron, but not always the one of when it
        started: one begun offline before its target moved (an admin's move, or a redraw the
        target followed) is filed, in good faith, in the squadron the target moved to
        (``sync.entities._target_left_after``), whose ground may never have covered the
        place. The target's moves are read from its scope exits (one query per chunk of the
        batch's targets, :class:`sync.models.ScopeExit`): at time T the target was in the
        squadron of its earliest exit after T, or, with none, in its squadron now (the
        inspection's own squadron for a target the run did not load).

        The limit: a scope exit is kept per squadron, the latest. A target that left a
        squadron, came back and left it again has lost its first exit, and the time before it
        reads as spent in the squadron of the next exit kept. :meth:`load_jurisdictions`
        therefore also accepts the ground of the squadron the inspection is filed in, right
        for every inspection filed while its target was there."""
        exits: dict[object, list[tuple[datetime, int]]] = defaultdict(list)
        record_id = self.ids.col(ScopeExit.record_id)
        wanted = list({r.target_id for r in rows if r.target_id is not None and r.started_at})
        for chunk in self.ids.chunks(wanted):
            for target_id, squadron_id, left_at in db.session.execute(
                sa.select(record_id, ScopeExit.squadron_id, ScopeExit.left_at).where(
                    ScopeExit.entity == "target", self.ids.among(ScopeExit.record_id, chunk)
                )
            ):
                exits[target_id].append((left_at, squadron_id))
        for moves in exits.values():
            moves.sort()
        found = {}
        for row in rows:
            now_in = self.target_squadrons.get(row.target_id, row.squadron_id)
            moves = exits.get(row.target_id)
            if not moves or row.started_at is None:
                found[row.id] = now_in
                continue
            after = bisect.bisect_right(moves, row.started_at, key=operator.itemgetter(0))
            found[row.id] = moves[after][1] if after < len(moves) else now_in
        return found

    def load_jurisdictions(self, rows: list[_Facts]) -> None:
        """For each inspection of ``rows``, the grounds it is judged by: the jurisdiction of
        the squadron its target was in when it started (:meth:`squadrons_at_start`), and of
        the squadron it is filed in where that is another, each as the squadron had it then
        (the drawing in force at ``started_at``; the first one for an inspection that claims
        to have started before it). A boundary moved since does not flag inspections made on
        the ground as it was, nor does a target moved since to another squadron.

        A few queries for any number of rows (the targets' exits, names, the squadrons'
        timelines without their polygons, the drawings in use), each drawing parsed and
        prepared once. Expects :meth:`load_targets` to have loaded the rows' targets."""
        at_start = self.squadrons_at_start(rows)
        judged_by = {r.id: tuple(dict.fromkeys((at_start[r.id], r.squadron_id))) for r in rows}
        squadron_ids = list({s for squadrons in judged_by.values() for s in squadrons})
        if not squadron_ids:
            return
        self.squadron_names.update(
            db.session.execute(
                sa.select(Squadron.id, Squadron.name).where(Squadron.id.in_(squadron_ids))
            ).all()
        )
        timelines: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
        for version in db.session.execute(
            sa.select(
                JurisdictionVersion.id,
                JurisdictionVersion.squadron_id,
                JurisdictionVersion.valid_from,
            )
            .where(JurisdictionVersion.squadron_id.in_(squadron_ids))
            .order_by(
                JurisdictionVersion.squadron_id,
                JurisdictionVersion.valid_from,
                JurisdictionVersion.id,
            )
        ):
            starts, version_ids = timelines[version.squadron_id]
            starts.append(version.valid_from)
            version_ids.append(version.id)
        undrawn = set()  # squadrons written without a timeline: their current polygon
        for row in rows:
            grounds = []
            for squadron_id in judged_by[row.id]:
                starts, version_ids = timelines.get(squadron_id, ((), ()))
                if not version_ids:
                    undrawn.add(squadron_id)
                    grounds.append((squadron_id, ("squadron", squadron_id)))
                    continue
                after = (
                    bisect.bisect_right(starts, row.started_at) if row.started_at else len(starts)
                )
                grounds.append((squadron_id, ("version", version_ids[max(after - 1, 0)])))
            self.drawing_of[row.id] = tuple(grounds)
        in_use = {
            key
            for grounds in self.drawing_of.values()
            for _, (kind, key) in grounds
            if kind == "version"
        }
        for chunk in _chunks(list(in_use)):
            for version_id, geojson in db.session.execute(
                sa.select(JurisdictionVersion.id, JurisdictionVersion.jurisdiction).where(
                    JurisdictionVersion.id.in_(chunk)
                )
            ):
                self.drawings["version", version_id] = _prepared(geojson)
        if undrawn:
            for squadron_id, geojson in db.session.execute(
                sa.select(Squadron.id, Squadron.jurisdiction).where(Squadron.id.in_(undrawn))
            ):
                self.drawings["squadron", squadron_id] = _prepared(geojson)

    def jurisdictions(self, row: _Facts) -> list[tuple[int, str, object]]:
        """(squadron id, name, prepared polygon) of each ground :meth:`load_jurisdictions`
        found for ``row``, the squadron of the target when it started first; those with no
        drawing left out."""
        found = []
        for squadron_id, key in self.drawing_of.get(row.id, ()):
            drawing = self.drawings.get(key)
            if drawing is not None:
                found.append((squadron_id, self.squadron_names[squadron_id], drawing))
        return found


def _prepared(geojson: dict | None):
    if not geojson:
        return None
    polygon = shape(geojson)
    shapely.prepare(polygon)
    return polygon


def _officers(ids: _Ids, found_ids: Sequence) -> dict[object, list[tuple[object, str]]]:
    """Each inspection's officers in order, as (user id, name)."""
    pairs: list[tuple[object, object]] = []
    inspection_id = ids.col(inspection_officers.c.inspection_id)
    for chunk in ids.chunks(found_ids):
        pairs.extend(
            db.session.execute(
                sa.select(inspection_id, ids.col(inspection_officers.c.user_id))
                .where(ids.among(inspection_officers.c.inspection_id, chunk))
                .order_by(inspection_id, inspection_officers.c.position)
            ).all()
        )
    names: dict[object, str] = {}
    for chunk in ids.chunks(list({user_id for _, user_id in pairs})):
        names.update(
            db.session.execute(
                sa.select(ids.col(User.id), User.name).where(ids.among(User.id, chunk))
            ).all()
        )
    found: dict[object, list] = defaultdict(list)
    for inspection, user_id in pairs:
        found[inspection].append((user_id, names.get(user_id, "?")))
    return found


@dataclass(frozen=True, slots=True)
class _Photo:
    """What the checks know of one photo: its metadata (if synced), whether its bytes are
    stored, and what their EXIF says. The same whichever inspections are checked with it."""

    id: str  # as inspections name it: lowercase, with hyphens
    #: The inspection its metadata names (as the run's ids are written), None without metadata.
    inspection_id: object | None
    item_code: str | None
    taken_at: datetime | None
    lon: float | None
    lat: float | None
    uploaded: bool
    exif_taken_at: datetime | None
    exif_lon: float | None
    exif_lat: float | None


def _known_by(column, now: datetime) -> sa.ColumnElement[bool]:
    """The server had this fact by ``now`` (``column``: when it arrived, a server time; rows
    from before the column was written have none and count as known all along)."""
    return sa.or_(column.is_(None), column <= now)


def _photo_query(ids: _Ids, now: datetime) -> sa.Select:
    """Photo metadata that had arrived by ``now``, with the EXIF facts of the upload if it was
    stored by then (outer join: not all are uploaded)."""
    return (
        sa.select(
            Photo.id,
            ids.col(Photo.inspection_id).label("inspection_id"),
            Photo.item_code,
            Photo.taken_at,
            Photo.lon,
            Photo.lat,
            sa.and_(Photo.uploaded, _known_by(Photo.uploaded_at, now)).label("uploaded"),
            PhotoUpload.id.label("stored_id"),
            PhotoUpload.exif_taken_at,
            PhotoUpload.exif_lon,
            PhotoUpload.exif_lat,
        )
        .outerjoin(
            PhotoUpload,
            sa.and_(
                PhotoUpload.id == Photo.id,
                PhotoUpload.state == UploadState.stored,
                _known_by(PhotoUpload.stored_at, now),
            ),
        )
        .where(Photo.created_at <= now)
    )


def _from_metadata(row) -> _Photo:
    return _Photo(
        str(row.id),
        row.inspection_id,
        row.item_code,
        row.taken_at,
        row.lon,
        row.lat,
        bool(row.uploaded or row.stored_id is not None),
        row.exif_taken_at,
        row.exif_lon,
        row.exif_lat,
    )


def _photos(
    ids: _Ids, rows: Sequence[_Facts], now: datetime
) -> tuple[dict[object, list], dict[str, _Photo]]:
    """The photos of the inspections in ``rows`` as the server knew them at ``now``:
    (inspection id -> the photos whose metadata names it, photo id -> facts of every photo
    those inspections claim or name).

    An inspection's case file is every photo its metadata claims and every photo it names
    (top-level or in an answer), metadata or not: a photo named by a follow-up but claimed by
    the first inspection, or uploaded before its metadata arrives, is judged by the same facts
    whichever other inspections are checked with it (one run or one inspection at a time).
    """
    claimed: dict[object, list] = defaultdict(list)
    by_id: dict[str, _Photo] = {}
    for chunk in ids.chunks([r.id for r in rows]):
        for row in db.session.execute(
            _photo_query(ids, now).where(ids.among(Photo.inspection_id, chunk))
        ):
            photo = _from_metadata(row)
            claimed[row.inspection_id].append(photo)
            by_id[photo.id] = photo
    named: set[uuid.UUID] = set()
    for row in rows:
        if row.photo_ids or row.answers:
            for value in _referenced_photos(row) - by_id.keys():
                try:
                    named.add(uuid.UUID(value))
                except ValueError:  # not an id: it names nothing, and stays "not uploaded"
                    continue
    for chunk in _chunks(sorted(named)):
        for row in db.session.execute(_photo_query(ids, now).where(Photo.id.in_(chunk))):
            photo = _from_metadata(row)
            by_id[photo.id] = photo
    without_metadata = [i for i in named if str(i) not in by_id]
    for chunk in _chunks(sorted(without_metadata)):
        for row in db.session.execute(
            sa.select(
                PhotoUpload.id,
                PhotoUpload.exif_taken_at,
                PhotoUpload.exif_lon,
                PhotoUpload.exif_lat,
            ).where(
                PhotoUpload.id.in_(chunk),
                PhotoUpload.state == UploadState.stored,
                _known_by(PhotoUpload.stored_at, now),
            )
        ):
            photo_id = str(row.id)
            by_id[photo_id] = _Photo(photo_id, None, None, None, None, None, True, *row[1:])
    return claimed, by_id


def _case_file(row, claimed: list, by_id: dict[str, _Photo]) -> tuple[list[_Photo], list[str]]:
    """The photos of one inspection: (those the server knows of, ids named but unknown)."""
    photos = {p.id: p for p in claimed}
    unknown = []
    for photo_id in _referenced_photos(row) - photos.keys():
        if photo_id in by_id:
            photos[photo_id] = by_id[photo_id]
        else:
            unknown.append(photo_id)
    return list(photos.values()), unknown


def _unreadable(ids: _Ids, wanted: set, readable: sa.ColumnElement[bool] | None) -> set:
    """Those of ``wanted`` (inspection ids) outside ``readable`` (none when it is None)."""
    if readable is None or not wanted:
        return set()
    seen: set = set()
    for chunk in ids.chunks(sorted(wanted)):
        seen.update(
            db.session.scalars(
                sa.select(ids.col(Inspection.id)).where(ids.among(Inspection.id, chunk), readable)
            )
        )
    return wanted - seen


def _previous_inspections(ids: _Ids, rows, officers) -> dict[tuple, object]:
    """For each (inspection, officer): that officer's inspection just before it (by start).

    Reads every inspection of the officers concerned from a day before the earliest one to the
    latest one, in one query per chunk of officers, and walks each officer's day in order.
    """
    officer_ids = sorted({o for pairs in officers.values() for o, _ in pairs})
    if not officer_ids or not rows:
        return {}
    earliest = shifted(min(r.started_at for r in rows), -timedelta(days=1))
    latest = max(r.started_at for r in rows)
    by_officer: dict[object, list] = defaultdict(list)
    user_id = ids.col(inspection_officers.c.user_id)
    for chunk in ids.chunks(officer_ids):
        found = db.session.execute(
            sa.select(
                user_id.label("user_id"),
                ids.col(Inspection.id).label("id"),
                ids.col(Inspection.target_id).label("target_id"),
                Inspection.started_at,
                Inspection.ended_at,
                Inspection.lon,
                Inspection.lat,
            )
            .join(Inspection, Inspection.id == inspection_officers.c.inspection_id)
            .where(
                ids.among(inspection_officers.c.user_id, chunk),
                Inspection.started_at >= earliest,
                Inspection.started_at <= latest,
            )
        )
        for row in found:
            by_officer[row.user_id].append(row)
    previous = {}
    for officer_id, visits in by_officer.items():
        visits.sort(key=lambda v: (v.started_at, str(v.id)))
        for before, after in itertools.pairwise(visits):
            previous[after.id, officer_id] = before
    return previous


# -- the checks ----------------------------------------------------------------------------------


def check_inspections(
    inspection_ids: Iterable[uuid.UUID],
    settings: CheckSettings,
    now: datetime,
    *,
    readable: sa.ColumnElement[bool] | None = None,
) -> dict[uuid.UUID, list[Flag]]:
    """Every flag of every inspection in ``inspection_ids``, in the order of :class:`FlagCode`.

    Judged as at ``now``: deadlines and delays count to it, and the records that arrive after
    an inspection and settle its flags count only if the server had them by then (a follow-up
    inspection, and the rectification order itself, by where its review stood then, from its
    version history: :func:`~fieldapp.inspections.operations.in_force_as_at`; a photo's
    metadata by its ``created_at``, its bytes by their ``stored_at``). Asked with the current
    time that is everything; the monthly report asks with the month's end, so a report made
    again later counts what the month ended with rather than follow-ups, reviews and uploads
    that came after it.

    Ids that name no inspection are left out of the answer. Callers scope the ids; this
    function reads what it needs regardless of who asks (a previous inspection by the same
    officer may lie in another squadron, and travel between them still counts). What it says
    of those other inspections is scoped by ``readable``, a WHERE clause on
    :class:`Inspection` selecting those the caller may read (``Policy.readable``): an
    ``impossible_travel`` flag whose previous inspection lies outside it keeps its times and
    distance but names neither that inspection nor its target. ``None`` (the monthly report,
    which shows counts only): every inspection may be named.
    """
    ids = _Ids()
    wanted = [ids.raw(i) for i in dict.fromkeys(inspection_ids)]
    columns = _inspection_columns(ids, now)
    rows = []
    for chunk in ids.chunks(wanted):
        found = db.session.execute(sa.select(*columns).where(ids.among(Inspection.id, chunk)))
        rows.extend(_Facts(row) for row in found)
    places = _Places(ids)
    places.load_targets({r.target_id for r in rows})
    places.load_jurisdictions(rows)
    found_ids = [r.id for r in rows]
    officers = _officers(ids, found_ids)
    claimed, known_photos = _photos(ids, rows, now)
    previous = _previous_inspections(ids, rows, officers)
    other_targets = {v.target_id for v in previous.values()}
    places.load_targets(other_targets)
    before_rows = {
        previous[row.id, officer].id
        for row in rows
        for officer, _ in officers.get(row.id, [])
        if (row.id, officer) in previous
    }
    unnamed = _unreadable(ids, before_rows, readable)
    zone = ZoneInfo(settings.local_zone)
    today = now.astimezone(zone).date()

    result: dict[uuid.UUID, list[Flag]] = {}
    for row in rows:
        context = _Context(row, settings, places, zone, ids, now)
        own = claimed.get(row.id, [])
        photos, unknown = _case_file(row, own, known_photos)
        flags = [
            *_single_officer(row, officers.get(row.id, [])),
            *context.location_flags(),
            *context.photo_flags(photos),
            *_missing_photos(row, own),
            *_photos_missing_upload(photos, unknown),
            *_late_submission(row, settings, now),
            *_rectification_overdue(row, today),
            *context.travel_flags(officers.get(row.id, []), previous, unnamed),
            *_clock_skew(row),
        ]
        flags.sort(key=lambda f: ORDER[f.flag])
        result[ids.canon(row.id)] = flags
    return result


def count_flags(flags_by_inspection: dict[uuid.UUID, list[Flag]]) -> Counter:
    """How many inspections raised each flag (for the monthly report)."""
    return Counter(flag.flag.value for flags in flags_by_inspection.values() for flag in flags)


class _Context:
    def __init__(
        self,
        row,
        settings: CheckSettings,
        places: _Places,
        zone: ZoneInfo,
        ids: _Ids,
        now: datetime,
    ):
        self.ids = ids
        self.row = row
        self.settings = settings
        self.places = places
        self.zone = zone
        self.now = now

    def _local(self, moment: datetime, *, year: bool = False) -> str:
        try:
            return moment.astimezone(self.zone).strftime(("%Y-" if year else "") + "%m-%d %H:%M")
        except OverflowError:  # past the calendar's end in local time: say it in UTC
            return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

    def location_flags(self) -> list[Flag]:
        row, settings = self.row, self.settings
        flags = []
        target = self.places.targets.get(row.target_id)
        if target is not None:
            kind, name, lon, lat, boundary = target
            if kind is TargetKind.site and boundary is not None:
                frame, polygon = boundary
                metres = shapely.distance(polygon, Point(frame.xy(row.lon, row.lat)))
                limit, where = settings.site_distance_m, "outside the site's boundary"
            else:
                metres = distance_m(row.lon, row.lat, lon, lat)
                limit = (
                    settings.shop_distance_m
                    if kind is TargetKind.shop
                    else settings.site_distance_m
                )
                where = f"from the {'shop' if kind is TargetKind.shop else 'site'}"
            if metres > limit:
                flags.append(
                    Flag(
                        FlagCode.location_far_from_target,
                        f"inspection point {metres_text(metres)} {where} ({name}); "
                        f"the limit is {metres_text(limit)}",
                        {"distance_m": round(metres, 1), "limit_m": limit},
                    )
                )
        outside = []  # (metres, squadron id, name), one per ground the point is not on
        for squadron_id, name, polygon in self.places.jurisdictions(row):
            if shapely.contains_xy(polygon, row.lon, row.lat):
                break
            frame = LocalFrame(row.lon, row.lat)
            metres = shapely.distance(frame.geometry(polygon), Point(0.0, 0.0))
            if metres <= settings.jurisdiction_tolerance_m:
                break
            outside.append((metres, squadron_id, name))
        else:
            if outside:
                metres, squadron_id, name = min(outside, key=operator.itemgetter(0))
                flags.append(
                    Flag(
                        FlagCode.outside_jurisdiction,
                        f"inspection point {metres_text(metres)} outside the jurisdiction "
                        f"of {name}",
                        {"distance_m": round(metres, 1), "squadron_id": squadron_id},
                    )
                )
        if row.accuracy_m is not None and row.accuracy_m > settings.max_accuracy_m:
            flags.append(
                Flag(
                    FlagCode.low_accuracy,
                    f"GPS accuracy {row.accuracy_m:.0f} m when the point was taken; "
                    f"the limit is {settings.max_accuracy_m:.0f} m",
                    {"accuracy_m": row.accuracy_m, "limit_m": settings.max_accuracy_m},
                )
            )
        return flags

    def photo_flags(self, photos: list[_Photo]) -> list[Flag]:
        row, settings = self.row, self.settings
        far, early_late = [], []
        # An inspection not ended yet (a draft synced while it is under way) lasts until now:
        # its start alone would put every photo after the first minutes outside it.
        ended = row.ended_at or max(row.started_at, self.now)
        start = shifted(row.started_at, -settings.photo_time_margin)
        end = shifted(ended, settings.photo_time_margin)
        for photo in sorted(photos, key=lambda p: str(p.id)):
            lon, lat, source = photo.exif_lon, photo.exif_lat, "camera GPS"
            if lon is None:
                lon, lat, source = photo.lon, photo.lat, "device"
            if lon is not None:
                metres = distance_m(lon, lat, row.lon, row.lat)
                if metres > settings.photo_distance_m:
                    far.append((metres, photo.id, source))
            taken = photo.exif_taken_at or photo.taken_at
            if taken is not None and not (start <= taken <= end):
                early_late.append((taken, photo.id))
        flags = []
        if far:
            metres, photo_id, source = max(far)
            more = f"; {len(far)} photos over the limit" if len(far) > 1 else ""
            flags.append(
                Flag(
                    FlagCode.photo_location_mismatch,
                    f"photo {str(photo_id)[:8]} taken {metres_text(metres)} from the inspection "
                    f"point ({source}); the limit is {metres_text(settings.photo_distance_m)}"
                    + more,
                    {
                        "photo_ids": [str(p) for _, p, _ in far],
                        "max_distance_m": round(metres, 1),
                        "limit_m": settings.photo_distance_m,
                    },
                )
            )
        if early_late:
            taken, photo_id = early_late[0]
            # Both with their year: without, a photo from a year before at the same hour
            # would read as taken inside the window.
            window = f"{self._local(row.started_at, year=True)}–" + (
                self._local(row.ended_at) if row.ended_at else "now, not ended yet"
            )
            more = f"; {len(early_late)} photos outside it" if len(early_late) > 1 else ""
            when = self._local(taken, year=True)
            flags.append(
                Flag(
                    FlagCode.photo_time_outside_inspection,
                    f"photo {str(photo_id)[:8]} taken at {when}, outside the "
                    f"inspection ({window}, ±{duration_text(settings.photo_time_margin)})" + more,
                    {"photo_ids": [str(p) for _, p in early_late]},
                )
            )
        return flags

    def travel_flags(self, officers: list, previous: dict, unnamed: set) -> list[Flag]:
        """The officers' fastest move from their previous inspection to this one, if too fast.
        A previous inspection in ``unnamed`` (out of the caller's reading scope) is described
        by its times and distance only: API.md, another squadron's records are not shown."""
        row, settings = self.row, self.settings
        worst = None
        for officer_id, officer_name in officers:
            before = previous.get((row.id, officer_id))
            if before is None:
                continue
            metres = distance_m(before.lon, before.lat, row.lon, row.lat)
            if metres < settings.travel_min_distance_m:
                continue
            left = before.ended_at or before.started_at
            seconds = (row.started_at - left).total_seconds()
            speed = float("inf") if seconds <= 0 else metres / seconds * 3.6
            if speed > settings.max_speed_kmh and (worst is None or speed > worst[0]):
                worst = (speed, officer_name, before, metres, seconds)
        if worst is None:
            return []
        speed, officer_name, before, metres, seconds = worst
        left = before.ended_at or before.started_at
        hidden = before.id in unnamed
        target = None if hidden else self.places.targets.get(before.target_id)
        if hidden:
            where = "an inspection in another squadron"
        else:
            where = target[1] if target else "the previous target"
        pace = (
            "while that inspection was still under way"
            if seconds <= 0
            else f"{duration_text(timedelta(seconds=seconds))} later, {speed:.0f} km/h"
        )
        return [
            Flag(
                FlagCode.impossible_travel,
                f"{officer_name} was at {where} until {self._local(left)}, "
                f"{metres_text(metres)} away, and started here {pace}; "
                f"the limit is {settings.max_speed_kmh:.0f} km/h",
                {
                    "previous_inspection_id": None if hidden else str(self.ids.canon(before.id)),
                    "distance_m": round(metres, 1),
                    "seconds": seconds,
                    "speed_kmh": None if seconds <= 0 else round(speed, 1),
                },
            )
        ]


def _single_officer(row, officers: list) -> list[Flag]:
    if len(officers) >= 2:
        return []
    names = ", ".join(name for _, name in officers) or "nobody"
    return [
        Flag(
            FlagCode.single_officer,
            f"only {len(officers)} officer recorded ({names}); an inspection needs two (双人执法)",
            {"officers": len(officers)},
        )
    ]


def _failed_items(answers: dict) -> list[tuple[str, dict]]:
    return sorted(
        (code, answer)
        for code, answer in (answers or {}).items()
        if isinstance(answer, dict) and answer.get("result") == "fail"
    )


def _missing_photos(row, claimed: list[_Photo]) -> list[Flag]:
    """Failed items without a photo: none named in the answer, and none whose metadata names
    the item (``item_code``, API.md's photo metadata) for this inspection."""
    photographed = {p.item_code for p in claimed if p.item_code}
    bare = [
        code
        for code, answer in _failed_items(row.answers)
        if not answer.get("photo_ids") and code not in photographed
    ]
    if not bare:
        return []
    return [
        Flag(
            FlagCode.missing_photos,
            f"item{'s' if len(bare) > 1 else ''} {', '.join(bare)} failed without a photo",
            {"items": bare},
        )
    ]


def _referenced_photos(row) -> set[str]:
    referenced = {str(p) for p in row.photo_ids}
    for answer in (row.answers or {}).values():
        if isinstance(answer, dict):
            referenced.update(str(p) for p in answer.get("photo_ids") or [])
    return referenced


def _photos_missing_upload(photos: list[_Photo], unknown: list[str]) -> list[Flag]:
    """Photos of the case file whose bytes have not arrived: claimed by metadata or named by
    the inspection, and not stored."""
    missing = sorted([p.id for p in photos if not p.uploaded] + unknown)
    if not missing:
        return []
    total = len(photos) + len(unknown)
    return [
        Flag(
            FlagCode.photos_missing_upload,
            f"{len(missing)} of {total} photos are not uploaded yet: "
            + ", ".join(p[:8] for p in missing[:5])
            + ("…" if len(missing) > 5 else ""),
            {"photo_ids": missing},
        )
    ]


def _late_submission(row, settings: CheckSettings, now: datetime) -> list[Flag]:
    ended = row.ended_at or row.started_at
    limit = settings.submission_delay
    # The first submission counts: a resubmission after the leader returned the record comes
    # as late as the leader's review, which is not the officer's delay.
    submitted = row.first_submitted_at or row.submitted_at
    if row.status is InspectionStatus.submitted and submitted is not None:
        delay = submitted - ended
        if delay > limit:
            again = row.submitted_at is not None and row.submitted_at != submitted
            return [
                Flag(
                    FlagCode.late_submission,
                    f"{'first ' if again else ''}submitted {duration_text(delay)} after the "
                    f"inspection ended; the limit is {duration_text(limit)}",
                    {"delay_hours": round(delay.total_seconds() / 3600, 1)},
                )
            ]
    elif row.status is InspectionStatus.draft and now - ended > limit:
        delay = now - ended
        return [
            Flag(
                FlagCode.late_submission,
                f"still not submitted {duration_text(delay)} after the inspection; "
                f"the limit is {duration_text(limit)}",
                {"delay_hours": round(delay.total_seconds() / 3600, 1), "submitted": False},
            )
        ]
    return []


def _rectification_overdue(row, today) -> list[Flag]:
    """An order in force, unsettled (``open_order``) and past its deadline: a draft or a
    returned order orders nothing yet, and a draft or returned follow-up settles nothing."""
    if not row.open_order or row.rectification_deadline is None:
        return []
    if row.rectification_deadline >= today:
        return []
    days = (today - row.rectification_deadline).days
    return [
        Flag(
            FlagCode.rectification_overdue,
            f"rectification deadline {row.rectification_deadline.isoformat()} passed "
            f"{days} day{'s' if days != 1 else ''} ago with no follow-up inspection (复查)",
            {"deadline": row.rectification_deadline.isoformat(), "days_overdue": days},
        )
    ]


def _clock_skew(row) -> list[Flag]:
    if '"clock_skew"' not in (row.flags_text or ""):
        return []
    return [
        Flag(
            FlagCode.clock_skew,
            "a device clock ran more than 60 s ahead of the server's when this record was "
            "pushed; its times were clamped to the server's",
            {},
        )
    ]
