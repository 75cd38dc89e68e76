"""The request lifecycle: request ids, authentication, one transaction, one log line.

- Every request gets an id (the client's ``X-Request-ID`` if sane, else a new one) that is sent
  back and appears in the log line and in audit entries.
- Every ``/api/v1`` endpoint needs a bearer token unless its view is marked :func:`public`.
- One transaction per request: committed after a successful answer, rolled back after an error,
  here and nowhere else. A view that must keep its writes despite answering an error (a failed
  sign-in is counted) calls :func:`keep_changes_on_error`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid

from flask import Flask, current_app, g, request
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError

from fieldapp.actor import Actor
from fieldapp.api import API_PREFIX
from fieldapp.auth import operations as auth_ops
from fieldapp.auth.policy import Policy
from fieldapp.db import db, driver_said
from fieldapp.errors import APIError, envelope, validation_error

log = logging.getLogger("fieldapp.request")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_PUBLIC_ENDPOINTS: set[str] = set()


def public(view):
    """Mark a view as reachable without a token (sign-in, public results, the API docs)."""
    view._fieldapp_public = True
    return view


def signs_in(view):
    """Mark the sign-in view: its caller is whoever the body names, so a token the request
    carries is not read. Pads are shared between shifts, and a client may still send the last
    user's token; a failed sign-in would be logged as that user, who typed nothing."""
    view._fieldapp_signs_in = True
    return view


def keep_changes_on_error() -> None:
    """Commit this request's writes even though it answers an error."""
    g.keep_changes_on_error = True


def log_caller(*, username: str | None = None, device_id: str | None = None) -> None:
    """Name the user and device in this request's log line where no token names them: the
    sign-in, whose caller is known only from its body."""
    if username is not None:
        g.username = username
    if device_id is not None:
        g.log_device = device_id


def current_actor() -> Actor:
    actor = g.get("actor")
    if actor is None:  # a view forgot to require login: fail closed
        raise APIError(401, "unauthenticated")
    return actor


def current_policy() -> Policy:
    policy = g.get("policy")
    if policy is None:
        policy = g.policy = Policy(current_actor())
    return policy


def _is_public(endpoint: str | None) -> bool:
    if endpoint is None or endpoint.startswith("api-docs."):
        return True  # routing answers 404/405 in the envelope; the API docs are public
    view = current_app.view_functions.get(endpoint)
    if view is None:
        return True
    cls = getattr(view, "view_class", None)
    if cls is not None:
        method = getattr(cls, request.method.lower(), None)
        return bool(
            getattr(method, "_fieldapp_public", False) or getattr(cls, "_fieldapp_public", False)
        )
    return bool(getattr(view, "_fieldapp_public", False)) or endpoint in _PUBLIC_ENDPOINTS


def _view_method(endpoint: str | None):
    """The function that answers ``endpoint`` for this request's method (a MethodView's method
    or a plain view), or None where routing found nothing."""
    if endpoint is None:
        return None
    view = current_app.view_functions.get(endpoint)
    cls = getattr(view, "view_class", None)
    if cls is not None:
        return getattr(cls, request.method.lower(), None)
    return view


def _reads_no_query(view) -> bool:
    """Whether ``view`` is an API operation that declares no query parameters (so any it is
    sent is a mistake: a misspelt filter would otherwise be ignored in silence)."""
    doc = getattr(view, "_apidoc", None)
    if doc is None:
        return False  # not an API operation (the docs page, static files)
    parameters = doc.get("arguments", {}).get("parameters", [])
    return not any(p.get("in") == "query" for p in parameters)


def refuse_unknown_query(view) -> None:
    """422 naming each query parameter sent to an operation that reads none: what
    :class:`fieldapp.api.StrictParser` does for the operations that read some. Names starting
    with "_" are cache busters and mean nothing."""
    unknown = sorted({key for key in request.args if not key.startswith("_")})
    if unknown and _reads_no_query(view):
        raise validation_error({key: ["Unknown field."] for key in unknown}, location="query")


