"""Builds the demo district: a Baoshan-like district with a year of history.

Everything is drawn from one ``random.Random(seed)``, so the same seed, scale and reference date
give the same district, row for row. Rows are written with bulk Core inserts in chunks, which
keeps the ``city`` scale (about 200,000 targets) to a few minutes.

Each target carries a hidden propensity to violate (its business type's base rate times a
log-normal individual factor). It is never stored: it only decides what inspections find, so
the history has real structure for risk scoring to discover, as a real district's would.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import shapely
import shapely.affinity
import sqlalchemy as sa
from shapely.geometry import LineString, Point, Polygon, box
from shapely.prepared import prep
from stdnum.cn import uscc as uscc_number

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.audit.models import AuditEntry
from fieldapp.auth.models import Role, User
from fieldapp.checklists.models import Checklist, ChecklistItem, ChecklistVersion
from fieldapp.complaints.models import Complaint
from fieldapp.db import change_counter, db
from fieldapp.demo import vocabulary as vocab
from fieldapp.draws import operations as draws_ops
from fieldapp.draws.operations import DRAW_TASK_DAYS
from fieldapp.errors import APIError
from fieldapp.inspections.models import (
    Case,
    Inspection,
    InspectionStatus,
    Outcome,
    inspection_officers,
)
from fieldapp.localtime import local_date
from fieldapp.org.models import District, JurisdictionVersion, Squadron
from fieldapp.risk import operations as risk
from fieldapp.risk.models import RiskLevelChange
from fieldapp.supervision.models import CaseReview, OrderStatus, SupervisionOrder, Verdict
from fieldapp.targets.models import Target, TargetKind
from fieldapp.targets.operations import code_for
from fieldapp.tasks import operations as tasks_ops
from fieldapp.tasks.models import Task, TaskStatus, task_assignees
from sync.entities import INSPECTION_FIELDS, inspection_wire
from sync.models import RecordVersion
from sync.sequence import allocate
from sync.versions import version_values

DEMO_PASSWORD = "fieldapp-demo"

#: Eighteen months of history: risk weights are set on the first twelve and tested on the last
#: six (bench/risk_eval.py).
HISTORY_DAYS = 548

DEFAULT_SEED = 20240325
# Baoshan's rough extent (WGS-84): the squadrons tile this box on a 4 x 3 grid.
EXTENT = (121.33, 31.29, 121.53, 31.51)
GRID_ROWS, GRID_COLS = 4, 3
CHUNK = 5000

#: Inspections started this close to the demo's date still wait for their leader's review; the
#: others were reviewed within a few days of their submission.
REVIEW_DAYS = 4

#: Sizes of generated streets and sites and offsets of inspection points (random draws far from
#: any check's threshold) turned into degrees with one mean figure: they are not measurements
#: (fieldapp.geo measures), and keeping the figure keeps a seed building the same district.
_METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class Scale:
    name: str
    shops: int
    sites: int
    officers_per_squadron: int
    #: Scales the per-target inspection rate; the city keeps history lighter per target.
    visit_factor: float
    #: Risk is assessed at the start of each of this many last months and of the draw's month
    #: (:func:`_draw_moment`), then on the demo's date, so levels have moved by the rules; the
    #: city assesses only at the draw and on the demo's date, to keep its build short.
    risk_months: int = 6


SCALES = {
    "small": Scale("small", shops=180, sites=24, officers_per_squadron=3, visit_factor=1.0),
    "district": Scale("district", shops=3000, sites=80, officers_per_squadron=8, visit_factor=1.0),
    "city": Scale(
        "city",
        shops=196_000,
        sites=4_300,
        officers_per_squadron=60,
        visit_factor=0.45,
        risk_months=0,
    ),
}


@dataclass
class Summary:
    scale: str
    seed: int
    as_of: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


Progress = Callable[[str], None]


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _chunks(rows: Iterable[dict], size: int = CHUNK) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- geography ---------------------------------------------------------------------------------


def jurisdiction_polygons(rng: random.Random) -> dict[tuple[int, int], Polygon]:
    """Contiguous squadron polygons: a grid whose shared vertices and edge midpoints are jittered
    once, so neighbours share their borders exactly and nothing overlaps or leaves a gap."""
    minlon, minlat, maxlon, maxlat = EXTENT
    dlon = (maxlon - minlon) / GRID_COLS
    dlat = (maxlat - minlat) / GRID_ROWS

    corners = {}
    for r in range(GRID_ROWS + 1):
        for c in range(GRID_COLS + 1):
            inner = 0 < r < GRID_ROWS and 0 < c < GRID_COLS
            jitter_lon = rng.uniform(-0.18, 0.18) * dlon if inner else 0.0
            jitter_lat = rng.uniform(-0.18, 0.18) * dlat if inner else 0.0
            # row 0 is the north edge
            corners[r, c] = (minlon + c * dlon + jitter_lon, maxlat - r * dlat + jitter_lat)

    midpoints: dict[tuple, tuple[float, float]] = {}

    def midpoint(a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float]:
        key = (min(a, b), max(a, b))
        if key not in midpoints:
            (x1, y1), (x2, y2) = corners[a], corners[b]
            on_border = (a[0] == b[0] and a[0] in (0, GRID_ROWS)) or (
                a[1] == b[1] and a[1] in (0, GRID_COLS)
            )
            # Bend interior borders sideways a little, like real streets and creeks do.
            bend = 0.0 if on_border else rng.uniform(-0.12, 0.12)
            nx, ny = -(y2 - y1), x2 - x1
            midpoints[key] = ((x1 + x2) / 2 + bend * nx, (y1 + y2) / 2 + bend * ny)
        return midpoints[key]

    polygons = {}
    for r in range(GRID_ROWS):
        for c in range(GRID_COLS):
            nw, ne, se, sw = (r, c), (r, c + 1), (r + 1, c + 1), (r + 1, c)
            ring = [
                corners[nw],
                midpoint(nw, ne),
                corners[ne],
                midpoint(ne, se),
                corners[se],
                midpoint(se, sw),
                corners[sw],
                midpoint(sw, nw),
                corners[nw],
            ]
            polygons[r, c] = shapely.set_precision(Polygon(ring), 1e-7)
    return polygons


def _point_in(rng: random.Random, polygon: Polygon, prepared) -> tuple[float, float]:
    minx, miny, maxx, maxy = polygon.bounds
    while True:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if prepared.contains(Point(x, y)):
            return x, y


def _streets(rng: random.Random, polygon: Polygon, prepared, roads: tuple[str, ...]) -> list:
    """A line inside the jurisdiction for each road name: shops line their street."""
    streets = []
    for road in roads:
        for _ in range(50):
            x, y = _point_in(rng, polygon, prepared)
            angle = rng.uniform(0, math.pi)
            half = rng.uniform(600, 1800) / _METRES_PER_DEGREE
            line = LineString(
                [
                    (
                        x - half * math.cos(angle) / math.cos(math.radians(y)),
                        y - half * math.sin(angle),
                    ),
                    (
                        x + half * math.cos(angle) / math.cos(math.radians(y)),
                        y + half * math.sin(angle),
                    ),
                ]
            ).intersection(polygon.buffer(-0.0005))
            if not line.is_empty and line.length > 0 and line.geom_type == "LineString":
                streets.append((road, line))
                break
    return streets


def _offset_metres(
    lon: float, lat: float, metres: float, rng: random.Random
) -> tuple[float, float]:
    angle = rng.uniform(0, 2 * math.pi)
    dlat = metres * math.sin(angle) / _METRES_PER_DEGREE
    dlon = metres * math.cos(angle) / (_METRES_PER_DEGREE * math.cos(math.radians(lat)))
    return lon + dlon, lat + dlat


def _site_boundary(lon: float, lat: float, half_metres: float, rng: random.Random) -> Polygon:
    w = half_metres * rng.uniform(0.7, 1.3) / (_METRES_PER_DEGREE * math.cos(math.radians(lat)))
    h = half_metres * rng.uniform(0.7, 1.3) / _METRES_PER_DEGREE
    return shapely.affinity.rotate(box(lon - w, lat - h, lon + w, lat + h), rng.uniform(0, 90))


# -- the build ---------------------------------------------------------------------------------


def _weighted(rng: random.Random, entries: tuple[dict, ...]) -> dict:
    return rng.choices(entries, weights=[e["weight"] for e in entries])[0]


def _name(rng: random.Random, surnames, given) -> str:
    return rng.choice(surnames) + rng.choice(given)


def _uscc(rng: random.Random, individual: bool) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = (
        ("92" if individual else "91") + "310113" + "".join(rng.choice(alphabet) for _ in range(9))
    )
    return body + uscc_number.calc_check_digit(body)


class DemoBuilder:
    """Writes one demo district into the app's database (which must be migrated and empty)."""

    def __init__(
        self,
        scale: Scale,
        seed: int = DEFAULT_SEED,
        as_of: date | None = None,
        progress: Progress | None = None,
    ):
        self.scale = scale
        self.seed = seed
        self.rng = random.Random(seed)
        self.as_of = as_of or datetime.now(UTC).date()
        self.end = datetime(self.as_of.year, self.as_of.month, self.as_of.day, tzinfo=UTC)
        self.start = self.end - timedelta(days=HISTORY_DAYS)
        self.progress = progress or (lambda message: None)
        self.password_hash = ""
        self.counts: dict[str, int] = {}
        #: The demo writes the audit entries of what it makes (tasks, draws, supervision).
        self.system = Actor.for_system("demo")
        self.seq = 0  # change sequence numbers handed out so far

    # The syncable rows get consecutive change numbers, as if written one after another.
    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _insert(self, table, rows: Iterable[dict], label: str, total: int | None = None) -> int:
        count = 0
        started = time.perf_counter()
        for chunk in _chunks(rows):
            db.session.execute(sa.insert(table), chunk)
            count += len(chunk)
            if total and total > CHUNK * 4 and count % (CHUNK * 10) == 0:
                self.progress(
                    f"  {label}: {count:,} / ~{total:,} ({time.perf_counter() - started:.0f}s)"
                )
        self.counts[label] = self.counts.get(label, 0) + count
        return count

    def build(self, password_hasher) -> Summary:
        started = time.perf_counter()
        self.password_hash = password_hasher.hash(DEMO_PASSWORD)
        rng = self.rng
        self.progress(
            f"building demo district: scale={self.scale.name} seed={self.seed} as of {self.as_of}"
        )

        district = District(code="310113", name="宝山区", created_at=self.start)
        db.session.add(district)
        db.session.flush()
        self.district_id = district.id

        polygons = jurisdiction_polygons(rng)
        self.squadrons = []
        for index, spec in enumerate(vocab.SQUADRONS, start=1):
            polygon = polygons[spec["grid"]]
            self.squadrons.append(
                {"id": index, "spec": spec, "polygon": polygon, "prepared": prep(polygon)}
            )
        self._insert(
            Squadron.__table__,
            (
                {
                    "id": s["id"],
                    "district_id": district.id,
                    "name": s["spec"]["name"],
                    "jurisdiction": {"type": "Polygon", "coordinates": _coords(s["polygon"])},
                    "min_lon": s["polygon"].bounds[0],
                    "min_lat": s["polygon"].bounds[1],
                    "max_lon": s["polygon"].bounds[2],
                    "max_lat": s["polygon"].bounds[3],
                    "created_at": self.start,
                    "updated_at": self.start,
                    "version": 1,
                    "change_seq": self._next_seq(),
                }
                for s in self.squadrons
            ),
            "squadrons",
        )
        # Their first drawings, in force from the start of the history (the checks judge
        # inspections by the drawing of their day).
        db.session.execute(
            sa.insert(JurisdictionVersion.__table__),
            [
                {
                    "squadron_id": s["id"],
                    "valid_from": self.start,
                    "jurisdiction": {"type": "Polygon", "coordinates": _coords(s["polygon"])},
                }
                for s in self.squadrons
            ],
        )
        self._users()
        self._checklists()
        self._targets()
        self._history()
        self._finish()
        self._risk()
        self._supervision()
        summary = Summary(self.scale.name, self.seed, self.as_of.isoformat(), self.counts)
        summary.seconds = time.perf_counter() - started
        audit.record(
            self.system,
            "demo.build",
            "district",
            district.id,
            after={
                "scale": summary.scale,
                "seed": self.seed,
                "as_of": summary.as_of,
                "counts": self.counts,
            },
        )
        return summary

    # -- people ------------------------------------------------------------------------------

    def _users(self) -> None:
        rng = self.rng
        rows = []

        def user(username: str, role: Role, squadron_id: int | None) -> dict:
            row = {
                "id": _uuid(rng),
                "username": username,
                "name": _name(rng, vocab.SURNAMES, vocab.GIVEN_NAMES),
                "role": role.value,
                "district_id": self.district_id,
                "squadron_id": squadron_id,
                "password_hash": self.password_hash,
                "active": True,
                "created_at": self.start,
                "updated_at": self.start,
                "version": 1,
                "change_seq": self._next_seq(),
            }
            rows.append(row)
            return row

        user("admin", Role.admin, None)
        user("supervisor", Role.supervisor, None)
        user("supervisor2", Role.supervisor, None)
        self.leaders: dict[int, dict] = {}
        self.desks: dict[uuid.UUID, str] = {}
        self.officers: dict[int, list[dict]] = {}
        for s in self.squadrons:
            sid = s["id"]
            leader_name = f"leader{sid}" if sid <= 2 else f"sq{sid:02d}.leader"
            self.leaders[sid] = user(leader_name, Role.leader, sid)
            # Leaders review at their desk: their versions name it, not an officer's pad.
            self.desks[self.leaders[sid]["id"]] = f"desk-{leader_name}"
            named = {1: ["officer1", "officer2"], 2: ["officer3"]}.get(sid, [])
            count = max(self.scale.officers_per_squadron, len(named) + 2)
            names = named + [
                f"sq{sid:02d}.officer{n:02d}" for n in range(len(named) + 1, count + 1)
            ]
            self.officers[sid] = [user(name, Role.officer, sid) for name in names]
        self._insert(User.__table__, rows, "users")

    # -- checklists --------------------------------------------------------------------------

    def _checklists(self) -> None:
        self.checklists = {}
        for checklist_id, (kind, spec) in enumerate(
            (("shop", vocab.SHOP_CHECKLIST), ("site", vocab.SITE_CHECKLIST)), start=1
        ):
            self._insert(
                Checklist.__table__,
                [
                    {
                        "id": checklist_id,
                        "kind": kind,
                        "title": spec["title"],
                        "active": True,
                        "created_at": self.start,
                        "updated_at": self.start,
                        "version": 1,
                        "change_seq": self._next_seq(),
                    }
                ],
                "checklists",
            )
            db.session.execute(
                sa.insert(ChecklistVersion.__table__),
                [
                    {
                        "checklist_id": checklist_id,
                        "version": 1,
                        "title": spec["title"],
                        "published_at": self.start,
                    }
                ],
            )
            self._insert(
                ChecklistItem.__table__,
                (
                    {
                        "checklist_id": checklist_id,
                        "checklist_version": 1,
                        "position": position,
                        "code": item["code"],
                        "text": item["text"],
                        "severity": item["severity"],
                        "phases": list(item.get("phases", ())) if kind == "site" else [],
                        "legal_basis": item.get("legal_basis", ""),
                    }
                    for position, item in enumerate(spec["items"])
                ),
                "checklist items",
            )
            self.checklists[kind] = {"id": checklist_id, "items": spec["items"]}

    # -- targets -----------------------------------------------------------------------------

    def _targets(self) -> None:
        rng = self.rng
        self.targets: list[dict] = []  # what the history needs to know about each target
        weights = [rng.uniform(0.7, 1.3) for _ in self.squadrons]
        total_weight = sum(weights)
        self.progress(f"placing {self.scale.shops:,} shops and {self.scale.sites:,} sites")

        shares = [int(self.scale.shops * w / total_weight) for w in weights]
        shares[0] += self.scale.shops - sum(shares)  # exactly the scale's number of shops

        def shop_rows() -> Iterator[dict]:
            for s, count in zip(self.squadrons, shares, strict=True):
                streets = _streets(rng, s["polygon"], s["prepared"], s["spec"]["roads"])
                numbers = {road: 1 for road, _ in streets}
                for _ in range(count):
                    road, line = rng.choice(streets)
                    for _attempt in range(20):
                        point = line.interpolate(rng.uniform(0, line.length))
                        lon, lat = _offset_metres(point.x, point.y, rng.uniform(8, 25), rng)
                        if s["prepared"].contains(Point(lon, lat)):
                            break
                    else:
                        lon, lat = _point_in(rng, s["polygon"], s["prepared"])
                    numbers[road] += rng.randint(1, 6)
                    business = _weighted(rng, vocab.BUSINESS_TYPES)
                    core = rng.choice(business["name_cores"])
                    prefix = rng.choice(vocab.NAME_PREFIXES) if rng.random() < 0.6 else ""
                    name = prefix + core + rng.choice(business["name_suffixes"])
                    # Most shops keep the rules and a few break them again and again (a
                    # heavy tail), as the 89% of Shanghai's shops at low risk suggest.
                    propensity = min(
                        0.85, business["base_violation_rate"] * rng.lognormvariate(-0.9, 1.1)
                    )
                    credit = _credit(rng, propensity / max(business["base_violation_rate"], 1e-6))
                    target_id = _uuid(rng)
                    created = self.start - timedelta(days=rng.randint(0, 2000))
                    if rng.random() < 0.06:  # opened during the history: new targets
                        created = self.start + timedelta(days=rng.randint(0, HISTORY_DAYS - 35))
                    self.targets.append(
                        {
                            "id": target_id,
                            "kind": "shop",
                            "squadron_id": s["id"],
                            "lon": lon,
                            "lat": lat,
                            "propensity": propensity,
                            "business_type": business["code"],
                            "phase": None,
                            "name": name,
                            "road": road,
                            "created": created,
                        }
                    )
                    yield {
                        "id": target_id,
                        "kind": "shop",
                        "code": code_for(target_id, "shop"),
                        "name": name,
                        "address": f"宝山区{road}{numbers[road]}号",
                        "squadron_id": s["id"],
                        "lon": round(lon, 7),
                        "lat": round(lat, 7),
                        "credit_class": credit,
                        "sensitive_surroundings": rng.random() < 0.08,
                        "business_type": business["code"],
                        "uscc": _uscc(rng, individual=rng.random() < 0.7),
                        "active": True,
                        "created_at": created,
                        "updated_at": max(created, self.start),
                        "version": 1,
                        "change_seq": self._next_seq(),
                    }

        self._insert(Target.__table__, shop_rows(), "shops", total=self.scale.shops)

        half_sizes = {"large": 160, "medium": 90, "small": 50, "micro": 25}

        def site_rows() -> Iterator[dict]:
            for n in range(self.scale.sites):
                s = self.squadrons[n % len(self.squadrons)]
                scale = _weighted(rng, vocab.SITE_SCALES)
                phase = _weighted(rng, vocab.SITE_PHASES)
                for _attempt in range(50):
                    lon, lat = _point_in(rng, s["polygon"], s["prepared"])
                    boundary = _site_boundary(lon, lat, half_sizes[scale["code"]], rng)
                    if s["prepared"].contains(boundary):
                        break
                template = rng.choice(vocab.SITE_PROJECT_TEMPLATES)
                plot = rng.choice([str(rng.randint(1, 60)), f"BSP0-{rng.randint(100, 2999):04d}"])
                name = template.format(
                    town=s["spec"]["town"], road=rng.choice(s["spec"]["roads"]), n=plot
                )
                propensity = min(
                    0.85,
                    0.18
                    * rng.lognormvariate(-0.3, 0.8)
                    * (1.3 if scale["code"] == "micro" else 1.0),
                )
                target_id = _uuid(rng)
                gate = boundary.exterior.interpolate(rng.uniform(0, boundary.exterior.length))
                self.targets.append(
                    {
                        "id": target_id,
                        "kind": "site",
                        "squadron_id": s["id"],
                        "lon": gate.x,
                        "lat": gate.y,
                        "propensity": propensity,
                        "business_type": None,
                        "phase": phase["code"],
                        "name": name,
                        "road": rng.choice(s["spec"]["roads"]),
                        "created": self.start - timedelta(days=rng.randint(0, 400)),
                    }
                )
                yield {
                    "id": target_id,
                    "kind": "site",
                    "code": code_for(target_id, "site"),
                    "name": name,
                    "address": f"宝山区{rng.choice(s['spec']['roads'])}{rng.randint(1, 3000)}号",
                    "squadron_id": s["id"],
                    "lon": round(gate.x, 7),
                    "lat": round(gate.y, 7),
                    "credit_class": _credit(rng, propensity / 0.18),
                    "sensitive_surroundings": rng.random() < 0.15,
                    "permit_no": f"31011320{rng.randint(23, 25)}{rng.randint(0, 9999):04d}01",
                    "scale": scale["code"],
                    "phase": phase["code"],
                    "boundary": {"type": "Polygon", "coordinates": _coords(boundary)},
                    "active": True,
                    "created_at": self.targets[-1]["created"],
                    "updated_at": self.start,
                    "version": 1,
                    "change_seq": self._next_seq(),
                }

        self._insert(Target.__table__, site_rows(), "sites", total=self.scale.sites)

    # -- a year of history -------------------------------------------------------------------

    def _history(self) -> None:
        rng = self.rng
        expected = sum(self._visit_rate(t) for t in self.targets)
        months = HISTORY_DAYS * 12 // 365
        self.progress(
            f"writing {months} months of history (about {int(expected * 1.4):,} inspections)"
        )
        inspections: list[dict] = []
        officer_rows: list[dict] = []
        complaints: list[dict] = []
        cases: list[dict] = []
        follow_up_tasks: list[dict] = []  # inspections carry their ids: written first
        tasks: list[dict] = []  # complaints' tasks: written after the complaints
        assignees: list[dict] = []
        case_numbers = self.case_numbers = iter(range(1, 10_000_000))
        tickets: dict[date, int] = {}  # 12345 ticket numbers handed out, by day
        written = 0
        started_at = time.perf_counter()

        def flush(force: bool = False) -> None:
            nonlocal written
            if force or len(inspections) >= CHUNK:
                # Parents first: inspections point at their follow-up tasks, cases and officers
                # at inspections, decided complaints at the inspection that checked them, tasks
                # at complaints. A follow-up task points back at the inspection that closed it:
                # written open, and closed once that inspection is there.
                _list_officers(inspections, officer_rows)
                # The tasks' entries, closings included, before the closings are set aside.
                audit.append(_task_entries(self.system, follow_up_tasks + tasks, assignees))
                closed = []
                for task in follow_up_tasks:
                    if task["closed_by_inspection_id"] is not None:
                        closed.append(
                            {
                                "b_id": task["id"],
                                "b_by": task["closed_by_inspection_id"],
                                "b_at": task["updated_at"],
                            }
                        )
                        task["closed_by_inspection_id"] = None
                for table, rows in (
                    (Task.__table__, follow_up_tasks),
                    (Inspection.__table__, inspections),
                    (inspection_officers, officer_rows),
                    (RecordVersion.__table__, _version_snapshots(inspections, self.desks)),
                    (Case.__table__, cases),
                    (Complaint.__table__, complaints),
                    (Task.__table__, tasks),
                    (task_assignees, assignees),
                ):
                    if rows:
                        db.session.execute(sa.insert(table), rows)
                if closed:
                    db.session.execute(_CLOSE_TASK, closed)
                for label, rows in (
                    ("inspections", inspections),
                    ("complaints", complaints),
                    ("cases", cases),
                    ("tasks", tasks + follow_up_tasks),
                ):
                    self.counts[label] = self.counts.get(label, 0) + len(rows)
                written += len(inspections)
                for rows in (
                    inspections,
                    officer_rows,
                    complaints,
                    cases,
                    follow_up_tasks,
                    tasks,
                    assignees,
                ):
                    rows.clear()

        reported = 0  # tenths of the targets
        for done, target in enumerate(self.targets, start=1):
            if done * 10 // len(self.targets) > reported:
                reported = done * 10 // len(self.targets)
                self.progress(
                    f"  {reported * 10}% of targets, {written + len(inspections):,} inspections"
                    f" ({time.perf_counter() - started_at:.0f}s)"
                )
            begin = max(self.start, target["created"])
            span = (self.end - begin).total_seconds()
            if span <= 0:
                continue
            visits = _poisson(rng, self._visit_rate(target) * span / (365 * 86400))
            moments = sorted(begin + timedelta(seconds=rng.uniform(0, span)) for _ in range(visits))
            # 12345 complaints: more where the target really misbehaves.
            complaint_rate = (0.15 + 3.0 * target["propensity"]) * self.scale.visit_factor
            for _ in range(_poisson(rng, complaint_rate * span / (365 * 86400))):
                received = begin + timedelta(seconds=rng.uniform(0, span))
                complaint = self._complaint(target, received, tickets)
                complaints.append(complaint)
                check_at = received + timedelta(hours=rng.uniform(4, 72))
                if self.end - received < timedelta(days=5) and rng.random() < 0.6:
                    check_at = self.end  # the squadron has not got round to it yet
                if check_at < self.end:
                    moments.append(check_at)
                    target.setdefault("complaint_visits", {})[check_at] = complaint
                else:  # not checked yet: an open task on the officers' devices
                    self._task(target, complaint, received, tasks, assignees)
            for moment in sorted(moments):
                complaint = target.get("complaint_visits", {}).get(moment)
                follow_up = self._inspection(
                    target,
                    moment,
                    "complaint" if complaint else None,
                    None,
                    inspections,
                    officer_rows,
                    cases,
                    case_numbers,
                    not_before=complaint["received_at"] if complaint else None,
                )
                if complaint is not None and follow_up["review_status"] == "approved":
                    # The leader decides the complaint on the check, as the approval of a
                    # complaint's check settles it (tasks.operations.settle_complaint).
                    self._decide(complaint, follow_up)
                # 复查: on approving a rectification order the leader sends officers back
                # around its deadline (a task, closed by the follow-up's approval). A returned
                # order is no order yet, and a pending one is not approved yet: none is sent.
                while follow_up["deadline"] is not None and follow_up["review_status"] == (
                    "approved"
                ):
                    dispatched = follow_up["reviewed_at"]
                    at = follow_up["deadline_at"] + timedelta(hours=rng.uniform(-48, 72))
                    task, pair = self._follow_up_task(target, follow_up, follow_up_tasks, assignees)
                    if at >= self.end:
                        break  # not done yet: the task stays open
                    follow_up = self._inspection(
                        target,
                        max(at, dispatched),
                        "task",
                        follow_up["id"],
                        inspections,
                        officer_rows,
                        cases,
                        case_numbers,
                        fixed_probability=0.85,
                        not_before=dispatched,
                        officers=pair,
                    )
                    inspections[-1]["task_id"] = task["id"]
                    if follow_up["review_status"] == "approved":  # 任务闭环
                        task.update(
                            status="done",
                            closed_at=follow_up["reviewed_at"],
                            closed_by_inspection_id=follow_up["id"],
                            updated_at=follow_up["reviewed_at"],
                            version=2,
                        )
            flush()
        flush(force=True)
        self._manual_tasks()

    def _decide(self, complaint: dict, check: dict) -> None:
        """The complaint closed on the approved ``check``, as the system decides it: by the
        approving leader, with a note, naming the inspection (complaints.decide_complaint)."""
        found = check["found_violation"]
        complaint.update(
            substantiated=found,
            closed_at=check["reviewed_at"],
            decided_by_id=check["reviewed_by_id"],
            decision_note="检查发现问题，投诉属实" if found else "检查未发现问题，投诉不属实",
            inspection_id=check["id"],
        )

    def _follow_up_task(
        self, target, order: dict, tasks: list, assignees: list
    ) -> tuple[dict, list[dict]]:
        """The 复查 task the leader sends with the approval of a rectification ``order``, and
        the officers it sends back by the deadline. Open; the follow-up's approval closes it."""
        rng = self.rng
        task_id = _uuid(rng)
        officers = self._officer_pair(target["squadron_id"])
        created = order["reviewed_at"]
        task = {
            "id": task_id,
            "target_id": target["id"],
            "squadron_id": target["squadron_id"],
            "origin": "manual",
            "status": "open",
            "due": max(order["deadline_at"], created + timedelta(days=1)),
            "note": f"整改复查（限期{order['deadline'].isoformat()}）",
            "complaint_id": None,
            "created_by_id": order["reviewed_by_id"],
            "created_at": created,
            "updated_at": created,
            "version": 1,
            "change_seq": self._next_seq(),
            "closed_at": None,
            "closed_by_inspection_id": None,
        }
        tasks.append(task)
        assignees.extend({"task_id": task_id, "user_id": o["id"]} for o in officers)
        return task, officers

    def _manual_tasks(self) -> None:
        """A few open tasks a leader dispatched by hand, so devices have work to pull."""
        rng = self.rng
        tasks, assignees = [], []
        by_squadron: dict[int, list[dict]] = {}
        for target in self.targets:
            by_squadron.setdefault(target["squadron_id"], []).append(target)
        notes = (
            "节前市容环境专项检查",
            "夜间施工许可核查",
            "店招店牌安全隐患排查",
            "垃圾分类专项检查",
        )
        for squadron_id, targets in sorted(by_squadron.items()):
            for target in rng.sample(targets, min(3, len(targets))):
                task_id = _uuid(rng)
                created = self.end - timedelta(days=rng.uniform(0.5, 4))
                tasks.append(
                    {
                        "id": task_id,
                        "target_id": target["id"],
                        "squadron_id": squadron_id,
                        "origin": "manual",
                        "status": "open",
                        "due": created + timedelta(days=rng.choice([2, 5, 7])),
                        "note": rng.choice(notes),
                        "complaint_id": None,
                        "created_by_id": self.leaders[squadron_id]["id"],
                        "created_at": created,
                        "updated_at": created,
                        "version": 1,
                        "change_seq": self._next_seq(),
                    }
                )
                assignees.extend(
                    {"task_id": task_id, "user_id": o["id"]}
                    for o in self._officer_pair(squadron_id)
                )
        self._insert(Task.__table__, tasks, "tasks")
        db.session.execute(sa.insert(task_assignees), assignees)
        audit.append(_task_entries(self.system, tasks, assignees))

    def _visit_rate(self, target: dict) -> float:
        """Inspections a year: by how the target would be graded, roughly as a district does."""
        p = target["propensity"]
        base = 6 + 30 * p if target["kind"] == "site" else 0.8 + 12 * p
        return base * self.scale.visit_factor

    def _officer_pair(self, squadron_id: int) -> list[dict]:
        officers = self.officers[squadron_id]
        if self.rng.random() < 0.04:  # a few lone inspections: the case-file review flags them
            return [self.rng.choice(officers)]
        return self.rng.sample(officers, 2)

    def _complaint(self, target: dict, received: datetime, tickets: dict[date, int]) -> dict:
        """An open 12345 complaint, with its hotline ticket number (工单号: the day, then a
        serial); :meth:`_decide` closes it."""
        rng = self.rng
        categories = [c for c in vocab.COMPLAINT_CATEGORIES if c["kind"] == target["kind"]]
        category = rng.choice(categories)
        day = local_date(received)
        tickets[day] = tickets.get(day, 0) + 1
        return {
            "id": _uuid(rng),
            "target_id": target["id"],
            "squadron_id": target["squadron_id"],
            "source": "12345",
            "reference": f"{day:%Y%m%d}{tickets[day]:05d}",
            "category": category["code"],
            "text": rng.choice(category["text_templates"]).format(
                name=target["name"], road=target["road"]
            ),
            "received_at": received,
            "substantiated": None,
            "closed_at": None,
            "decided_by_id": None,
            "decision_note": None,
            "inspection_id": None,
        }

    def _task(self, target, complaint, received, tasks, assignees) -> None:
        rng = self.rng
        task_id = _uuid(rng)
        pair = self._officer_pair(target["squadron_id"])
        tasks.append(
            {
                "id": task_id,
                "target_id": target["id"],
                "squadron_id": target["squadron_id"],
                "origin": "complaint",
                "status": "open",
                "due": received + timedelta(days=3),
                "note": "12345投诉核查：" + complaint["text"][:60],
                "complaint_id": complaint["id"],
                "created_by_id": self.leaders[target["squadron_id"]]["id"],
                "created_at": received,
                "updated_at": received,
                "version": 1,
                "change_seq": self._next_seq(),
            }
        )
        assignees.extend({"task_id": task_id, "user_id": officer["id"]} for officer in pair)

    def _inspection(
        self,
        target,
        started,
        origin,
        follow_up_of,
        inspections,
        officer_rows,
        cases,
        case_numbers,
        fixed_probability: float | None = None,
        not_before: datetime | None = None,
        officers: list[dict] | None = None,
    ) -> dict:
        """One submitted inspection of ``target`` on the day of ``started`` (after
        ``not_before``, the complaint or the task that sent the officers), by ``officers`` (a
        pair of the squadron's by default), with the times the workflow gives it: received and
        submitted by the first push, reviewed after that unless recent, its case opened by the
        approval. Appends the rows; returns what the history goes on with."""
        rng = self.rng
        kind = target["kind"]
        checklist = self.checklists[kind]
        inspection_id = _uuid(rng)
        started = started.replace(
            hour=rng.randint(0, 9), minute=rng.randint(0, 59), second=rng.randint(0, 59)
        )
        if started >= self.end:
            started = self.end - timedelta(hours=rng.uniform(1, 20))
        if not_before is not None and started <= not_before:
            # Sent by something that came in later that day: the officers went after it.
            gap = timedelta(minutes=rng.uniform(20, 180))
            started = not_before + min(gap, (self.end - not_before) / 2)
        ended = started + timedelta(minutes=rng.uniform(8, 45))
        if origin is None:
            origin = rng.choices(["scheduled", "patrol", "random"], weights=[60, 28, 12])[0]

        answers: dict[str, dict] = {}
        worst = None
        failed = []
        p = target["propensity"]
        if fixed_probability is not None:
            p = p * (1 - fixed_probability)
        for item in checklist["items"]:
            applies = (
                (not item.get("applies_to") or target["business_type"] in item["applies_to"])
                if kind == "shop"
                else target["phase"] in item.get("phases", ())
            )
            if not applies:
                answers[item["code"]] = {"result": "na", "note": "", "photo_ids": []}
                continue
            chance = p * {"minor": 0.45, "moderate": 0.3, "severe": 0.12}[item["severity"]]
            if rng.random() < chance:
                failed.append(item)
                answers[item["code"]] = {
                    "result": "fail",
                    "note": rng.choice(vocab.FINDING_NOTES[item["code"]]),
                    "photo_ids": [],
                }
                if worst is None or _SEVERITY_RANK[item["severity"]] > _SEVERITY_RANK[worst]:
                    worst = item["severity"]
            else:
                answers[item["code"]] = {"result": "pass", "note": "", "photo_ids": []}

        deadline = None
        legal_basis = None
        if worst is None:
            outcome = "compliant"
        elif worst == "minor":
            outcome = rng.choices(["corrected_on_site", "penalty_waived"], weights=[70, 30])[0]
        elif worst == "moderate":
            outcome = rng.choices(
                ["corrected_on_site", "rectification_ordered", "penalty_waived"],
                weights=[35, 55, 10],
            )[0]
        else:
            outcome = rng.choices(["case_opened", "rectification_ordered"], weights=[60, 40])[0]
        if outcome == "rectification_ordered":
            deadline = (ended + timedelta(days=rng.choice([3, 7, 15]))).date()
        if outcome == "penalty_waived":
            legal_basis = rng.choice(vocab.LEGAL_BASIS_WAIVER)
        elif failed:
            legal_basis = failed[0].get("legal_basis") or None

        leader = self.leaders[target["squadron_id"]]
        recent = self.end - started < timedelta(days=REVIEW_DAYS)
        review_status = (
            "pending" if recent else ("returned" if rng.random() < 0.015 else "approved")
        )
        if officers is None:
            officers = self._officer_pair(target["squadron_id"])
        far = rng.random() < 0.02  # a few records taken far from the door: flags to find
        lon, lat = _offset_metres(
            target["lon"], target["lat"], rng.uniform(300, 900) if far else rng.uniform(2, 30), rng
        )
        findings = "；".join(answers[item["code"]]["note"] for item in failed)
        # The first push creates the record already submitted (docs/review.md): the server
        # receives and submits it at once; the leader reviews it after that.
        received = ended + timedelta(minutes=rng.uniform(1, 240))
        reviewed = (
            None if review_status == "pending" else received + timedelta(hours=rng.uniform(2, 60))
        )
        inspections.append(
            {
                "id": inspection_id,
                "target_id": target["id"],
                "squadron_id": target["squadron_id"],
                "checklist_id": checklist["id"],
                "checklist_version": 1,
                "origin": origin,
                "task_id": None,
                "started_at": started,
                "ended_at": ended,
                "lon": round(lon, 7),
                "lat": round(lat, 7),
                "accuracy_m": round(
                    rng.uniform(4, 25) if rng.random() > 0.03 else rng.uniform(80, 300), 1
                ),
                "location_crs": "wgs84",
                "answers": answers,
                "findings": findings,
                "outcome": outcome,
                "rectification_deadline": deadline,
                "legal_basis": legal_basis,
                "follow_up_of": follow_up_of,
                "photo_ids": [],
                "status": "submitted",
                "review_status": review_status,
                "review_comment": "请补充现场照片及当事人陈述"
                if review_status == "returned"
                else None,
                "reviewed_by_id": None if review_status == "pending" else leader["id"],
                "reviewed_at": reviewed,
                "flags": [],
                "created_by_id": officers[0]["id"],
                "device_id": f"pad-{officers[0]['username']}",
                "received_at": received,
                "submitted_at": received,
                # Demo records are submitted once (a returned one waits for the officer still).
                "first_submitted_at": received,
                "updated_at": reviewed or received,
                "version": 2 if review_status != "pending" else 1,
                "change_seq": self._next_seq(),
            }
        )
        officer_rows.extend(
            {
                "inspection_id": inspection_id,
                "user_id": o["id"],
                "position": i,
                "squadron_id": target["squadron_id"],
            }
            for i, o in enumerate(officers)
        )
        if outcome == "case_opened":
            severe = [i for i in failed if i["severity"] == "severe"] or failed
            # 立案 is the leader's act: the approval opens the case, and only approved records
            # have one (the random draws happen either way, so the rest of the demo stays).
            closed = reviewed + timedelta(days=rng.uniform(15, 60)) if reviewed else None
            case = {
                "id": _uuid(rng),
                "target_id": target["id"],
                "squadron_id": target["squadron_id"],
                "inspection_id": inspection_id,
                "item_code": severe[0]["code"],
                "opened_at": reviewed,
                # Most cases are settled within two months; none before the demo's date.
                "closed_at": closed
                if closed is not None and rng.random() < 0.8 and closed < self.end
                else None,
                "fine_yuan": rng.choice([200, 500, 1000, 2000, 5000, 10000, 20000]),
                "summary": severe[0]["text"][:200],
            }
            if review_status == "approved":
                year = local_date(reviewed).year
                case["number"] = f"沪宝城管罚字〔{year}〕第{next(case_numbers):06d}号"
                cases.append(case)
        return {
            "id": inspection_id,
            "deadline": deadline,
            "deadline_at": datetime(deadline.year, deadline.month, deadline.day, 10, tzinfo=UTC)
            if deadline
            else None,
            "found_violation": bool(failed),
            "review_status": review_status,
            "reviewed_at": reviewed,
            "reviewed_by_id": leader["id"] if reviewed else None,
        }

    def _risk(self) -> None:
        """Assess the targets month by month over the last months of history (each from the
        first month-start after it was created), so levels have moved by the rules (with their
        history) by the demo's date; the squadrons draw (双随机) right after the assessment of
        :func:`_draw_moment`."""
        draw_at = _draw_moment(self.end)
        moments = _month_ends(self.start, self.end, self.scale.risk_months, draw_at)
        system = self.system

        def say(message: str) -> None:
            # Chunk by chunk where there are several (the city): a round takes minutes there.
            if len(self.targets) > risk.CHUNK:
                self.progress(f"  {message}")

        for n, moment in enumerate(moments, start=1):
            self.progress(f"assessing risk as of {moment.date()} ({n} of {len(moments)})")
            # Only the targets that exist by then: the system first assesses a target when it
            # is created, so none has a level (or a level change) from before that. All of
            # them (None) when all exist: a full recompute reads by id ranges, far cheaper.
            existing = [t["id"] for t in self.targets if t["created"] <= moment]
            summary = risk.assess_targets(
                system,
                moment,
                None if len(existing) == len(self.targets) else existing,
                progress=say,
            )
            if moment == draw_at:
                self.progress(f"drawing 双随机 as of {moment.date()}")
                self._draws(moment)
        self.counts["level changes"] = db.session.scalar(
            sa.select(sa.func.count()).select_from(RiskLevelChange)
        )
        for level, count in summary.by_level.items():
            self.counts[f"at {level.value} risk"] = count

    def _draws(self, moment: datetime) -> None:
        """双随机: each squadron draws its shops and its sites at ``moment`` from the levels as
        assessed then, the way a leader draws through the API (stored roster and seed, so the
        draw verifies); the drawn pairs inspect in the following weeks, their approvals close
        the draw's tasks (audited, as approvals close them), and what was approved is what the
        public page (一公开) shows."""
        rng = self.rng
        system = self.system
        targets = {str(t["id"]): t for t in self.targets}
        usernames = {
            str(o["id"]): o["username"] for officers in self.officers.values() for o in officers
        }
        inspections: list[dict] = []
        officer_rows: list[dict] = []
        cases: list[dict] = []
        closing: list[tuple[Task, dict]] = []
        draws = 0
        for squadron in self.squadrons:
            for kind in (TargetKind.shop, TargetKind.site):
                squadron_row = db.session.get(Squadron, squadron["id"])
                try:
                    draw = draws_ops.create_draw(
                        system,
                        kind,
                        [squadron_row],
                        self.district_id,
                        None,
                        rng.getrandbits(63),
                        moment,
                        new_id=lambda: _uuid(rng),
                    )
                except APIError:  # nothing of this kind here, or too few officers
                    continue
                draws += 1
                tasks = {
                    str(task.target_id): task
                    for task in db.session.scalars(sa.select(Task).where(Task.draw_id == draw.id))
                }
                for item in draw.targets:
                    started = moment + timedelta(days=rng.uniform(0.5, DRAW_TASK_DAYS - 2))
                    task = tasks.get(item["target_id"])
                    if task is None or started >= self.end:
                        continue  # no pair left, or not done yet: the task stays open
                    record = self._inspection(
                        targets[item["target_id"]],
                        started,
                        "random",
                        None,
                        inspections,
                        officer_rows,
                        cases,
                        self.case_numbers,
                    )
                    row = inspections[-1]
                    row.update(
                        draw_id=draw.id,
                        task_id=task.id,
                        created_by_id=uuid.UUID(item["officer_ids"][0]),
                        device_id=f"pad-{usernames[item['officer_ids'][0]]}",
                    )
                    # The drawn pair replaces the pair _inspection chose (its rows come last).
                    while officer_rows and officer_rows[-1]["inspection_id"] == record["id"]:
                        officer_rows.pop()
                    officer_rows.extend(
                        {
                            "inspection_id": record["id"],
                            "user_id": uuid.UUID(o),
                            "position": i,
                            "squadron_id": row["squadron_id"],
                        }
                        for i, o in enumerate(item["officer_ids"])
                    )
                    if row["review_status"] == "approved":
                        closing.append((task, row))
        if inspections:
            # The counter moved on with the assessments since the history was written.
            first = allocate(db.session, change_counter, len(inspections))
            for offset, row in enumerate(inspections):
                row["change_seq"] = first + offset
            _list_officers(inspections, officer_rows)
            db.session.execute(sa.insert(Inspection.__table__), inspections)
            db.session.execute(sa.insert(inspection_officers), officer_rows)
            db.session.execute(
                sa.insert(RecordVersion.__table__), _version_snapshots(inspections, self.desks)
            )
            if cases:
                db.session.execute(sa.insert(Case.__table__), cases)
        # 任务闭环: an approved inspection closes its task, with the entry close_task writes.
        # Not through close_task, whose flush and queries per task cost more than the whole
        # draw (the drawn pairs are officers of the target's squadron: there is no one
        # elsewhere for it to release); nor in one flush, which numbers the tasks in the
        # session's own order, not the same from one build to the next.
        if closing:
            first = allocate(db.session, change_counter, len(closing))
            db.session.execute(
                _CLOSE_DRAWN_TASK,
                [
                    {"b_id": task.id, "b_by": row["id"], "b_at": row["reviewed_at"], "b_seq": seq}
                    for seq, (task, row) in enumerate(closing, start=first)
                ],
            )
            audit.append([_close_entry(system, task.id, row["id"]) for task, row in closing])
            for task, _ in closing:
                db.session.expire(task)  # read again from the row if anything asks
        self.counts["draws"] = draws
        self.counts["drawn inspections"] = len(inspections)
        self.counts["inspections"] = self.counts.get("inspections", 0) + len(inspections)
        self.counts["cases"] = self.counts.get("cases", 0) + len(cases)

    def _supervision(self) -> None:
        """The supervisor's last weeks: case-file reviews of rectification orders, and
        supervision orders (督办单) to each squadron in every state (open and overdue, answered,
        closed).

        Each review and order is about an inspection the squadron had already sent in by then,
        as ``record_case_review`` and ``issue_order`` need it to exist: its latest rectification
        order by then, else its latest inspection (see :meth:`_supervised_inspection`), so that
        every squadron has its three orders; with no inspection at all, the order names one of
        its targets alone (and there is no case file to review)."""
        system = self.system
        supervisor = db.session.scalar(sa.select(User.id).where(User.username == "supervisor"))
        end = self.end
        states = [
            # (issued, deadline, status, answered, closed) in days before the demo's date; the
            # case review a day before the order. The open one is overdue.
            (10, 3, OrderStatus.open, None, None),
            (8, -5, OrderStatus.answered, 2, None),
            (20, 10, OrderStatus.closed, 12, 9),
        ]
        for s in self.squadrons:
            used: set[uuid.UUID] = set()
            leader = self.leaders[s["id"]]["id"]
            # The earliest first: it has the fewest inspections to choose from.
            for n, state in sorted(enumerate(states), key=lambda pair: -pair[1][0]):
                issued, deadline, status, answered, closed = state
                reviewed_at = end - timedelta(days=issued + 1)
                subject = self._supervised_inspection(s["id"], reviewed_at, used)
                if subject is not None:
                    used.add(subject.id)
                    inspection_id, target_id = subject.id, subject.target_id
                else:
                    inspection_id = None
                    target_id = db.session.scalar(
                        sa.select(Target.id)
                        .where(
                            Target.squadron_id == s["id"],
                            Target.created_at <= end - timedelta(days=issued),
                        )
                        .order_by(Target.created_at, Target.id)
                        .limit(1)
                    )
                    if target_id is None:
                        continue  # nothing in this squadron to supervise
                followed_up = (
                    subject is not None and subject.outcome is Outcome.rectification_ordered
                )
                records = []
                if subject is not None:
                    deficient = n == 0 and followed_up
                    records.append(
                        CaseReview(
                            inspection_id=inspection_id,
                            squadron_id=s["id"],
                            reviewer_id=supervisor,
                            verdict=Verdict.deficient if deficient else Verdict.compliant,
                            findings=[
                                {
                                    "code": "evidence_incomplete",
                                    "item_code": None,
                                    "text": "责令整改通知书未附现场照片",
                                }
                            ]
                            if deficient
                            else [],
                            comment="案卷评查",
                            created_at=reviewed_at,
                        )
                    )
                order = SupervisionOrder(
                    squadron_id=s["id"],
                    issued_by_id=supervisor,
                    inspection_id=inspection_id,
                    target_id=target_id,
                    text="群众反映该商户整改不到位, 请中队复查并于期限内回复"
                    if followed_up
                    else "请中队对该对象开展复查并于期限内回复",
                    deadline=end - timedelta(days=deadline),
                    status=status,
                    issued_at=end - timedelta(days=issued),
                    response="已复查, 商户已整改" if answered else None,
                    answered_by_id=leader if answered else None,
                    answered_at=end - timedelta(days=answered) if answered else None,
                    closed_at=end - timedelta(days=closed) if closed else None,
                )
                records.append(order)
                steps = [("issue", issued, supervisor, order.text)]
                steps += [("answer", answered, leader, order.response)] if answered else []
                steps += [("close", closed, supervisor, None)] if closed else []
                order.history = [
                    {"at": (end - timedelta(days=days)).isoformat(), "by": str(by),
                     "action": action, "text": text, "squadron_id": s["id"]}
                    for action, days, by, text in steps
                ]  # fmt: skip
                db.session.add_all(records)
                db.session.flush()
                for obj in records:
                    entity = "case_review" if isinstance(obj, CaseReview) else "supervision_order"
                    audit.record(
                        system, f"{entity}.demo", entity, obj.id, after=audit.snapshot(obj)
                    )
                    label = "case reviews" if entity == "case_review" else "supervision orders"
                    self.counts[label] = self.counts.get(label, 0) + 1

    def _supervised_inspection(self, squadron_id: int, before: datetime, used: set[uuid.UUID]):
        """The inspection a supervisor follows up at ``before``: the squadron's latest
        rectification order sent in by then, else its latest inspection of any outcome (a
        quiet squadron at small scale orders few rectifications); none of ``used``."""
        for outcome in (Inspection.outcome == Outcome.rectification_ordered, sa.true()):
            for row in db.session.execute(
                sa.select(Inspection.id, Inspection.target_id, Inspection.outcome)
                .where(
                    Inspection.squadron_id == squadron_id,
                    Inspection.status == InspectionStatus.submitted,
                    Inspection.received_at < before,
                    outcome,
                )
                .order_by(Inspection.received_at.desc(), Inspection.id)
                .limit(len(used) + 1)
            ):
                if row.id not in used:
                    return row
        return None

    def _finish(self) -> None:
        db.session.execute(
            sa.update(change_counter).where(change_counter.c.id == 1).values(value=self.seq)
        )
        if db.session.get_bind().dialect.name == "postgresql":
            # Core inserts with explicit ids leave the serial sequences behind.
            for table in ("districts", "squadrons", "checklists"):
                db.session.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                    )
                )


