"""Test fixtures: every test runs on SQLite and on PostgreSQL.

The PostgreSQL run uses ``FIELDAPP_TEST_DATABASE_URL`` (default: the local server) and creates
a throw-away database for the session. Where that server cannot be reached the PostgreSQL runs
are skipped with the reason, except under ``CI=true``, where that is an error.

Each test runs inside a transaction that is rolled back afterwards; the app's own commits
become savepoint releases, so views behave exactly as in production.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from fieldapp import create_app
from fieldapp.actor import Actor
from fieldapp.auth import operations as auth_ops
from fieldapp.auth.models import Role, User
from fieldapp.checklists import operations as checklist_ops
from fieldapp.checklists.models import Checklist
from fieldapp.db import db
from fieldapp.org import operations as org_ops
from fieldapp.org.models import District, Squadron
from fieldapp.targets import operations as target_ops
from fieldapp.targets.models import Target, TargetKind

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "fieldapp-demo"

FAST_PASSWORDS = {"PASSWORD_TIME_COST": 1, "PASSWORD_MEMORY_KIB": 64}


def square(lon: float, lat: float, size: float = 0.05) -> dict:
    """A square GeoJSON polygon with its south-west corner at (lon, lat)."""
    return {
        "type": "Polygon",
        "coordinates": [
            [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
        ],
    }


def rectangle(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> dict:
    """A GeoJSON polygon of the box between two corners (lon/lat)."""
    return {
        "type": "Polygon",
        "coordinates": [
            [
                [min_lon, min_lat],
                [max_lon, min_lat],
                [max_lon, max_lat],
                [min_lon, max_lat],
                [min_lon, min_lat],
            ]
        ],
    }


def _pg_admin_url() -> str:
    return os.environ.get("FIELDAPP_TEST_DATABASE_URL") or PG_DEFAULT


def _create_pg_database() -> tuple[str, sa.Engine] | None:
    from fieldapp.config import normalize_database_url

    admin_url = sa.make_url(normalize_database_url(_pg_admin_url()))
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            name = f"fieldapp_test_{uuid.uuid4().hex[:12]}"
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"CI needs PostgreSQL at {admin_url}: {exc}") from exc
        return None
    return admin_url.set(database=name).render_as_string(hide_password=False), engine


def drop_pg_database(admin: sa.Engine, *urls: str) -> None:
    """Drop the test databases at ``urls``, their connections with them; then ``admin``."""
    with admin.connect() as conn:
        for url in urls:
            name = sa.make_url(url).database
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@contextlib.contextmanager
def scratch_pg_database(purpose: str):
    """The URL of a fresh PostgreSQL database, dropped afterwards. Skips ``purpose``, saying
    so, where PostgreSQL cannot be reached (in CI that fails instead)."""
    created = _create_pg_database()
    if created is None:
        pytest.skip(f"PostgreSQL not reachable at {_pg_admin_url()}; {purpose} skipped")
    url, admin = created
    try:
        yield url
    finally:
        drop_pg_database(admin, url)


def migrated_app(url: str, instance):
    """A test app on the database at ``url``, migrated to the newest schema."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "TESTING": True,
            "STORAGE_DIR": str(instance / "photos"),
            **FAST_PASSWORDS,
        }
    )
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def app(backend, tmp_path_factory):
    """One migrated app per backend for the whole session."""
    instance = tmp_path_factory.mktemp(f"instance-{backend}")
    os.environ["FIELDAPP_INSTANCE_PATH"] = str(instance)
    created = None
    if backend == "sqlite":
        url = f"sqlite:///{instance / 'test.sqlite3'}"
    else:
        created = _create_pg_database()
        if created is None:
            pytest.skip(f"PostgreSQL not reachable at {_pg_admin_url()}; PostgreSQL runs skipped")
        url = created[0]
    app = migrated_app(url, instance)
    yield app
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    if created is not None:
        drop_pg_database(created[1], created[0])


@pytest.fixture
def isolated(app):
    """Run the test in a transaction that is rolled back at the end."""
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        connection = engine.connect()
        transaction = connection.begin()
        engines[None] = connection
        db.session.remove()
        db.session.configure(join_transaction_mode="create_savepoint")
    try:
        yield connection
    finally:
        with app.app_context():
            db.session.remove()
            transaction.rollback()
            connection.close()
            engines[None] = engine