def _begin() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    g.actor = None

    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    signing_in = getattr(_view_method(request.endpoint), "_fieldapp_signs_in", False)
    if scheme.lower() == "bearer" and secret.strip() and not signing_in:
        token = auth_ops.authenticate(current_app.extensions["fieldapp.auth"], secret.strip())
        if token is not None:
            g.token = token
            g.actor = Actor(user=token.user, device_id=token.device_id, request_id=g.request_id)
            # Read now: after the commit the user's row would be read again just to log it.
            g.username = token.user.username
            _note_seen(token)
    if g.actor is None and request.path.startswith(API_PREFIX) and not _is_public(request.endpoint):
        if request.method == "OPTIONS":
            return None
        message = "invalid, expired or revoked token" if header else None
        raise APIError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})
    if request.args and request.path.startswith(API_PREFIX):
        refuse_unknown_query(_view_method(request.endpoint))
    return None


def _note_seen(token) -> None:
    """Note that the token's device was seen (``last_seen_at``, at most every few minutes).

    On PostgreSQL the row is written at the end of the request, just before the commit: the
    device's row locked here would be a row locked before the change counter, which a push
    of the same pad holding the counter waits for when it flags the device's clock (a
    deadlock, docs/sync.md "One lock order"). SQLite has one lock for the whole database, no
    order to keep, and is written at once: a read that turned writer at its end would fail
    if another request had written since it began (``SQLITE_BUSY_SNAPSHOT``)."""
    at = auth_ops.seen_due(token.device)
    if at is None:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        g.seen = (token.device_id, at)
    else:
        auth_ops.note_seen(token.device_id, at)


def _finish(response):
    keep = response.status_code < 400 or g.get("keep_changes_on_error", False)
    if keep:
        try:
            seen = g.pop("seen", None)
            if seen is not None:
                auth_ops.note_seen(*seen)
            db.session.commit()
        except StaleDataError:
            db.session.rollback()
            response = _error_response(APIError(409, "version_conflict"))
        except IntegrityError as exc:
            response = _on_integrity_error(exc)
        except APIError as exc:  # refused at commit (the audit log cannot chain the entries)
            db.session.rollback()
            response = _error_response(exc)
        except Exception as exc:
            # The database went away at commit, or a bug: answered here, where the request's
            # id, user and device are still known. Left to Flask, any of them would be a 500
            # logged with none of the three.
            response = _on_error(exc)
    else:
        db.session.rollback()
    response.headers["X-Request-ID"] = g.get("request_id", "")
    _log(response)
    return response


def _on_integrity_error(exc: IntegrityError):
    """A constraint the checks before it did not foresee (two writers racing for one id, name
    or version, or a record referred to or removed meanwhile): 409 with the API.md code that
    fits (:func:`integrity_error`), whether it surfaced at a flush inside the view or at
    commit."""
    db.session.rollback()
    log.warning("integrity error: %s", exc.orig)
    return _error_response(integrity_error(exc))


def integrity_error(exc: IntegrityError) -> APIError:
    """The answer to a constraint violation, in API.md's codes.

    A primary key taken is ``id_conflict``: a record with that id was stored meanwhile, and
    sending the same again cannot pass. Anything else (another unique value, a reference to a
    record deleted meanwhile, or a record others came to refer to) is ``version_conflict``:
    the data changed under the request; reading it again shows how, and a retry may pass.
    """
    if _primary_key_taken(exc):
        return APIError(409, "id_conflict", "a record with this id was stored meanwhile")
    return APIError(
        409,
        "version_conflict",
        "the change conflicts with data written meanwhile; read it again and retry",
    )