_SEVERITY_RANK = {"minor": 1, "moderate": 2, "severe": 3}


_INSPECTION_COLUMNS = tuple(c.key for c in Inspection.__table__.columns)

#: Closes a follow-up task once the inspection that closed it is written (the two point at
#: each other); ``updated_at`` given, or the column's ``onupdate`` would date it now.
_CLOSE_TASK = (
    sa.update(Task.__table__)
    .where(Task.__table__.c.id == sa.bindparam("b_id"))
    .values(closed_by_inspection_id=sa.bindparam("b_by"), updated_at=sa.bindparam("b_at"))
)

#: Closes a drawn task by its approval (dated by it, not by the column's ``onupdate``).
_CLOSE_DRAWN_TASK = (
    sa.update(Task.__table__)
    .where(Task.__table__.c.id == sa.bindparam("b_id"))
    .values(
        status=TaskStatus.done.value,
        closed_at=sa.bindparam("b_at"),
        closed_by_inspection_id=sa.bindparam("b_by"),
        updated_at=sa.bindparam("b_at"),
        version=Task.__table__.c.version + 1,
        change_seq=sa.bindparam("b_seq"),
    )
)


def _list_officers(inspections: list[dict], officer_rows: list[dict]) -> None:
    """Give each inspection row its officers' ids in order, from its link rows."""
    officers: dict = {}
    for row in sorted(officer_rows, key=lambda link: link["position"]):
        officers.setdefault(row["inspection_id"], []).append(str(row["user_id"]))
    for row in inspections:
        row["officer_ids"] = officers.get(row["id"], [])


