"""The global change sequence that pull cursors follow.

Every syncable row carries ``change_seq``: the value of one database-wide counter taken when the
row last changed. The counter is a single row that a writing transaction increments with
``UPDATE ... RETURNING``. That row lock is held until the transaction ends, so a second writer
cannot take a number until the first has committed or rolled back. Numbers therefore become
visible in the order they were handed out: once a reader sees sequence ``n`` committed, every
number below ``n`` is committed too or was never used. A cursor that remembers the highest number
it served can never skip a change that commits later with a lower number. See docs/decisions.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

#: ``session.info`` key of the numbers :func:`reserve` took and not yet handed out.
_POOL = "sync.change_seq_pool"


@dataclass
class _Pool:
    transaction: SessionTransaction
    next: int
    end: int  # one past the last


def reserve(session: Session, counter: sa.Table, count: int) -> None:
    """Take ``count`` numbers in one UPDATE for the rest of this transaction; :func:`allocate`
    hands them out before it asks the counter again.

    A push of 500 edits otherwise updates the counter row 500 times. Numbers left over are
    gaps, which cursors do not mind. Only outside a savepoint: a savepoint rolled back would
    return the numbers to the counter while the pool still held them.
    """
    session = _unscoped(session)
    if session.get_nested_transaction() is not None:
        raise RuntimeError("reserve change sequence numbers outside any savepoint")
    first = _take(session, counter, count)
    session.info[_POOL] = _Pool(session.get_transaction(), first, first + count)


def allocate(session: Session, counter: sa.Table, count: int) -> int:
    """Reserve ``count`` consecutive sequence numbers and return the first one.

    Takes (and keeps until the transaction ends) the counter row's lock, unless this
    transaction holds it already through :func:`reserve` and enough reserved numbers are left.
    """
    if count < 1:
        raise ValueError("count must be positive")
    session = _unscoped(session)
    pool = session.info.get(_POOL)
    if pool is not None:
        if pool.transaction is not session.get_transaction() or not pool.transaction.is_active:
            del session.info[_POOL]  # a pool of a transaction that has ended
        elif pool.end - pool.next >= count:
            first, pool.next = pool.next, pool.next + count
            return first
    return _take(session, counter, count)


def hold(session: Session, counter: sa.Table) -> None:
    """Take the counter's row lock now, before this transaction locks any row it writes, unless
    it holds the lock already; numbers are taken later, as they are needed.

    Every writer takes its locks in one order, the counter first and rows after it: a writer
    that locked a row first and then waited for the counter could wait for one that holds the
    counter and waits for that row (a deadlock, 503 to one of them). A flush takes the counter
    by itself before it writes a synced row; a writer that locks or reads a row to decide what
    to write (a resolution, a complaint's decision, a risk assessment) calls this first. Inside
    a savepoint it always asks: a lock taken there is given back if the savepoint rolls back.
    """
    session = _unscoped(session)
    pool = session.info.get(_POOL)
    if (
        pool is not None
        and pool.transaction is session.get_transaction()
        and pool.transaction.is_active
    ):
        return  # reserve took the lock, kept to the transaction's end
    if session.get_nested_transaction() is None:
        reserve(session, counter, 0)
    else:
        _take(session, counter, 0)


def _unscoped(session: Session | scoped_session) -> Session:
    return session() if isinstance(session, scoped_session) else session


def _take(session: Session, counter: sa.Table, count: int) -> int:
    last = session.execute(
        sa.update(counter)
        .where(counter.c.id == 1)
        .values(value=counter.c.value + count)
        .returning(counter.c.value)
    ).scalar_one()
    return last - count + 1


def assign_change_seqs(session: Session, counter: sa.Table) -> None:
    """Give every new or changed syncable object in ``session`` a fresh ``change_seq``.

    Meant for a ``before_flush`` listener. Objects take part when their class sets
    ``__syncable__ = True``; an object whose only pending change is its ``change_seq`` is left
    alone so that flushing twice does not renumber it.
    """
    pending = [obj for obj in session.new if getattr(obj, "__syncable__", False)]
    pending += [
        obj
        for obj in session.dirty
        if getattr(obj, "__syncable__", False)
        and session.is_modified(obj, include_collections=False)
        and not _only_sequence_changed(obj)
    ]
    if not pending:
        return
    first = allocate(session, counter, len(pending))
    for offset, obj in enumerate(pending):
        obj.change_seq = first + offset


def _only_sequence_changed(obj) -> bool:
    state = sa.inspect(obj)
    # Only the attributes set since the last flush: asking every attribute (relationships
    # too) for its history cost more than the rest of an edit's flush.
    changed = [key for key in state.committed_state if state.attrs[key].history.has_changes()]
    return changed == ["change_seq"]
