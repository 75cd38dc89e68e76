"""Hybrid logical clocks as devices send them: ``"0001763712000123:0002:d-7f3a"``.

16 digits of physical milliseconds, 4 digits of counter, the device id. Clocks compare by
(physical, counter, device), so two clocks are never equal unless they are the same event.
The server never trusts a physical part far ahead of its own clock: it clamps it and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HLC_PATTERN = re.compile(r"([0-9]{16}):([0-9]{4}):([A-Za-z0-9._:-]{1,64})")

#: How far a device's clock may run ahead of the server's before it is clamped.
MAX_SKEW_MS = 60_000

SERVER_NODE = "server"


class HLCError(ValueError):
    """Not a hybrid logical clock."""


@dataclass(frozen=True, order=True)
class HLC:
    physical_ms: int
    counter: int
    node: str
    #: The physical time (ms) this clock was clamped to, when the device's clock ran far
    #: ahead (None: not clamped): the latest the server accepts unclamped at the time. A
    #: clamped clock keeps the device's own order only among the clocks clamped at that time,
    #: its batch's (see :func:`sync.merge.merge_lww`). Not part of the clock's value: it
    #: compares and prints as the clock alone.
    clamped_at: int | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, text: str) -> HLC:
        match = HLC_PATTERN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise HLCError(
                "an hlc is 16 digits of milliseconds, 4 digits of counter and the device id,"
                " e.g. 0001763712000123:0002:d-7f3a"
            )
        return cls(int(match.group(1)), int(match.group(2)), match.group(3))

    def __str__(self) -> str:
        return f"{self.physical_ms:016d}:{self.counter:04d}:{self.node}"

    @classmethod
    def server(cls, now_ms: int, counter: int = 0) -> HLC:
        """The clock of a change made on the server (a leader's edit, a resolution)."""
        return cls(now_ms, counter, SERVER_NODE)

    def clamped(self, now_ms: int) -> tuple[HLC, bool]:
        """This clock, or, if it runs more than a minute ahead, one at the latest the server
        accepts unclamped (its time plus :data:`MAX_SKEW_MS`).

        Not at the server's time itself: the same device's earlier edit, accepted unclamped up
        to a minute ahead, would then hold a later clock than its later, clamped one, and beat
        it. Returns the clock to use and whether it was clamped (the device's clock is skewed).
        """
        limit = now_ms + MAX_SKEW_MS
        if self.physical_ms > limit:
            return HLC(limit, self.counter, self.node, clamped_at=limit), True
        return self, False

    def after(self, node: str) -> HLC:
        """The next clock after this one, for ``node`` (the counter has four digits: past
        9999 the physical part moves on a millisecond), clamped at the same time if it was."""
        if self.counter < 9999:
            return HLC(self.physical_ms, self.counter + 1, node, clamped_at=self.clamped_at)
        return HLC(self.physical_ms + 1, 0, node, clamped_at=self.clamped_at)


def later(a: HLC | None, b: HLC | None) -> bool:
    """Whether ``a`` is later than ``b`` (a missing clock is the earliest of all)."""
    if a is None:
        return False
    if b is None:
        return True
    return a > b