def _version_snapshots(inspections: list[dict], desks: dict) -> list[dict]:
    """Each inspection's versions as the system writes them, so that devices merging a demo
    record they edited offline merge against what they pulled, and its history reads true:
    version 1 by the officer who recorded it, from their pad, when the server received it
    (every field the device sent); then, once reviewed, version 2 by the leader, from their
    own desk (``desks``: each leader's device), when they reviewed it (the review alone)."""
    snapshots = []
    for row in inspections:
        record = SimpleNamespace(**(dict.fromkeys(_INSPECTION_COLUMNS) | row))
        data = inspection_wire(record)
        reviewed = row["reviewed_by_id"] is not None
        created = data
        if reviewed:
            created = data | {
                "version": 1,
                "review": {"status": "pending", "comment": None, "reviewed_by": None,
                           "reviewed_at": None},
            }  # fmt: skip
        snapshots.append(
            version_values(
                "inspection",
                record,
                created,
                list(INSPECTION_FIELDS),
                user_id=row["created_by_id"],
                device_id=row["device_id"],
                at=row["received_at"],
                version=1,
            )
        )
        if reviewed:
            snapshots.append(
                version_values(
                    "inspection",
                    record,
                    data,
                    ["review"],
                    user_id=row["reviewed_by_id"],
                    device_id=desks[row["reviewed_by_id"]],
                    at=row["reviewed_at"],
                    version=2,
                )
            )
    return snapshots


