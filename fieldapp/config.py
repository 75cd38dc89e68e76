"""Configuration from the environment.

Everything fieldapp needs to start comes from ``FIELDAPP_*`` variables with working defaults:
an SQLite file and a photo store in the instance folder, and a secret key generated once and
kept there. A value that is present but wrong stops start-up with a :class:`ConfigError` that
names the variable, rather than failing later in a request.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def compact_json(value) -> str:
    """JSON as stored in the database: UTF-8 text (Chinese stays readable), no padding."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
    return parsed.render_as_string(hide_password=False)


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
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "json_serializer": compact_json},
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
