"""Database foundation: the SQLAlchemy handle, portable column types, the syncable mixin and
bulk inserts (COPY on PostgreSQL)."""

from __future__ import annotations

import enum
import functools
import typing
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sync.sequence import allocate, assign_change_seqs

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

#: JSON that is JSONB on PostgreSQL (indexable, compact) and JSON text on SQLite.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

#: JSON kept as the text it was written as, on every database (``json`` on PostgreSQL, not
#: ``jsonb``, which would reorder keys, drop duplicates and print its own spacing): for values
#: read back as text and served or hashed as they are (pull pages, the audit chain).
JSONAsWritten = sa.JSON()

#: 64-bit integers that are still SQLite's rowid alias when used as a primary key.
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def driver_said(exc: sa.exc.DBAPIError) -> str:
    """What the database driver said, on one line (for a log line or a command's error)."""
    return " ".join(str(exc.orig).split()) or type(exc.orig).__name__


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite has no timezone type; without this, values would come back naive and compare
    wrongly with aware ones.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; fieldapp stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(enum_cls: type[enum.Enum], **kwargs) -> sa.Enum:
    """A portable enum column: VARCHAR plus a CHECK constraint listing the allowed values."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda cls: [m.value for m in cls],
        validate_strings=True,
        **({"name": enum_cls.__name__.lower()} | kwargs),
    )


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


change_counter = sa.Table(
    "sync_change_counter",
    Base.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)


class Syncable:
    """Rows that devices pull: a per-record ``version`` and the global ``change_seq``.

    ``version`` starts at 1 and SQLAlchemy raises ``StaleDataError`` when an UPDATE finds another
    version than the one loaded, so two writers can never silently overwrite each other.
    """

    __syncable__ = True

    version: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)
    change_seq: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0, index=True)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )

    @sa.orm.declared_attr.directive
    def __mapper_args__(cls):
        return {"version_id_col": cls.__table__.c.version}


@sa.event.listens_for(sa.orm.Session, "before_flush")
def _number_changes(session, flush_context, instances):
    assign_change_seqs(session, change_counter)


def _is_sqlite(dbapi_connection) -> bool:
    return type(dbapi_connection).__module__.startswith("sqlite3")


@sa.event.listens_for(sa.Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """Foreign keys on, and WAL so that readers don't block the writer in the demo server.

    Python's sqlite3 module also begins transactions lazily on its own, which breaks
    SAVEPOINT (one change per savepoint in sync); we switch that off and emit BEGIN ourselves.
    """
    if _is_sqlite(dbapi_connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


@sa.event.listens_for(sa.Engine, "begin")
def _sqlite_begin(connection):
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")


def flush_edits(session: sa.orm.Session) -> None:
    """Write the pending column changes of loaded syncable objects with one executemany UPDATE
    per table and set of changed columns, as the ORM's flush would write them one by one.

    The ORM never batches the UPDATEs of a versioned mapper (it checks each row's count), and
    they were a fifth of a push of stale edits on PostgreSQL. Here too each row is written only
    where it still holds the version it was loaded at: the executemany's count must be the
    number of rows, or ``StaleDataError`` is raised as the ORM's flush raises it. Each object
    gets its next version, a change sequence number and its ``onupdate`` values (``updated_at``),
    and is left as a flush leaves it. Objects with other pending changes (relationships) are
    left to the ORM.
    """
    groups: dict[tuple, list[tuple[sa.orm.InstanceState, dict]]] = defaultdict(list)
    for obj in list(session.dirty):
        if not getattr(obj, "__syncable__", False):
            continue
        state = sa.inspect(obj)
        mapper = state.mapper
        if state.key is None or len(mapper.tables) != 1 or state.deleted:
            continue
        if any(key not in mapper.column_attrs for key in state.committed_state):
            continue
        values = {
            key: state.dict[key] for key in state.committed_state if state.attrs[key].history.added
        }
        values.pop("change_seq", None)  # a fresh one is taken, as at every flush
        if not values or mapper.version_id_col is None or len(mapper.primary_key) != 1:
            continue
        groups[(mapper.local_table, mapper, tuple(sorted(values)))].append((state, values))
    if not groups:
        return
    with session.no_autoflush:  # else taking the numbers would flush the objects the ORM's way
        first = allocate(session, change_counter, sum(len(m) for m in groups.values()))
    connection = session.connection()
    for (table, mapper, keys), members in groups.items():
        version_key = mapper.get_property_by_column(mapper.version_id_col).key
        onupdate = [
            prop.key
            for prop in mapper.column_attrs
            if prop.columns[0].onupdate is not None and prop.key not in keys
        ]
        written = [*keys, "change_seq", version_key, *onupdate]
        column = {key: mapper.get_property(key).columns[0] for key in written}
        statement = (
            sa.update(table)
            .where(
                mapper.primary_key[0] == sa.bindparam("pk_"),
                mapper.version_id_col == sa.bindparam("loaded_version_"),
            )
            .values({column[key]: sa.bindparam(f"{key}_") for key in written})
        )
        updates = []
        for state, values in members:
            loaded = state.dict[version_key]
            values |= {"change_seq": first, version_key: loaded + 1}
            values |= {key: _onupdate_value(column[key]) for key in onupdate}
            first += 1
            updates.append((state, loaded, values))
        count = connection.execute(
            statement,
            [
                {"pk_": state.identity[0], "loaded_version_": loaded}
                | {f"{key}_": value for key, value in values.items()}
                for state, loaded, values in updates
            ],
        ).rowcount
        if count != len(updates):
            raise sa.orm.exc.StaleDataError(
                f"UPDATE of {table.name} expected {len(updates)} rows at their loaded versions, "
                f"matched {count}"
            )
        for state, _, values in updates:
            state.dict.update(values)
        # What the ORM's flush does last with the rows it wrote (a private step of
        # SQLAlchemy's, hence the upper bound in pyproject.toml): the objects are clean, and a
        # savepoint rolled back expires them.
        session._register_persistent({state for state, _, _ in updates})


def _onupdate_value(column: sa.Column):
    update = column.onupdate
    return update.arg(None) if update.is_callable else update.arg


def insert_rows(connection: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """Insert many rows at once: what one executemany ``INSERT`` with these rows would store.

    COPY on PostgreSQL; elsewhere one executemany of a statement compiled once per table and
    set of keys. A batch of creates writes hundreds of rows, and SQLAlchemy's own executemany
    compiled the statement and looked up every column's bind processing again at each call (a
    fifth of the five inserts of a batch of creates on SQLite). Values go through the columns' own
    bind processing (so ``None`` in a JSON column is JSON ``null``, as INSERT stores it), and
    columns the rows leave out get their Python-side defaults. Every row has the first row's
    keys. Errors are raised as SQLAlchemy raises them for an INSERT (``IntegrityError`` for a
    taken key).
    """
    if not rows:
        return
    dialect = connection.dialect
    plan = _insert_plan(table, tuple(rows[0]), dialect)
    if dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        try:
            _copy(cursor, plan, rows)
        except dialect.loaded_dbapi.Error as error:
            raise sa.exc.DBAPIError.instance(
                plan.statement, None, error, dialect.loaded_dbapi.Error, dialect=dialect
            ) from error
    else:
        connection.exec_driver_sql(plan.statement, [plan.values(row) for row in rows])


@dataclass(frozen=True)
class _InsertPlan:
    #: COPY on PostgreSQL, else a positional INSERT of the same columns in the same order
    statement: str
    #: (key, bind processor or None) of the columns the rows give, in the statement's order
    given: list[tuple[str, typing.Callable | None]]
    #: (the column's default, bind processor or None) of the columns left to their defaults
    defaulted: list[tuple[sa.ColumnDefault, typing.Callable | None]]

    def values(self, row: dict) -> tuple:
        """The row's values as the database takes them, in the statement's order."""
        values = [row[key] if process is None else process(row[key]) for key, process in self.given]
        for default, process in self.defaulted:
            value = default.arg(None) if default.is_callable else default.arg
            values.append(value if process is None else process(value))
        return tuple(values)


@functools.lru_cache(maxsize=256)
def _insert_plan(table: sa.Table, keys: tuple[str, ...], dialect) -> _InsertPlan:
    """How to insert rows with these keys into ``table``, worked out once per table and set of
    keys: building the statement and the columns' bind processors cost more than storing a few
    rows."""
    given = [column for column in table.columns if column.key in keys]
    defaulted = [
        column
        for column in table.columns
        if column.key not in keys
        and column.default is not None
        and (column.default.is_scalar or column.default.is_callable)
    ]

    def processor(column: sa.Column):
        return column.type.dialect_impl(dialect).bind_processor(dialect)

    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(c.name) for c in given + defaulted)
    if dialect.name == "postgresql":
        statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    else:
        if dialect.paramstyle != "qmark":
            raise NotImplementedError(
                f"bulk inserts need qmark parameters, not {dialect.paramstyle}"
            )
        marks = ", ".join(["?"] * len(given + defaulted))
        statement = f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({marks})"
    return _InsertPlan(
        statement=statement,
        given=[(column.key, processor(column)) for column in given],
        defaulted=[(column.default, processor(column)) for column in defaulted],
    )


def _copy(cursor, plan: _InsertPlan, rows: list[dict]) -> None:
    with cursor, cursor.copy(plan.statement) as copy:
        for row in rows:
            copy.write_row(plan.values(row))
