"""Signing in and out, tokens bound to devices, device revocation, user management."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.audit.models import AuditEntry
from fieldapp.auth.models import (
    LOGIN_FAILED,
    SQUADRON_ROLES,
    Device,
    LoginFailure,
    Role,
    Token,
    User,
)
from fieldapp.db import db, utcnow
from fieldapp.errors import APIError, validation_error
from fieldapp.org.models import Squadron
from fieldapp.tasks.operations import release_assignee
from sync.versions import record_left_scope, record_left_users


@dataclass(frozen=True)
class AuthSettings:
    """The knobs of sign-in, taken from the app configuration by the caller."""

    secret_key: str
    token_ttl: timedelta
    max_failures: int
    failure_window: timedelta
    password_hasher: PasswordHasher

    @classmethod
    def from_config(cls, config) -> AuthSettings:
        return cls(
            secret_key=config["SECRET_KEY"],
            token_ttl=timedelta(hours=config["TOKEN_TTL_HOURS"]),
            max_failures=config["LOGIN_MAX_FAILURES"],
            failure_window=timedelta(minutes=config["LOGIN_FAILURE_WINDOW_MINUTES"]),
            password_hasher=PasswordHasher(
                time_cost=config["PASSWORD_TIME_COST"],
                memory_cost=config["PASSWORD_MEMORY_KIB"],
            ),
        )


@dataclass(frozen=True)
class IssuedToken:
    secret: str  # shown once, to the device
    token: Token


#: Passwords that are first in every guessing list (compared in lower case).
COMMON_PASSWORDS = frozenset(
    {
        "12345678",
        "123456789",
        "1234567890",
        "87654321",
        "password",
        "password1",
        "password123",
        "passw0rd",
        "qwertyui",
        "qwerty123",
        "1qaz2wsx",
        "abcd1234",
        "abc12345",
        "a1234567",
        "admin123",
        "iloveyou",
        "woaini1314",
        "changeme",
    }
)


def check_password(username: str, password: str) -> None:
    """422 for a password that is too easy to guess (the length is the schema's business)."""
    if password.lower() == username.lower():
        raise validation_error({"password": ["may not be the username"]})
    if password.lower() in COMMON_PASSWORDS or len(set(password)) < 4:
        raise validation_error(
            {
                "password": [
                    "too easy to guess: not a common password, at least 4 different characters"
                ]
            }
        )


def hash_password(settings: AuthSettings, password: str) -> str:
    return settings.password_hasher.hash(password)


def token_digest(settings: AuthSettings, secret: str) -> str:
    """The keyed hash under which a token is stored and looked up."""
    return hmac.new(settings.secret_key.encode(), secret.encode(), hashlib.sha256).hexdigest()


def _password_matches(settings: AuthSettings, user: User | None, password: str) -> bool:
    hasher = settings.password_hasher
    if user is None:
        # Spend the same time as for a real account so timing does not reveal usernames.
        _password_matches.dummy = getattr(_password_matches, "dummy", None) or hasher.hash("x")
        with contextlib.suppress(VerificationError):
            hasher.verify(_password_matches.dummy, password)
        return False
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return True


def _serialize_attempts(username: str) -> None:
    """Make this transaction the only one signing in as ``username`` until it ends.

    Counting the failures, checking the password and recording a failure must happen as one
    step per username: otherwise attempts sent at once all count the same failures, all get
    their password checked (argon2 takes tens of milliseconds) and the limit lets through as
    many guesses as arrive together. PostgreSQL: a transaction-scoped advisory lock keyed on the
    username, so other usernames are not held up. SQLite has no such lock; it lets one
    transaction write at a time, and a transaction becomes the writer at its first write, so
    the attempt starts with a write (one that changes nothing) before it counts. The lock is
    released when the request's transaction ends, as every write of the request is.
    """
    session = db.session()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(username))))
    elif dialect == "sqlite":
        session.execute(
            sa.update(LoginFailure).where(sa.false()).values(username=LoginFailure.username)
        )