def _primary_key_taken(exc: IntegrityError) -> bool:
    """Whether ``exc`` is a primary key violation. PostgreSQL names the constraint (ours are
    ``pk_<table>``, the server's default ``<table>_pkey``); SQLite lists the columns of the
    unique constraint that failed (``UNIQUE constraint failed: table.a, table.b``), which are
    compared with the table's primary key."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) is not None:  # psycopg
        name = getattr(getattr(orig, "diag", None), "constraint_name", None) or ""
        return orig.sqlstate == "23505" and (name.startswith("pk_") or name.endswith("_pkey"))
    text = str(orig)
    prefix = "UNIQUE constraint failed: "
    if not text.startswith(prefix):
        return False
    columns = [part.strip().split(".", 1) for part in text[len(prefix) :].split(",")]
    tables = {table for table, *_ in columns}
    if len(tables) != 1 or any(len(column) != 2 for column in columns):
        return False
    table = db.metadata.tables.get(tables.pop())
    if table is None:
        return False
    return {column for _, column in columns} == {c.name for c in table.primary_key.columns}


def _error_response(exc: APIError):
    body, code, headers = envelope(exc)
    response = current_app.json.response(body)
    response.status_code = code
    response.headers.update(headers)
    return response


def log_fields() -> dict[str, str]:
    """The request id, user and device that every log line of the request carries."""
    actor = g.get("actor")
    device = actor.device_id if actor is not None and actor.device_id else g.get("log_device")
    return {
        "request_id": g.get("request_id", "-"),
        "user": g.get("username", "-"),
        "device": device or "-",
    }


def logged_path(path: str) -> str:
    """``path`` (as Flask decoded it) fit for one log line: a line break, space, control or
    invisible character is percent-encoded again. Decoded, a caller's ``%0A`` would end the
    line and start one of its own choosing, which an operator or a log shipper takes for a
    real request's. (The query string is logged as it was sent, still encoded.)"""
    if path.isprintable() and " " not in path:
        return path
    return "".join(
        ch
        if ch.isprintable() and ch != " "
        else "".join(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
        for ch in path
    )


def _log(response) -> None:
    elapsed_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    log.info(
        "%s %s %s %.1fms",
        request.method,
        logged_path(request.full_path.rstrip("?")),
        response.status_code,
        elapsed_ms,
        extra=log_fields(),
    )


#: Seconds a client is asked to wait while the database cannot answer.
DATABASE_RETRY_AFTER = 5


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not answer, rather than a bug: the driver's
    OperationalError (unreachable, restarting, too many clients, a lock not granted in time),
    any driver error SQLAlchemy took for a lost connection (psycopg's "connection already
    closed" is an InterfaceError), and the pool's own (no connection free in time, or none
    that answers)."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, OperationalError) or exc.connection_invalidated
    return isinstance(exc, PoolTimeout | DisconnectionError)


def _on_database_unavailable(exc: Exception):
    """The database could not answer (:func:`database_unavailable`). 503
    ``database_unavailable`` with ``Retry-After`` (devices retry it; a 500 would mean a bug),
    and one log line saying why with the request's id, user and device, not a traceback on
    every request while it lasts."""
    with contextlib.suppress(SQLAlchemyError):  # the connection is gone; the pool replaces it
        db.session.rollback()
    said = driver_said(exc) if isinstance(exc, DBAPIError) else " ".join(str(exc).split())
    log.error("the database could not answer: %s", said, extra=log_fields())
    return _error_response(
        APIError(
            503,
            "database_unavailable",
            "the database cannot answer just now; try again shortly",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )
    )


def _on_unexpected(exc: Exception):
    """An exception nothing handled: log it with the request id, user and device (the line an
    operator reads first), answer the 500 envelope."""
    if _propagates_unexpected(current_app):
        raise exc
    with contextlib.suppress(SQLAlchemyError):  # the 500 is answered whatever the session says
        db.session.rollback()
    log.exception("unhandled error", extra=log_fields())
    return _error_response(APIError(500, "internal_error"))


def _on_error(exc: Exception):
    """A database error no narrower handler answers, or an exception at commit: 503 when the
    database could not answer, else the unexpected error's 500."""
    if database_unavailable(exc):
        return _on_database_unavailable(exc)
    return _on_unexpected(exc)


def _propagates_unexpected(app: Flask) -> bool:
    """Whether a test asked for unexpected exceptions to reach it rather than become 500s."""
    return app.testing and app.config.get("PROPAGATE_UNEXPECTED", False)


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_finish)
    app.register_error_handler(
        StaleDataError, lambda exc: _error_response(APIError(409, "version_conflict"))
    )
    app.register_error_handler(IntegrityError, _on_integrity_error)
    for family in (DBAPIError, PoolTimeout, DisconnectionError):
        app.register_error_handler(family, _on_error)
    if not _propagates_unexpected(app):
        app.register_error_handler(Exception, _on_unexpected)
