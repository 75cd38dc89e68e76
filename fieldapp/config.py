"""Configuration from the environment.

Everything fieldapp needs to start comes from ``FIELDAPP_*`` variables with working defaults:
an SQLite file and a photo store in the instance folder, and a secret key generated once and
kept there. A value that is present but wrong stops start-up with a :class:`ConfigError` that
names the variable, rather than failing later in a request.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from fieldapp import jsontext


class ConfigError(RuntimeError):
    """A configuration value that fieldapp cannot start with."""


#: The drivers fieldapp is written for, by the scheme an operator may write. Bulk inserts use
#: psycopg 3's COPY on PostgreSQL and qmark parameters on SQLite (fieldapp/db.py::insert_rows),
#: so another driver (psycopg2, asyncpg, pg8000) would fail at the first import or sync push.
_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}

_URL_HINT = "use sqlite:///path/to/file.sqlite3 or postgresql://user@host/dbname"

#: The password in a URL that does not parse: everything between "user:" and the last "@"
#: (a password may hold an unescaped "@" of its own).
_URL_PASSWORD = re.compile(r"^(?P<head>[^:/]*://[^:@/]*:).*@")


def shown_url(url: str) -> str:
    """``url`` with its password hidden, for a message: start-up lines end up in gunicorn's
    and systemd's logs, which more people read than know the database's password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _URL_PASSWORD.sub(r"\g<head>***@", url)


def normalize_database_url(
    url: str, *, variable: str = "FIELDAPP_DATABASE_URL", source: str | None = None
) -> str:
    """Check a database URL and pick the psycopg 3 driver for PostgreSQL URLs.

    A problem is reported as ``variable=url``, or as ``source`` where the URL is a default that
    no variable set (the operator must be told what they set, not a variable they never did).
    The URL is shown with its password hidden (:func:`shown_url`).
    """
    named = source or f"{variable}={shown_url(url)!r}"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise ConfigError(f"{named} is not a database URL: {exc}") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        backend = parsed.get_backend_name()
        if backend in ("sqlite", "postgresql"):
            raise ConfigError(
                f"{named}: the driver {parsed.get_driver_name()!r} is not supported;"
                f" leave it out ({backend}://...): fieldapp uses "
                + ("psycopg 3" if backend == "postgresql" else "Python's sqlite3")
            )
        raise ConfigError(f"{named}: database {backend!r} is not supported; {_URL_HINT}")
    parsed = parsed.set(drivername=driver)
    if driver == "postgresql+psycopg":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"{named}: PostgreSQL needs the psycopg package, which is not"
                " installed: pip install 'fieldapp[postgres]'"
            ) from None
    else:
        _check_sqlite_file(parsed.database, named)
    return parsed.render_as_string(hide_password=False)


def _check_sqlite_file(database: str | None, named: str) -> None:
    """An SQLite file fieldapp can write: its folder exists and is writable (SQLite keeps its
    journal beside it), and so is the file if it exists. Otherwise every request would fail."""
    if not database or database == ":memory:":
        # Every pooled connection (each gunicorn worker, each thread) would open its own empty
        # database: tables made by `db upgrade` vanish with its connection.
        raise ConfigError(
            f"{named}: an in-memory database is empty for every connection;"
            " name a file: sqlite:///path/to/file.sqlite3"
        )
    if database.startswith("file:"):
        return  # a URI filename that SQLite interprets itself
    path = Path(database)
    folder = path.parent
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"{named}: the folder {folder} {why}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{named}: the folder {folder} is not writable")
    if path.is_dir():
        raise ConfigError(f"{named}: {path} is a folder, not a database file")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"{named}: {path} is not readable and writable")


def _int(
    env: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    why: str = "",
) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={raw!r} must be at most {maximum:,}{why}")
    return value


#: The longest duration a setting may give: the dates computed from it (a token's expiry, the
#: start of a lock-out window, a sweep's cut-off) must stay within the calendar Python's dates
#: can hold (years 1 to 9999), or every request that computes them would answer 500.
MAX_DURATION_DAYS = 100 * 365
_PER_DAY = {"days": 1, "hours": 24, "minutes": 24 * 60}


