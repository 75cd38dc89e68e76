"""Who is acting: the user, the device they act from, and the request that carries it.

Operations take an :class:`Actor` instead of reading the request, so the same code serves HTTP
views, CLI commands and the sync engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fieldapp.auth.models import User


@dataclass(frozen=True)
class Actor:
    user: User | None
    device_id: str | None = None
    request_id: str | None = None
    #: For actions taken by no user: "cli", "demo", "migration", ...
    system: str | None = None

    @classmethod
    def for_system(cls, name: str) -> Actor:
        return cls(user=None, system=name)

    @property
    def user_id(self):
        return self.user.id if self.user is not None else None

    def __str__(self) -> str:
        return self.user.username if self.user is not None else f"system:{self.system}"
