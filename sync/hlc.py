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
    #: The server's time (ms) this clock was clamped to, when the device's clock ran far
    #: ahead (None: not clamped). A clamped clock keeps the device's own order only among the
    #: clocks clamped at that time, its batch's (see :func:`sync.merge.merge_lww`). Not part
    #: of the clock's value: it compares and prints as the clock alone.
    clamped_at: int | None = field(default=None, compare=False)
    #: The physical part (ms) of the last clock clamped in the same batch: the batch's clamped
    #: clocks lie from ``clamped_at`` to it, so that a clock of the device stored after it (up
    #: to a minute past ``clamped_at``) is known to be one accepted unclamped, and earlier by
    #: the device's own clock (see :func:`sync.merge.clock_later`).
    batch_until: int | None = field(default=None, compare=False)

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
        """This clock, or one at the server's time if it runs more than a minute ahead.

        At the server's time, not later: a device whose clock runs far ahead must not win
        against an edit made after it arrived. (Its own earlier edits, accepted up to a minute
        ahead, it still beats: see :func:`sync.merge.clock_later`.) Returns the clock to use
        and whether it was clamped (the device's clock is skewed).
        """
        if self.physical_ms > now_ms + MAX_SKEW_MS:
            return HLC(now_ms, self.counter, self.node, now_ms, now_ms), True
        return self, False

    def after(self, node: str) -> HLC:
        """The next clock after this one, for ``node`` (the counter has four digits: past
        9999 the physical part moves on a millisecond), clamped at the same time if it was."""
        if self.counter < 9999:
            return HLC(self.physical_ms, self.counter + 1, node, self.clamped_at, self.batch_until)
        return HLC(self.physical_ms + 1, 0, node, self.clamped_at, self.batch_until)


def later(a: HLC | None, b: HLC | None) -> bool:
    """Whether ``a`` is later than ``b`` (a missing clock is the earliest of all)."""
    if a is None:
        return False
    if b is None:
        return True
    return a > b
