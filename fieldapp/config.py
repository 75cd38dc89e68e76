"""Configuration from the environment.

Everything fieldapp needs to start comes from ``FIELDAPP_*`` variables with working defaults:
an SQLite file and a photo store in the instance folder, and a secret key generated once and
kept there. A value that is present but wrong stops start-up with a :class:`ConfigError` that
names the variable, rather than failing later in a request.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from fieldapp import jsontext


class ConfigError(RuntimeError):
    """A configuration value that fieldapp cannot start with."""


_SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def normalize_database_url(url: str, *, variable: str = "FIELDAPP_DATABASE_URL") -> str:
    """Check a database URL and pick the psycopg 3 driver for PostgreSQL URLs."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"{variable}={url!r} is not a database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend not in _SUPPORTED_BACKENDS:
        raise ConfigError(
            f"{variable}={url!r}: database {backend!r} is not supported; "
            "use sqlite:///path/to/file.sqlite3 or postgresql://user@host/dbname"
        )
    if backend == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        _check_sqlite_file(parsed.database, url, variable)
    return parsed.render_as_string(hide_password=False)


def _check_sqlite_file(database: str | None, url: str, variable: str) -> None:
    """An SQLite file fieldapp can write: its folder exists and is writable (SQLite keeps its
    journal beside it), and so is the file if it exists. Otherwise every request would fail."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return  # in memory, or a URI filename that SQLite interprets itself
    path = Path(database)
    folder = path.parent
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"{variable}={url!r}: the folder {folder} {why}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{variable}={url!r}: the folder {folder} is not writable")
    if path.is_dir():
        raise ConfigError(f"{variable}={url!r}: {path} is a folder, not a database file")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"{variable}={url!r}: {path} is not readable and writable")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be a number") from None
    if not value >= minimum:  # also refuses NaN
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _timezone(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{name}={value!r} is not a time zone name (e.g. Asia/Shanghai)"
        ) from None
    return value


def evidence_settings(env: Mapping[str, str]) -> dict:
    """Photo upload limits and the thresholds of the automatic case-file checks.

    Each is overridable by the ``FIELDAPP_`` variable of the same name (docs/evidence.md
    explains what each one means to a supervisor).
    """
    return {
        # Photos: an upload over PHOTO_MAX_BYTES is refused (413); an image over
        # PHOTO_MAX_PIXELS, or with a side over PHOTO_MAX_SIDE, or stretched beyond
        # PHOTO_MAX_ASPECT : 1, is refused as a bad image (422; decompression bombs).
        "PHOTO_MAX_BYTES": _int(env, "FIELDAPP_PHOTO_MAX_BYTES", 20 * 1024 * 1024),
        "PHOTO_MAX_PIXELS": _int(env, "FIELDAPP_PHOTO_MAX_PIXELS", 50_000_000),
        "PHOTO_MAX_SIDE": _int(env, "FIELDAPP_PHOTO_MAX_SIDE", 16_384),
        "PHOTO_MAX_ASPECT": _float(env, "FIELDAPP_PHOTO_MAX_ASPECT", 12.0, minimum=1.0),
        # Uploads no inspection claimed after this many hours are swept (`fieldapp photos sweep`),
        # and so are resumable uploads left unfinished for as long.
        "PHOTO_UNCLAIMED_HOURS": _int(env, "FIELDAPP_PHOTO_UNCLAIMED_HOURS", 72),
        # Checks (GET /inspections/<id>/checks)
        "CHECK_SHOP_DISTANCE_M": _float(env, "FIELDAPP_CHECK_SHOP_DISTANCE_M", 150.0),
        "CHECK_SITE_DISTANCE_M": _float(env, "FIELDAPP_CHECK_SITE_DISTANCE_M", 100.0),
        "CHECK_JURISDICTION_TOLERANCE_M": _float(
            env, "FIELDAPP_CHECK_JURISDICTION_TOLERANCE_M", 50.0
        ),
        "CHECK_MAX_ACCURACY_M": _float(env, "FIELDAPP_CHECK_MAX_ACCURACY_M", 50.0),
        "CHECK_PHOTO_DISTANCE_M": _float(env, "FIELDAPP_CHECK_PHOTO_DISTANCE_M", 200.0),
        "CHECK_PHOTO_TIME_MARGIN_MINUTES": _int(
            env, "FIELDAPP_CHECK_PHOTO_TIME_MARGIN_MINUTES", 10, minimum=0
        ),
        "CHECK_MAX_SPEED_KMH": _float(env, "FIELDAPP_CHECK_MAX_SPEED_KMH", 80.0, minimum=1.0),
        "CHECK_TRAVEL_MIN_DISTANCE_M": _float(env, "FIELDAPP_CHECK_TRAVEL_MIN_DISTANCE_M", 1000.0),
        "CHECK_SUBMISSION_HOURS": _int(env, "FIELDAPP_CHECK_SUBMISSION_HOURS", 24),
        # Deadlines and EXIF times without an offset are read in this zone
        "LOCAL_TIMEZONE": _timezone(env, "FIELDAPP_LOCAL_TIMEZONE", "Asia/Shanghai"),
        # Tracks: a pause longer than this, or a jump farther, splits a line (a gap)
        "TRACK_GAP_MINUTES": _int(env, "FIELDAPP_TRACK_GAP_MINUTES", 5),
        "TRACK_GAP_METRES": _float(env, "FIELDAPP_TRACK_GAP_METRES", 500.0, minimum=1.0),
        "TRACK_SIMPLIFY_METRES": _float(env, "FIELDAPP_TRACK_SIMPLIFY_METRES", 5.0),
        # Fixes reported less accurate than this are left out of lines (they zigzag)
        "TRACK_MAX_ACCURACY_M": _float(env, "FIELDAPP_TRACK_MAX_ACCURACY_M", 100.0, minimum=1.0),
        "TRACK_MAX_DAYS": _int(env, "FIELDAPP_TRACK_MAX_DAYS", 31),
    }


def _secret_key(env: Mapping[str, str], instance_path: Path) -> str:
    """The configured secret, or one generated on first start and kept in the instance folder.

    A persisted key means tokens survive restarts of a demo or a single-node install without
    anyone having to invent a secret; production sets FIELDAPP_SECRET_KEY explicitly.
    """
    configured = env.get("FIELDAPP_SECRET_KEY")
    if configured:
        if len(configured) < 16:
            raise ConfigError("FIELDAPP_SECRET_KEY must be at least 16 characters long")
        return configured
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(48)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


def load_config(env: Mapping[str, str] | None = None, *, instance_path: str) -> dict:
    """Build the Flask configuration from environment variables.

    ``instance_path`` is the app's instance folder (``FIELDAPP_INSTANCE_PATH`` or Flask's
    default); it is created if missing.
    """
    env = os.environ if env is None else env
    instance = Path(instance_path)
    try:
        instance.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"instance folder {instance} cannot be created: {exc}") from None

    database_url = env.get("FIELDAPP_DATABASE_URL") or f"sqlite:///{instance / 'fieldapp.sqlite3'}"
    storage_dir = Path(env.get("FIELDAPP_STORAGE_DIR") or instance / "photos")
    try:
        storage_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"FIELDAPP_STORAGE_DIR={storage_dir}: cannot be created: {exc}") from None
    if not os.access(storage_dir, os.W_OK):
        raise ConfigError(f"FIELDAPP_STORAGE_DIR={storage_dir}: not writable")

    return {
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(database_url),
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": True,
            # JSON columns: compact UTF-8 text (Chinese stays readable), read back as written.
            "json_serializer": jsontext.dumps,
            "json_deserializer": jsontext.loads,
        },
        "STORAGE_DIR": str(storage_dir),
        "SECRET_KEY": _secret_key(env, instance),
        "TOKEN_TTL_HOURS": _int(env, "FIELDAPP_TOKEN_TTL_HOURS", 24 * 7),
        "LOGIN_MAX_FAILURES": _int(env, "FIELDAPP_LOGIN_MAX_FAILURES", 5),
        "LOGIN_FAILURE_WINDOW_MINUTES": _int(env, "FIELDAPP_LOGIN_FAILURE_WINDOW_MINUTES", 15),
        # JSON bodies only; photo uploads stream past this with their own limit.
        "MAX_CONTENT_LENGTH": _int(env, "FIELDAPP_MAX_JSON_BYTES", 16 * 1024 * 1024),
        # Argon2 parameters: the library's defaults, overridable so tests stay fast.
        "PASSWORD_TIME_COST": _int(env, "FIELDAPP_PASSWORD_TIME_COST", 3),
        "PASSWORD_MEMORY_KIB": _int(env, "FIELDAPP_PASSWORD_MEMORY_KIB", 65536, minimum=32),
        "LOG_LEVEL": env.get("FIELDAPP_LOG_LEVEL", "INFO").upper(),
        **evidence_settings(env),
        # flask-smorest / OpenAPI
        "API_TITLE": "fieldapp",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        "JSON_SORT_KEYS": False,
    }