@pytest.fixture
def ctx(app, isolated):
    """An app context inside the test's transaction, for calling operations directly."""
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app, isolated):
    return app.test_client()


@dataclass
class World:
    """A small district: two squadrons, the demo roles, a checklist per kind, a few targets."""

    district: District
    squadrons: list[Squadron]
    users: dict[str, User]
    checklists: dict[str, Checklist]
    targets: dict[str, Target] = field(default_factory=dict)


SYSTEM = Actor.for_system("test")


def build_world(app) -> World:
    settings = app.extensions["fieldapp.auth"]
    district = District(code="310113", name="宝山区")
    db.session.add(district)
    db.session.flush()
    squadrons = [
        org_ops.create_squadron(SYSTEM, district, "吴淞中队", square(121.45, 31.35)),
        org_ops.create_squadron(SYSTEM, district, "张庙中队", square(121.40, 31.30)),
    ]
    roster = {
        "admin": (Role.admin, None),
        "supervisor": (Role.supervisor, None),
        "leader1": (Role.leader, squadrons[0]),
        "officer1": (Role.officer, squadrons[0]),
        "officer2": (Role.officer, squadrons[0]),
        "leader2": (Role.leader, squadrons[1]),
        "officer3": (Role.officer, squadrons[1]),
    }
    users = {
        username: auth_ops.create_user(
            SYSTEM,
            settings,
            username=username,
            name=username,
            role=role,
            password=PASSWORD,
            district_id=district.id,
            squadron=squadron,
        )
        for username, (role, squadron) in roster.items()
    }
    checklists = {
        "shop": checklist_ops.create_checklist(
            SYSTEM,
            TargetKind.shop,
            "沿街商户市容环境检查表",
            [
                {"code": "S01", "text": "是否存在跨门经营", "severity": "moderate"},
                {"code": "S02", "text": "是否占道堆物", "severity": "moderate"},
                {"code": "S03", "text": "餐饮油烟是否直排", "severity": "severe"},
            ],
        ),
        "site": checklist_ops.create_checklist(
            SYSTEM,
            TargetKind.site,
            "建筑工地文明施工检查表",
            [
                {"code": "C01", "text": "围挡是否连续封闭", "severity": "moderate", "phases": []},
                {
                    "code": "C02",
                    "text": "裸土是否覆盖",
                    "severity": "severe",
                    "phases": ["earthwork"],
                },
            ],
        ),
    }
    world = World(district, squadrons, users, checklists)
    world.targets["shop1"] = target_ops.create_target(
        SYSTEM,
        {
            "kind": TargetKind.shop,
            "name": "老王面馆",
            "address": "淞滨路100号",
            "squadron_id": squadrons[0].id,
            "location": {"lon": 121.47, "lat": 31.37},
            "business_type": "catering",
            "uscc": "91310113MA1GL0A116",
        },
    )
    world.targets["shop2"] = target_ops.create_target(
        SYSTEM,
        {
            "kind": TargetKind.shop,
            "name": "鑫隆五金店",
            "address": "共康路8号",
            "squadron_id": squadrons[1].id,
            "location": {"lon": 121.42, "lat": 31.32},
            "business_type": "hardware",
        },
    )
    world.targets["site1"] = target_ops.create_target(
        SYSTEM,
        {
            "kind": TargetKind.site,
            "name": "宝山区吴淞地区住宅项目",
            "squadron_id": squadrons[0].id,
            "location": {"lon": 121.46, "lat": 31.36},
            "permit_no": "3101132024001",
            "scale": "large",
            "phase": "earthwork",
            "boundary": square(121.455, 31.355, 0.01),
        },
    )
    db.session.flush()
    return world


def detach_all() -> None:
    """Refresh and detach every loaded object, so its column values stay readable after the
    session closes (tests hold on to the world's rows)."""
    for obj in list(db.session.identity_map.values()):
        db.session.refresh(obj)
    db.session.expunge_all()


def committed_world(app):
    """For fixtures: yields ``(app, world)`` with the world built and committed (real commits,
    no per-test rollback), then closes the app's connections."""
    with app.app_context():
        world = build_world(app)
        db.session.commit()
        detach_all()
    yield app, world
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def pg_app(tmp_path_factory):
    """A PostgreSQL app of its own, with the world built and committed, for concurrency tests:
    real commits (no per-test rollback), because they test what other transactions see.
    Yields ``(app, world)``; the database is dropped afterwards."""
    with scratch_pg_database("concurrency test") as url:
        instance = tmp_path_factory.mktemp("concurrency")
        os.environ["FIELDAPP_INSTANCE_PATH"] = str(instance)
        yield from committed_world(migrated_app(url, instance))