def _task_entries(actor: Actor, tasks: list[dict], assignees: list[dict]) -> list[dict]:
    """The audit entries of task rows, as the system writes them: each task's creation
    (``task.create``) and, for those done, its closing by the inspection (``task.close``)."""
    officers: dict = {}
    for row in assignees:
        officers.setdefault(row["task_id"], []).append(row["user_id"])
    entries = []
    for row in tasks:
        task = SimpleNamespace(
            **({"draw_id": None} | row), assignee_ids=sorted(officers.get(row["id"], ()))
        )
        entries.append(tasks_ops.creation_entry(actor, task))
        if row["status"] == "done":
            entries.append(_close_entry(actor, row["id"], row["closed_by_inspection_id"]))
    return entries


def _close_entry(actor: Actor, task_id, inspection_id) -> dict:
    """The ``task.close`` entry of a task closed by an approval, as close_task writes it."""
    return audit.entry_values(
        actor,
        "task.close",
        "task",
        task_id,
        before={"status": TaskStatus.open.value},
        after={"status": TaskStatus.done.value, "closed_by_inspection_id": str(inspection_id)},
    )


def _draw_moment(end: datetime) -> datetime:
    """When the squadrons drew: the first of the latest month whose draw's tasks
    (``DRAW_TASK_DAYS``) and their review (``REVIEW_DAYS``) are over by ``end``, so the drawn
    pairs have inspected and the approved results are public, whatever the day of the month."""
    latest = end - timedelta(days=DRAW_TASK_DAYS + REVIEW_DAYS)
    return datetime(latest.year, latest.month, 1, tzinfo=UTC)


