"""A full recompute spread over worker processes decides exactly what one process decides.

The workers read committed data on their own connections, so these tests work on a demo
district committed to a database of their own (two copies of it), not inside the per-test
rollback the other tests use.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from fieldapp import create_app
from fieldapp.actor import Actor
from fieldapp.audit.models import AuditEntry
from fieldapp.db import db
from fieldapp.demo.builder import SCALES, DemoBuilder
from fieldapp.risk.models import RiskLevelChange, RiskSetting, TargetRisk
from fieldapp.risk.operations import assess_targets
from tests.conftest import FAST_PASSWORDS, _create_pg_database, _pg_admin_url, drop_pg_database

AS_OF = date(2026, 6, 30)
#: Four months on: severe findings have aged out of their floor, downgrades wait on inspections.
LATER = datetime.combine(AS_OF, time(9), tzinfo=UTC) + timedelta(days=120)
SYSTEM = Actor.for_system("test")


def _app(url: str):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, **FAST_PASSWORDS})


def _build_demo(url: str) -> None:
    app = _app(url)
    with app.app_context():
        upgrade()
        DemoBuilder(SCALES["small"], seed=11, as_of=AS_OF).build(
            app.extensions["fieldapp.auth"].password_hasher
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def two_demo_copies(backend, tmp_path):
    """Two databases holding the same committed demo district."""
    if backend == "sqlite":
        first, second = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
        _build_demo(f"sqlite:///{first}")
        with sqlite3.connect(first) as source, sqlite3.connect(second) as copy:
            source.backup(copy)
        yield f"sqlite:///{first}", f"sqlite:///{second}"
        return
    created = _create_pg_database()
    if created is None:
        pytest.skip(f"PostgreSQL not reachable at {_pg_admin_url()}; PostgreSQL runs skipped")
    first, admin = created
    _build_demo(first)
    second = sa.make_url(first).set(database=sa.make_url(first).database + "_copy")
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f'CREATE DATABASE "{second.database}" TEMPLATE "{sa.make_url(first).database}"'
        )
    second = second.render_as_string(hide_password=False)
    try:
        yield first, second
    finally:
        drop_pg_database(admin, first, second)


def _recompute(url: str, workers: int) -> dict:
    app = _app(url)
    with app.app_context():
        # Stricter thresholds: many targets move up, some now sit on a boundary.
        levels = db.session.get(RiskSetting, "levels")
        levels.value = {"medium": 20, "elevated": 35, "high": 55}
        db.session.commit()
        summary = assess_targets(SYSTEM, LATER, workers=workers, chunk_size=37)
        db.session.commit()
        risks = {
            str(r.target_id): (r.level, r.score, r.level_since, r.next_due, r.reason, r.digest)
            for r in db.session.scalars(sa.select(TargetRisk))
        }
        changes = sorted(
            (str(c.target_id), c.from_level, c.to_level, c.score, c.reason)
            for c in db.session.scalars(
                sa.select(RiskLevelChange).where(RiskLevelChange.at == LATER)
            )
        )
        audited = db.session.scalar(
            sa.select(sa.func.count()).where(
                AuditEntry.action == "risk.level_change", AuditEntry.actor_id.is_(None)
            )
        )
        db.session.remove()
        db.engine.dispose()
    return {"summary": summary, "risks": risks, "changes": changes, "audited": audited}


def test_workers_store_exactly_what_one_process_stores(two_demo_copies):
    alone = _recompute(two_demo_copies[0], workers=1)
    shared = _recompute(two_demo_copies[1], workers=2)
    # Something to agree on: levels moved, so the comparison is not between two no-ops.
    assert alone["summary"].level_changes > 0
    assert alone["summary"].changed > alone["summary"].level_changes
    assert shared["risks"] == alone["risks"]
    assert shared["changes"] == alone["changes"]
    assert len(shared["changes"]) == alone["summary"].level_changes
    assert shared["audited"] == alone["audited"]
    assert vars(shared["summary"]) == vars(alone["summary"])


def test_a_target_reassessed_meanwhile_is_not_overwritten_by_a_workers_stale_decision(
    app, ctx, world
):
    from fieldapp.risk.operations import ChunkResult, _drop_moved

    stored = {key: db.session.get(TargetRisk, world.targets[key].id) for key in ("shop1", "shop2")}
    result = ChunkResult()
    for risk in stored.values():
        result.updates.append({"target_id": risk.target_id, "level": risk.level})
        result.by_level[risk.level] += 1
    # The worker read shop1 one version ago; a request has re-assessed it since.
    result.seen = {
        str(stored["shop1"].target_id): stored["shop1"].version - 1,
        str(stored["shop2"].target_id): stored["shop2"].version,
    }
    moved = _drop_moved(result)
    assert moved == [str(stored["shop1"].target_id)]
    assert [row["target_id"] for row in result.updates] == [stored["shop2"].target_id]
    assert sum(result.by_level.values()) == 1
