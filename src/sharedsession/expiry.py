"""Idle (sliding) and absolute deadline arithmetic. Times are epoch seconds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExpiryPolicy:
    """How long a session lives.

    :param idle: Seconds a session lives after its last refresh (sliding).
    :param absolute: Seconds a session may live after its creation, however
        active it is, or ``None`` for no hard cap.
    """

    idle: float
    absolute: float | None = None

    def __post_init__(self) -> None:
        if self.idle <= 0:
            raise ValueError(f"idle lifetime must be positive, got {self.idle}")
        if self.absolute is not None and self.absolute <= 0:
            raise ValueError(f"absolute lifetime must be positive, got {self.absolute}")

    def absolute_deadline(self, created: float) -> float | None:
        """The hard deadline of a session created at ``created``."""
        return None if self.absolute is None else created + self.absolute

    def deadline(self, now: float, absolute_deadline: float | None) -> float:
        """When a session refreshed at ``now`` expires: the idle deadline, capped."""
        return cap(now + self.idle, absolute_deadline)

    def refresh_step(self) -> float:
        """How far the deadline may lag behind before a read-only refresh is written.

        Refreshing on every read would turn every read into a write for stores
        that pay for writes (SQLite); a lag of 1% of the idle lifetime, at most
        a minute, is invisible to users.
        """
        return min(60.0, self.idle / 100)


def kept(has: float, deadline: float, step: float) -> bool:
    """Whether a write leaves the deadline ``has`` (the one the client's cookie
    was sent with) instead of moving it to ``deadline``: the new one is no
    earlier and at most ``step`` (> 0) later. The Redis ``write_keys`` script
    applies the same rule."""
    return step > 0 and has <= deadline <= has + step


def cap(deadline: float, absolute_deadline: float | None) -> float:
    """``deadline``, but never past ``absolute_deadline``."""
    return deadline if absolute_deadline is None else min(deadline, absolute_deadline)