def _duration(
    env: Mapping[str, str], name: str, default: int, unit: str, *, minimum: int = 1
) -> int:
    """A whole number of ``unit`` (days, hours or minutes), at most :data:`MAX_DURATION_DAYS`."""
    return _int(
        env,
        name,
        default,
        minimum=minimum,
        maximum=MAX_DURATION_DAYS * _PER_DAY[unit],
        why=f" ({MAX_DURATION_DAYS // 365} years)",
    )


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
        "PHOTO_UNCLAIMED_HOURS": _duration(env, "FIELDAPP_PHOTO_UNCLAIMED_HOURS", 72, "hours"),
        # Checks (GET /inspections/<id>/checks)
        "CHECK_SHOP_DISTANCE_M": _float(env, "FIELDAPP_CHECK_SHOP_DISTANCE_M", 150.0),
        "CHECK_SITE_DISTANCE_M": _float(env, "FIELDAPP_CHECK_SITE_DISTANCE_M", 100.0),
        "CHECK_JURISDICTION_TOLERANCE_M": _float(
            env, "FIELDAPP_CHECK_JURISDICTION_TOLERANCE_M", 50.0
        ),
        "CHECK_MAX_ACCURACY_M": _float(env, "FIELDAPP_CHECK_MAX_ACCURACY_M", 50.0),
        "CHECK_PHOTO_DISTANCE_M": _float(env, "FIELDAPP_CHECK_PHOTO_DISTANCE_M", 200.0),
        "CHECK_PHOTO_TIME_MARGIN_MINUTES": _duration(
            env, "FIELDAPP_CHECK_PHOTO_TIME_MARGIN_MINUTES", 10, "minutes", minimum=0
        ),
        "CHECK_MAX_SPEED_KMH": _float(env, "FIELDAPP_CHECK_MAX_SPEED_KMH", 80.0, minimum=1.0),
        "CHECK_TRAVEL_MIN_DISTANCE_M": _float(env, "FIELDAPP_CHECK_TRAVEL_MIN_DISTANCE_M", 1000.0),
        "CHECK_SUBMISSION_HOURS": _duration(env, "FIELDAPP_CHECK_SUBMISSION_HOURS", 24, "hours"),
        # Deadlines and EXIF times without an offset are read in this zone
        "LOCAL_TIMEZONE": _timezone(env, "FIELDAPP_LOCAL_TIMEZONE", "Asia/Shanghai"),
        # Tracks: a pause longer than this, or a jump farther, splits a line (a gap)
        "TRACK_GAP_MINUTES": _duration(env, "FIELDAPP_TRACK_GAP_MINUTES", 5, "minutes"),
        "TRACK_GAP_METRES": _float(env, "FIELDAPP_TRACK_GAP_METRES", 500.0, minimum=1.0),
        "TRACK_SIMPLIFY_METRES": _float(env, "FIELDAPP_TRACK_SIMPLIFY_METRES", 5.0),
        # Fixes reported less accurate than this are left out of lines (they zigzag)
        "TRACK_MAX_ACCURACY_M": _float(env, "FIELDAPP_TRACK_MAX_ACCURACY_M", 100.0, minimum=1.0),
        "TRACK_MAX_DAYS": _duration(env, "FIELDAPP_TRACK_MAX_DAYS", 31, "days"),
    }


#: A secret shorter than this, or with fewer different characters, is refused: it keys the
#: token hashes, and "aaaaaaaaaaaaaaaa" or a row of spaces would be guessed first.
SECRET_MIN_LENGTH = 16
SECRET_MIN_DISTINCT = 8

#: Where a secret key generated on first start is kept, in the instance folder.
SECRET_KEY_FILE = "secret_key"


def _weakness(secret: str) -> str | None:
    """Why ``secret`` is too weak to key the token hashes, or None if it will do."""
    if len(secret) < SECRET_MIN_LENGTH:
        shown = "blank" if not secret else f"{len(secret)} characters long"
        return f"is {shown}; at least {SECRET_MIN_LENGTH} characters are needed"
    if len(set(secret)) < SECRET_MIN_DISTINCT:
        return (
            f"is too easy to guess: {len(set(secret))} different characters, at least"
            f" {SECRET_MIN_DISTINCT} are needed"
        )
    return None