def sign_in(app, username: str, device_id: str) -> Api:
    """A client of ``app`` signed in as ``username`` on ``device_id`` (its own test client)."""
    client = app.test_client()
    response = client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": PASSWORD, "device_id": device_id},
    )
    assert response.status_code == 201
    return Api(client, response.get_json()["token"], device_id)


@pytest.fixture
def world(app, isolated) -> World:
    with app.app_context():
        built = build_world(app)
        db.session.commit()
        detach_all()
    return built


class Api:
    """A test client that signs in as a user and sends its token."""

    def __init__(self, client, token: str | None = None, device_id: str | None = None):
        self.client = client
        self.token = token
        self.device_id = device_id

    def _headers(self, headers):
        merged = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        merged.update(headers or {})
        return merged

    def get(self, path, headers=None, **kw):
        return self.client.get(path, headers=self._headers(headers), **kw)

    def post(self, path, headers=None, **kw):
        return self.client.post(path, headers=self._headers(headers), **kw)

    def patch(self, path, headers=None, **kw):
        return self.client.patch(path, headers=self._headers(headers), **kw)

    def delete(self, path, headers=None, **kw):
        return self.client.delete(path, headers=self._headers(headers), **kw)

    def put(self, path, headers=None, **kw):
        return self.client.put(path, headers=self._headers(headers), **kw)


@pytest.fixture
def login(client, world):
    """``login("officer1")`` → an :class:`Api` signed in as that demo user on its own device."""

    def _login(username: str, device_id: str | None = None) -> Api:
        device_id = device_id or f"dev-{username}"
        response = client.post(
            "/api/v1/auth/token",
            json={"username": username, "password": PASSWORD, "device_id": device_id},
        )
        assert response.status_code == 201, response.json
        return Api(client, response.json["token"], device_id)

    return _login


#: An integer id that no row has: far past where any id sequence gets in a test run. (999 did
#: not do: PostgreSQL's sequences are never rewound when a test's rows are rolled back, so a
#: long enough run gives some test's own squadron that id.)
NO_SUCH_ID = 2_000_000_000


def assert_error(response, status: int, error: str) -> dict:
    """The answer is the API.md error envelope with this status and machine code."""
    assert response.status_code == status, (response.status_code, response.get_json())
    body = response.get_json()
    assert set(body) == {"code", "status", "error", "message", "errors"}, body
    assert body["code"] == status
    assert body["error"] == error
    assert body["status"] and body["message"]
    assert isinstance(body["errors"], dict), body
    return body


# -- small helpers shared by the API tests ---------------------------------------------------


def shop_payload(squadron_id: int, **overrides) -> dict:
    """A valid ``POST /api/v1/targets`` body for a shop."""
    return {
        "kind": "shop",
        "name": "阿强水果店",
        "address": "同济路66号",
        "squadron_id": squadron_id,
        "location": {"lon": 121.48, "lat": 31.38},
        "business_type": "retail",
        **overrides,
    }


