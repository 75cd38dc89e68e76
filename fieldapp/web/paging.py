"""Paging without COUNT: fetch one row more than asked to know whether a next page exists,
so a page costs the same however large the table grows."""

from __future__ import annotations

import sqlalchemy as sa

from fieldapp.db import db


def paginate(query: sa.Select, page: int, per_page: int, *, scalars: bool = True) -> dict:
    rows = db.session.execute(query.limit(per_page + 1).offset((page - 1) * per_page))
    items = list(rows.scalars() if scalars else rows)
    return {
        "items": items[:per_page],
        "page": page,
        "per_page": per_page,
        "has_more": len(items) > per_page,
    }
