"""fieldapp: the backend behind urban-management officers' handheld inspection devices."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from flask_migrate import Migrate

from fieldapp.config import ConfigError, load_config

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")

migrate = Migrate()


def create_app(config: dict | None = None) -> Flask:
    """Build the app. ``config`` overrides what the environment gives (tests use it).

    Raises :class:`ConfigError` with a clear message when a setting is unusable.
    """
    import fieldapp.models  # noqa: F401  (all tables on the metadata before anything queries)
    from fieldapp import logs
    from fieldapp.api import Api
    from fieldapp.auth.operations import AuthSettings
    from fieldapp.db import db
    from fieldapp.jsontext import JSONProvider
    from fieldapp.web import compression, requests

    instance_path = os.environ.get("FIELDAPP_INSTANCE_PATH") or None
    if instance_path is not None:
        instance_path = os.path.abspath(instance_path)
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.config.update(load_config(instance_path=app.instance_path))
    if config:
        app.config.update(config)
    logs.configure(app.config["LOG_LEVEL"])
    app.json = JSONProvider(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, compare_type=True, render_as_batch=True)
    settings = AuthSettings.from_config(app.config)
    try:
        settings.password_hasher.hash("start-up check")
    except Exception as exc:  # argon2 rejects unusable parameters only when it hashes
        raise ConfigError(f"password hashing settings are unusable: {exc}") from None
    app.extensions["fieldapp.auth"] = settings

    from fieldapp.photos.operations import PhotoSettings

    app.extensions["fieldapp.photos"] = PhotoSettings.from_config(app.config)

    api = Api()
    api.init_app(
        app,
        spec_kwargs={
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{"bearer": []}],
        },
    )
    _register_blueprints(api)
    app.extensions["fieldapp.api"] = api
    requests.init_app(app)
    compression.init_app(app)
    return app


def _register_blueprints(api) -> None:
    from fieldapp.api import API_PREFIX
    from fieldapp.audit.views import blp as audit_blp
    from fieldapp.auth.views import blp as auth_blp
    from fieldapp.checklists.views import blp as checklists_blp
    from fieldapp.checks.views import blp as checks_blp
    from fieldapp.complaints.views import blp as complaints_blp
    from fieldapp.draws.views import blp as draws_blp
    from fieldapp.inspections.views import blp as inspections_blp
    from fieldapp.org.views import blp as org_blp
    from fieldapp.photos.views import blp as photos_blp
    from fieldapp.reports.views import blp as reports_blp
    from fieldapp.risk.views import blp as risk_blp
    from fieldapp.schedule.views import blp as schedule_blp
    from fieldapp.supervision.views import blp as supervision_blp
    from fieldapp.syncing.views import blp as sync_blp
    from fieldapp.targets.views import blp as targets_blp
    from fieldapp.tasks.views import blp as tasks_blp
    from fieldapp.tracks.views import blp as tracks_blp
    from fieldapp.web.views import blp as web_blp

    for blp in (
        auth_blp,
        org_blp,
        targets_blp,
        checklists_blp,
        sync_blp,
        risk_blp,
        draws_blp,
        schedule_blp,
        complaints_blp,
        inspections_blp,
        tasks_blp,
        audit_blp,
        supervision_blp,
        reports_blp,
        photos_blp,
        checks_blp,
        tracks_blp,
    ):
        api.register_blueprint(blp, url_prefix=API_PREFIX)
    api.register_blueprint(web_blp)


__all__ = ["ConfigError", "create_app"]