def _month_ends(start: datetime, end: datetime, months: int, draw_at: datetime) -> list[datetime]:
    """The first day of each of the last ``months`` months before ``end`` and ``draw_at``'s (the
    draw's month), in order, then ``end``."""
    moments, year, month = {draw_at}, end.year, end.month
    for _ in range(months):
        moments.add(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return [*sorted(m for m in moments if start < m < end), end]


def _credit(rng: random.Random, relative_risk: float) -> str:
    """Credit classes loosely follow behaviour: the worst offenders are more often C or D."""
    if relative_risk > 2.0:
        weights = [5, 45, 35, 15]
    elif relative_risk > 1.2:
        weights = [12, 60, 22, 6]
    else:
        weights = [30, 60, 8, 2]
    return rng.choices("ABCD", weights=weights)[0]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, product = math.exp(-lam), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k


def _coords(polygon: Polygon) -> list[list[list[float]]]:
    return [[[round(x, 7), round(y, 7)] for x, y in polygon.exterior.coords]]


def existing_demo(session) -> dict | None:
    """The summary of the demo already in this database, if there is one."""
    entry = session.scalar(
        sa.select(AuditEntry)
        .where(AuditEntry.action == "demo.build")
        .order_by(AuditEntry.seq.desc())
    )
    return entry.after if entry is not None else None
