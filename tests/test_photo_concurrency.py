"""Concurrent uploads of one photo on PostgreSQL, with real commits (no per-test rollback):
the same bytes from several devices store one photo; different bytes store exactly one of
them and leave nothing of the others."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from fieldapp import create_app
from fieldapp.db import db
from fieldapp.photos.models import PhotoUpload
from tests.conftest import (
    FAST_PASSWORDS,
    PASSWORD,
    Api,
    _create_pg_database,
    _pg_admin_url,
    build_world,
    detach_all,
)
from tests.evidence_helpers import make_image, put_photo, sha

UPLOADERS = 4


@pytest.fixture(scope="module")
def pg_app(tmp_path_factory):
    created = _create_pg_database()
    if created is None:
        pytest.skip(f"PostgreSQL not reachable at {_pg_admin_url()}; concurrency test skipped")
    url, admin = created
    instance = tmp_path_factory.mktemp("photo-concurrency")
    os.environ["FIELDAPP_INSTANCE_PATH"] = str(instance)
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
        build_world(app)
        db.session.commit()
        detach_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)')
    admin.dispose()


def signed_in(app, device_id: str) -> Api:
    client = app.test_client()
    response = client.post(
        "/api/v1/auth/token",
        json={"username": "officer1", "password": PASSWORD, "device_id": device_id},
    )
    assert response.status_code == 201
    return Api(client, response.get_json()["token"], device_id)


def race(app, photo_id, payloads: list[bytes]) -> list[int]:
    apis = [signed_in(app, f"race-{n}") for n in range(len(payloads))]
    start = threading.Barrier(len(payloads))
    statuses: list[int] = [0] * len(payloads)
    errors: list[BaseException] = []

    def upload(n: int):
        try:
            start.wait(timeout=30)
            statuses[n] = put_photo(apis[n], photo_id, payloads[n]).status_code
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return statuses


def test_the_same_photo_from_several_devices_at_once_is_stored_once(pg_app):
    data = make_image(1600, 1200)
    photo_id = uuid.uuid4()
    statuses = race(pg_app, photo_id, [data] * UPLOADERS)
    assert sorted(statuses) == [200] * (UPLOADERS - 1) + [201]
    with pg_app.app_context():
        upload = db.session.get(PhotoUpload, photo_id)
        assert upload.sha256 == sha(data) and upload.size == len(data)


def test_different_bytes_at_once_keep_exactly_one_and_nothing_of_the_rest(pg_app):
    payloads = [make_image(800 + 16 * n, 600) for n in range(UPLOADERS)]
    photo_id = uuid.uuid4()
    statuses = race(pg_app, photo_id, payloads)
    assert sorted(statuses) == [201] + [409] * (UPLOADERS - 1)
    winner = payloads[statuses.index(201)]
    with pg_app.app_context():
        assert db.session.get(PhotoUpload, photo_id).sha256 == sha(winner)
    originals = Path(pg_app.config["STORAGE_DIR"]) / "originals"
    stored = {p.name for p in originals.rglob("*") if p.is_file()}
    assert sha(winner) in stored
    assert not {sha(p) for p in payloads if p is not winner} & stored
    assert not list((Path(pg_app.config["STORAGE_DIR"]) / "staging").iterdir())


def test_two_parts_at_the_same_offset_at_once_append_once(pg_app):
    from tests.evidence_helpers import patch_part

    data = make_image(2400, 1800, quality=95)
    photo_id = uuid.uuid4()
    first = signed_in(pg_app, "resume-0")
    length = {"Upload-Length": str(len(data))}
    head = put_photo(first, photo_id, data[:1000], digest=sha(data), headers=length)
    assert head.status_code == 202
    apis = [first, signed_in(pg_app, "resume-1")]
    start = threading.Barrier(2)
    statuses: list[int] = [0, 0]
    errors: list[BaseException] = []

    def send(n: int):
        try:
            start.wait(timeout=30)
            statuses[n] = patch_part(apis[n], photo_id, 1000, data[1000:]).status_code
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(statuses) == [201, 409]
    with pg_app.app_context():
        upload = db.session.get(PhotoUpload, photo_id)
        assert upload.sha256 == sha(data) and upload.size == len(data)