def add_shop(api: Api, squadron_id: int, name: str) -> str:
    """A new shop of ``squadron_id`` added through the API (due for inspection at once); its
    id."""
    response = api.post(
        "/api/v1/targets", json=shop_payload(squadron_id, name=name, address=f"{name}路1号")
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def site_payload(squadron_id: int, **overrides) -> dict:
    """A valid ``POST /api/v1/targets`` body for a construction site."""
    return {
        "kind": "site",
        "name": "张庙街道商业综合体项目",
        "squadron_id": squadron_id,
        "location": {"lon": 121.43, "lat": 31.33},
        "permit_no": "3101132025017",
        "scale": "medium",
        "phase": "structure",
        "boundary": square(121.425, 31.325, 0.01),
        **overrides,
    }


def add_officer(login, squadron_id: int, username: str = "officer4") -> dict:
    """An admin adds an active officer to the squadron; the new user as answered."""
    response = login("admin").post(
        "/api/v1/users",
        json={
            "username": username,
            "name": username,
            "role": "officer",
            "password": "long-enough-pass",
            "squadron_id": squadron_id,
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def other_district(app) -> tuple[int, int]:
    """A second district (闵行区) with one squadron, committed; returns (district id, squadron
    id)."""
    with app.app_context():
        district = District(code="310112", name="闵行区")
        db.session.add(district)
        db.session.flush()
        squadron = Squadron(
            district_id=district.id, name="莘庄中队", jurisdiction=square(121.3, 31.1)
        )
        db.session.add(squadron)
        db.session.commit()
        return district.id, squadron.id


def etag_of(api: Api, path: str) -> str:
    """The ETag a GET of ``path`` answers (what a client sends back in ``If-Match``)."""
    response = api.get(path)
    assert response.status_code == 200, response.get_json()
    return response.headers["ETag"]


def move_target(api: Api, target_id, squadron_id: int) -> None:
    """``api`` (an admin's or leader's) files the target under another squadron, as a client
    does: PATCH with the ETag just read. Its open tasks, complaints and orders follow it."""
    path = f"/api/v1/targets/{target_id}"
    response = api.patch(
        path, json={"squadron_id": squadron_id}, headers={"If-Match": etag_of(api, path)}
    )
    assert response.status_code == 200, response.get_json()


#: The risk model's settings: read with an ETag, changed with If-Match.
RISK_SETTINGS = "/api/v1/risk/settings"


def patch_settings(api: Api, groups: dict, if_match: str | None = None):
    """``PATCH`` the risk settings as an admin's form does: with the ETag it read just before
    (or ``if_match``)."""
    etag = if_match if if_match is not None else etag_of(api, RISK_SETTINGS)
    return api.patch(RISK_SETTINGS, json=groups, headers={"If-Match": etag})


def audit_entries(app, **criteria) -> list:
    """Audit entries matching ``criteria`` (e.g. ``action="target.update"``), oldest first."""
    from fieldapp.audit.models import AuditEntry

    with app.app_context():
        entries = db.session.scalars(
            sa.select(AuditEntry).filter_by(**criteria).order_by(AuditEntry.seq)
        ).all()
        db.session.expunge_all()
    return entries


# -- racing requests on PostgreSQL (with ``pg_app``) ---------------------------------------------

#: Seconds a racing request may wait for the other at a meeting point.
RACE_WAIT = 20


def at_once(*calls) -> dict[str, object]:
    """Run each ``(name, function)`` in a thread of that name; their answers (or the
    exceptions they raised) by name. Patched code tells the racers apart by
    ``threading.current_thread().name``."""
    answers: dict[str, object] = {}

    def run(name, function):
        try:
            answers[name] = function()
        except BaseException as exc:  # surfaced by the caller
            answers[name] = exc

    threads = [threading.Thread(target=run, args=call, name=call[0]) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def status_of(answer) -> object:
    """An answer's status code, or the exception a racer raised."""
    return getattr(answer, "status_code", answer)


def waiting_on_a_lock() -> int:
    """How many sessions of the (PostgreSQL) test database wait on a lock right now."""
    with db.engine.connect() as connection:
        return connection.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


def until_there_or_waiting(there: threading.Event, timeout: float = RACE_WAIT) -> None:
    """Wait until the racing request is ``there`` (the point where the two meet), or until it
    waits on a lock, queued behind this request's (it will not get there before this one
    commits): whichever the code under test makes happen. A meeting point that holds both
    requests, as a barrier does, would stall the one that holds a lock the other needs."""
    deadline = time.monotonic() + timeout
    while not there.wait(0.02) and time.monotonic() < deadline:
        if waiting_on_a_lock():
            return


def paused_while_edited(monkeypatch, module, pause_in: str, request, edit) -> dict[str, object]:
    """Run ``request`` and ``edit`` at once (answers under "request" and "edit"). The request
    pauses as it calls ``module.<pause_in>`` (chosen as the point where it has read what it
    decides on) until the edit has answered, or until the edit waits on a lock the request
    holds: then the code under test makes the two take turns, as it should."""
    there, edited = threading.Event(), threading.Event()
    real = getattr(module, pause_in)

    def pause_then_run(*args, **kwargs):
        if threading.current_thread().name == "request" and not there.is_set():
            there.set()
            until_there_or_waiting(edited)
        return real(*args, **kwargs)

    def edit_once_paused():
        there.wait(RACE_WAIT)
        try:
            return edit()
        finally:
            edited.set()

    monkeypatch.setattr(module, pause_in, pause_then_run)
    try:
        return at_once(("request", request), ("edit", edit_once_paused))
    finally:
        monkeypatch.setattr(module, pause_in, real)