def _lock_key(username: str) -> int:
    """A stable signed 64-bit key for ``username``'s sign-in lock (the same in every process,
    unlike ``hash()``), prefixed so that it names no other advisory lock."""
    digest = hashlib.sha256(f"fieldapp.login:{username}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _recent_failures(settings: AuthSettings, username: str, now: datetime) -> list[datetime]:
    since = now - settings.failure_window
    return list(
        db.session.scalars(
            sa.select(LoginFailure.at)
            .where(LoginFailure.username == username, LoginFailure.at > since)
            .order_by(LoginFailure.at)
        )
    )


def login(
    settings: AuthSettings,
    *,
    username: str,
    password: str,
    device_id: str,
    device_name: str | None,
    remote_addr: str | None,
    request_id: str | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """Check a password and issue a token bound to ``device_id``.

    Raises 429 once ``max_failures`` failures for the username fall within the window (whatever
    the password), 401 for a wrong password or unknown or disabled user, and 403 for a revoked
    device. A failure is recorded in ``login_failures``; the caller must keep it even though the
    answer is an error. Attempts for one username are serialised (see
    :func:`_serialize_attempts`), so attempts sent at once cannot outrun the limit.
    """
    now = now or utcnow()
    _serialize_attempts(username)
    failures = _recent_failures(settings, username, now)
    if len(failures) >= settings.max_failures:
        # The lock-out ends when fewer than max_failures remain in the window: when the failure
        # that many places from the newest leaves it. More failures than the limit (a lowered
        # limit, or attempts counted before the serialisation) keep it locked past the oldest.
        ending = failures[len(failures) - settings.max_failures]
        retry_after = ending + settings.failure_window - now
        raise APIError(
            429,
            "rate_limited",
            f"too many failed sign-ins for {username}; try again later",
            headers={"Retry-After": str(max(1, math.ceil(retry_after.total_seconds())))},
        )
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if not _password_matches(settings, user, password) or not user.active:
        db.session.add(
            LoginFailure(username=username, at=now, device_id=device_id, remote_addr=remote_addr)
        )
        _record_failure(user, username, device_id, remote_addr, request_id)
        raise APIError(401, "unauthenticated", "wrong username or password")

    device = db.session.get(Device, device_id)
    if device is not None and device.revoked:
        # The right password on a lost or stolen pad: who tried, and when, is what the
        # supervisor investigating it needs. Not counted towards the lock-out (the password
        # was right; the device is refused whatever it sends).
        _record_failure(user, username, device_id, remote_addr, request_id, "revoked_device")
        raise APIError(403, "forbidden", "this device has been revoked; ask an admin")
    actor = Actor(user=user, device_id=device_id, request_id=request_id)
    if device is None:
        device = Device(id=device_id, name=device_name, first_seen_at=now)
        db.session.add(device)
    elif device_name and device_name != device.name:
        # The name admins know the device by in the device list: a change is a record's change.
        audit.record(
            actor,
            "device.rename",
            "device",
            device.id,
            before={"name": device.name},
            after={"name": device_name},
        )
        device.name = device_name
    device.last_seen_at = now
    device.last_user_id = user.id

    secret = secrets.token_urlsafe(32)
    token = Token(
        token_hash=token_digest(settings, secret),
        user_id=user.id,
        device_id=device_id,
        created_at=now,
        expires_at=now + settings.token_ttl,
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        actor,
        "auth.login",
        "token",
        token.id,
        after={
            "user_id": str(user.id),
            "device_id": device_id,
            "expires_at": token.expires_at.isoformat(),
        },
    )
    return IssuedToken(secret=secret, token=token)


def _record_failure(
    user: User | None,
    username: str,
    device_id: str,
    remote_addr: str | None,
    request_id: str | None,
    reason: str | None = None,
) -> None:
    """Audit a failed sign-in, which the caller keeps despite answering an error (a wrong
    password counts towards the lock-out, and supervisors must see password guessing on an
    account, or a revoked device being used). ``reason``: ``unknown_user``, ``disabled`` or
    ``password`` when not given (from ``user``), or ``revoked_device``.

    Like a successful sign-in, the entry names the account as its actor: it is that account's
    history (``GET /audit?actor_id=``), and that account's district supervisor reads it. An
    attempt on a username nobody has names no actor and is shown to admins only (the policy):
    what is typed as a username is sometimes a password. The password is never written.
    """
    if reason is None:
        reason = "unknown_user" if user is None else "disabled" if not user.active else "password"
    audit.record(
        Actor(user=user, device_id=device_id, request_id=request_id),
        LOGIN_FAILED,
        "user",
        None if user is None else user.id,
        after={
            "username": username,
            "device_id": device_id,
            "remote_addr": remote_addr,
            "reason": reason,
        },
    )


#: How stale a device's ``last_seen_at`` may get while it is in use: an authenticated request
#: moves it at most this often, so a device syncing all day costs one UPDATE per period, not
#: one per push or pull.
LAST_SEEN_EVERY = timedelta(minutes=5)


def authenticate(settings: AuthSettings, secret: str, now: datetime | None = None) -> Token | None:
    """The live token for a bearer secret, or None if unknown, expired, revoked or disabled.

    Reads only: the caller notes that the token's device was seen (:func:`seen_due`,
    :func:`note_seen`) where its lock order allows."""
    now = now or utcnow()
    # The token with its user and device in one query: every request reads all three.
    token = db.session.scalar(
        sa.select(Token)
        .where(Token.token_hash == token_digest(settings, secret))
        .options(joinedload(Token.user), joinedload(Token.device))
    )
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        return None
    if token.device.revoked or not token.user.active:
        return None
    return token


def seen_due(device: Device) -> datetime | None:
    """The moment to write as the device's ``last_seen_at`` if it is more than
    :data:`LAST_SEEN_EVERY` behind, else None: the admin's device list says which pads are in
    use, and whether a reported-lost one still is, without an UPDATE on every push and pull."""
    now = utcnow()
    return now if now - device.last_seen_at >= LAST_SEEN_EVERY else None


def note_seen(device_id: str, now: datetime) -> None:
    """Move the device's ``last_seen_at`` to ``now`` if it is more than
    :data:`LAST_SEEN_EVERY` behind: one UPDATE, conditional, so that of requests racing each
    other only one writes (the others find the row moved and change nothing). Written with
    the request's transaction, so a request that fails leaves it for the next one.

    On PostgreSQL a row another transaction holds is skipped, not waited for (``SKIP
    LOCKED``): that is a push flagging the device's clock or an admin revoking it, and the
    value is a hint the device's next request writes: waiting would hold this request up for
    that transaction's whole length, for nothing. SQLite has no row locks: writers take the
    database's one lock in turn."""
    due = sa.and_(Device.id == device_id, Device.last_seen_at < now - LAST_SEEN_EVERY)
    if db.session.get_bind().dialect.name == "postgresql":
        due = Device.id == (
            sa.select(Device.id).where(due).with_for_update(skip_locked=True).scalar_subquery()
        )
    written = db.session.execute(
        sa.update(Device)
        .where(due)
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    device = db.session.identity_map.get(identity_key(Device, device_id))
    if written and device is not None:
        # The session's copy follows without being marked dirty (no second write at flush).
        set_committed_value(device, "last_seen_at", now)


def logout(actor: Actor, token: Token, now: datetime | None = None) -> None:
    """Revoke the caller's own token."""
    token.revoked_at = now or utcnow()
    audit.record(
        actor,
        "auth.logout",
        "token",
        token.id,
        before={"revoked_at": None},
        after={"revoked_at": token.revoked_at.isoformat()},
    )


def revoke_device(actor: Actor, device: Device, now: datetime | None = None) -> int:
    """Revoke a device (lost or stolen): all its tokens stop working and it cannot sign in.

    Returns how many live tokens were revoked.
    """
    now = now or utcnow()
    if device.revoked:
        return 0
    device.revoked_at = now
    device.revoked_by_id = actor.user_id
    revoked = db.session.execute(
        sa.update(Token)
        .where(Token.device_id == device.id, Token.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    audit.record(actor, "device.revoke", "device", device.id, after={"revoked_tokens": revoked})
    return revoked


def reinstate_device(actor: Actor, device: Device) -> None:
    """Allow a recovered device to sign in again (its old tokens stay revoked)."""
    if not device.revoked:
        return
    before = {
        "revoked_at": device.revoked_at.isoformat(),
        "revoked_by_id": None if device.revoked_by_id is None else str(device.revoked_by_id),
    }
    device.revoked_at = None
    device.revoked_by_id = None
    audit.record(
        actor,
        "device.reinstate",
        "device",
        device.id,
        before=before,
        after={"revoked_at": None, "revoked_by_id": None},
    )


def _check_role_squadron(role: Role, squadron: Squadron | None) -> None:
    """Officers and leaders belong to a squadron; supervisors and admins, who work across
    the district, to none (in a squadron's roster they would pass for its members)."""
    if role in SQUADRON_ROLES and squadron is None:
        raise validation_error({"squadron_id": [f"a {role.value} belongs to a squadron"]})
    if role not in SQUADRON_ROLES and squadron is not None:
        raise validation_error({"squadron_id": [f"a {role.value} belongs to no squadron"]})


def _check_district(squadron: Squadron | None, district_id: int) -> None:
    """A squadron member's district is their squadron's: a district named beside a squadron of
    another one contradicts it (422, rather than one of the two silently winning)."""
    if squadron is not None and squadron.district_id != district_id:
        raise validation_error(
            {
                "district_id": [
                    f"squadron {squadron.id} is in district {squadron.district_id}, not"
                    f" {district_id}"
                ]
            }
        )


def create_user(
    actor: Actor,
    settings: AuthSettings,
    *,
    username: str,
    name: str,
    role: Role,
    password: str,
    district_id: int,
    squadron: Squadron | None = None,
) -> User:
    """Add a user; usernames are unique (422 on a taken one). Officers and leaders are placed
    in ``squadron`` (of ``district_id``), supervisors and admins in ``district_id`` alone."""
    _check_role_squadron(role, squadron)
    _check_district(squadron, district_id)
    check_password(username, password)
    if db.session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise validation_error({"username": ["already taken"]})
    user = User(
        username=username,
        name=name,
        role=role,
        district_id=district_id,
        squadron_id=squadron.id if squadron else None,
        password_hash=hash_password(settings, password),
    )
    db.session.add(user)
    db.session.flush()
    audit.record(actor, "user.create", "user", user.id, after=audit.snapshot(user))
    return user


def _other_active_admins(user: User) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).where(
            User.role == Role.admin, User.active.is_(True), User.id != user.id
        )
    )


def update_user(actor: Actor, settings: AuthSettings, user: User, changes: dict) -> User:
    """Change a user's name, role, squadron, district, active flag or password.

    ``changes["squadron"]`` is the squadron to move to (None: none); ``district_id`` a district
    known to exist. A supervisor or admin belongs to no squadron: a role change to one takes
    the user out of their squadron (its roster drops them, as when they move to another). A
    squadron member's district is their squadron's. A user who can no longer carry out tasks
    (disabled, or no longer an officer) leaves none open with nobody to do it: see
    :func:`fieldapp.tasks.operations.release_assignee`. One audit entry says what changed.
    """
    now = utcnow()
    before = audit.snapshot(user)
    password = changes.pop("password", None)
    if password:
        check_password(user.username, password)
    was_admin = user.role is Role.admin and user.active
    was_officer = user.role is Role.officer and user.active
    role = changes.get("role", user.role)
    if role not in SQUADRON_ROLES and "squadron" not in changes:
        changes["squadron"] = None  # promoted out of the squadron
    squadron = (
        changes.pop("squadron")
        if "squadron" in changes
        else db.session.get(Squadron, user.squadron_id)
        if user.squadron_id
        else None
    )
    _check_role_squadron(role, squadron)
    district_id = changes.pop("district_id", None)
    if district_id is None:
        district_id = squadron.district_id if squadron else user.district_id
    _check_district(squadron, district_id)
    if user.squadron_id is not None and user.squadron_id != (squadron and squadron.id):
        # The old squadron's devices hold the user in their roster. Written before the user
        # changes: the removal must come earlier in the change order than the user's new
        # version, or a reader who sees both (the district's supervisor) drops it.
        record_left_scope("user", user, user.squadron_id, actor.user_id, now)
    elif user.squadron_id is None and district_id != user.district_id:
        # No squadron's removal reaches the old district's supervisors, who pull its users.
        record_left_users(
            "user", [user], _district_supervisors(user.district_id, user), actor.user_id, now
        )
    user.squadron_id = squadron.id if squadron else None
    user.district_id = district_id
    for field, value in changes.items():
        setattr(user, field, value)
    demoted = user.role is not Role.admin or not user.active
    if was_admin and demoted and _other_active_admins(user) == 0:
        raise validation_error({"role": ["this is the last active admin; appoint another first"]})
    if password:
        user.password_hash = hash_password(settings, password)
    if changes.get("active") is False or password:
        # A disabled account or a reset password signs out everywhere.
        db.session.execute(
            sa.update(Token)
            .where(Token.user_id == user.id, Token.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    audit.record_update(actor, "user.update", "user", user, before)
    if password:
        audit.record(actor, "user.password_reset", "user", user.id)
    if was_officer and not (user.active and user.role is Role.officer):
        release_assignee(actor, user, now)
    return user


def officers_at(user_ids, when: datetime) -> set:
    """The users among ``user_ids`` who were active officers or leaders at ``when``.

    Read back from the audit log: the state of a user at ``when`` is their state now with the
    changes since then undone, latest first (each ``user.*`` entry keeps the values it
    changed). An inspection made offline with a colleague who has since left the force or been
    made a supervisor still names them as they were that day. (A user's creation is not undone:
    an active officer created after ``when`` is accepted, as every active officer always was.)
    """
    ids = list(user_ids)
    if not ids:
        return set()
    users = {
        user.id: {"active": user.active, "role": user.role.value}
        for user in db.session.scalars(sa.select(User).where(User.id.in_(ids)))
    }
    later = db.session.execute(
        sa.select(AuditEntry.record_id, AuditEntry.before)
        .where(
            AuditEntry.entity == "user",
            AuditEntry.record_id.in_([str(i) for i in users]),
            AuditEntry.at > when,
        )
        .order_by(AuditEntry.seq.desc())
    )
    for record_id, before in later:
        state = users.get(uuid.UUID(record_id))
        if state is not None and before:
            state.update({k: v for k, v in before.items() if k in ("active", "role")})
    squadron_roles = {Role.officer.value, Role.leader.value}
    return {
        user_id
        for user_id, state in users.items()
        if state["active"] and state["role"] in squadron_roles
    }


def _district_supervisors(district_id: int, user: User) -> list:
    """The supervisors of ``district_id`` other than ``user``: they read its users."""
    return list(
        db.session.scalars(
            sa.select(User.id).where(
                User.district_id == district_id, User.role == Role.supervisor, User.id != user.id
            )
        )
    )