def _secret_key(env: Mapping[str, str], instance_path: Path, instance_origin: str) -> str:
    """The configured secret, or one generated on first start and kept in the instance folder.

    A persisted key means tokens survive restarts of a demo or a single-node install without
    anyone having to invent a secret; production sets FIELDAPP_SECRET_KEY explicitly.
    An empty variable counts as unset, as for every other variable; one of only spaces is
    refused like any other weak secret.
    """
    configured = env.get("FIELDAPP_SECRET_KEY")
    if configured:
        configured = configured.strip()
        weakness = _weakness(configured)
        if weakness:
            raise ConfigError(
                f"FIELDAPP_SECRET_KEY {weakness} (make one with: python3 -c"
                " 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return configured
    return _kept_secret(instance_path / SECRET_KEY_FILE, instance_origin)


def _kept_secret(key_file: Path, instance_origin: str) -> str:
    """The key in ``key_file``, written first if there is none.

    gunicorn starts its workers together and each loads the configuration: two that both find
    no file must still end up with the same key, or a token issued by one is refused by the
    other. So the key is written whole to a file of its own and then hard-linked to its name,
    which fails if the name exists: the first link wins, and every other worker reads the
    winner's key. No reader can see a half-written key, so a short key in the file is damage,
    refused rather than replaced (replacing it could race another worker replacing it too).
    """
    try:
        kept = key_file.read_text().strip()
    except FileNotFoundError:
        kept = None
    except OSError as exc:
        raise ConfigError(f"{instance_origin}: cannot read {key_file}: {exc}") from None
    if kept is not None:
        weakness = _weakness(kept)
        if weakness:
            raise ConfigError(
                f"{instance_origin}: the secret key kept in {key_file} {weakness}; remove the"
                " file to have a new one generated (every device then signs in again), or set"
                " FIELDAPP_SECRET_KEY"
            )
        return kept
    key = secrets.token_urlsafe(48)
    try:
        fd, staging = tempfile.mkstemp(dir=key_file.parent, prefix=f".{key_file.name}.")
        try:
            with os.fdopen(fd, "w") as out:  # mkstemp made it readable by its owner only
                out.write(key + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.link(staging, key_file)
        finally:
            os.unlink(staging)
    except FileExistsError:
        return _kept_secret(key_file, instance_origin)  # another worker's key came first
    except OSError as exc:
        raise ConfigError(
            f"{instance_origin}: cannot keep a generated secret key there ({exc.strerror or exc});"
            " make the folder writable or set FIELDAPP_SECRET_KEY"
        ) from None
    return key


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(env: Mapping[str, str]) -> str:
    """FIELDAPP_LOG_LEVEL as a level name; checked here, since logging only refuses a name it
    does not know when the app configures it, with a traceback."""
    level = (env.get("FIELDAPP_LOG_LEVEL") or "INFO").strip().upper()
    if level not in _LOG_LEVELS:
        raise ConfigError(
            f"FIELDAPP_LOG_LEVEL={env.get('FIELDAPP_LOG_LEVEL')!r} is not a log level;"
            f" use one of {', '.join(_LOG_LEVELS)}"
        )
    return level


def _instance_origin(env: Mapping[str, str], instance: Path) -> str:
    """How a message names the instance folder: by the variable the operator set, or as the
    default it is, so that nobody looks for a variable they never set."""
    if env.get("FIELDAPP_INSTANCE_PATH"):
        return f"FIELDAPP_INSTANCE_PATH={str(instance)!r}"
    return f"the instance folder {instance} (the default; FIELDAPP_INSTANCE_PATH chooses another)"


def load_config(env: Mapping[str, str] | None = None, *, instance_path: str) -> dict:
    """Build the Flask configuration from environment variables.

    ``instance_path`` is the app's instance folder (``FIELDAPP_INSTANCE_PATH`` or Flask's
    default); it is created if missing. Settings left to their default live there, and a
    problem with one of them is reported as the instance folder's.
    """
    env = os.environ if env is None else env
    instance = Path(instance_path)
    origin = _instance_origin(env, instance)
    try:
        instance.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot be created: {exc.strerror or exc}") from None

    if env.get("FIELDAPP_DATABASE_URL"):
        database_url = normalize_database_url(env["FIELDAPP_DATABASE_URL"])
    else:
        default = instance / "fieldapp.sqlite3"
        database_url = normalize_database_url(
            f"sqlite:///{default}", source=f"{origin}: the database {default}"
        )
    if env.get("FIELDAPP_STORAGE_DIR"):
        storage_dir = Path(env["FIELDAPP_STORAGE_DIR"])
        storage_origin = f"FIELDAPP_STORAGE_DIR={str(storage_dir)!r}"
    else:
        storage_dir = instance / "photos"
        storage_origin = f"{origin}: the photo store {storage_dir}"
    try:
        storage_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{storage_origin}: cannot be created: {exc.strerror or exc}") from None
    if not os.access(storage_dir, os.W_OK):
        raise ConfigError(f"{storage_origin}: not writable")

    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": True,
            # JSON columns: compact UTF-8 text (Chinese stays readable), read back as written.
            "json_serializer": jsontext.dumps,
            "json_deserializer": jsontext.loads,
        },
        "STORAGE_DIR": str(storage_dir),
        "SECRET_KEY": _secret_key(env, instance, origin),
        "TOKEN_TTL_HOURS": _duration(env, "FIELDAPP_TOKEN_TTL_HOURS", 24 * 7, "hours"),
        "LOGIN_MAX_FAILURES": _int(env, "FIELDAPP_LOGIN_MAX_FAILURES", 5),
        "LOGIN_FAILURE_WINDOW_MINUTES": _duration(
            env, "FIELDAPP_LOGIN_FAILURE_WINDOW_MINUTES", 15, "minutes"
        ),
        # JSON bodies only; photo uploads stream past this with their own limit.
        "MAX_CONTENT_LENGTH": _int(env, "FIELDAPP_MAX_JSON_BYTES", 16 * 1024 * 1024),
        # Argon2 parameters: the library's defaults, overridable so tests stay fast.
        "PASSWORD_TIME_COST": _int(env, "FIELDAPP_PASSWORD_TIME_COST", 3),
        "PASSWORD_MEMORY_KIB": _int(env, "FIELDAPP_PASSWORD_MEMORY_KIB", 65536, minimum=32),
        "LOG_LEVEL": _log_level(env),
        **evidence_settings(env),
        # flask-smorest / OpenAPI
        "API_TITLE": "fieldapp",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        # Swagger UI's files come with the app (fieldapp.api serves them from flask-swagger-ui):
        # the docs page works on an intranet that reaches no CDN, and asks no validator outside.
        "OPENAPI_SWAGGER_UI_URL": "/api/v1/docs/static/",
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
        "JSON_SORT_KEYS": False,
    }
