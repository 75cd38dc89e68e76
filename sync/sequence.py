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

import sqlalchemy as sa
from sqlalchemy.orm import Session


def allocate(session: Session, counter: sa.Table, count: int) -> int:
    """Reserve ``count`` consecutive sequence numbers and return the first one.

    Takes (and keeps until the transaction ends) the counter row's lock.
    """
    if count < 1:
        raise ValueError("count must be positive")
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
    changed = [attr.key for attr in state.attrs if attr.history.has_changes()]
    return changed == ["change_seq"]
