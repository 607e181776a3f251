"""When to renew the access token ahead of expiry: a sans-IO schedule on an injectable clock.

Proactive renewals come `margin` before expiry, but never sooner than `spacing` after the last
renewal; when fresh tokens are already due (a clock ahead of Circle's, a garbage expiry), the
spacing doubles up to `max_spacing`, so a bad expiry can never become a renewal loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import time
from typing import Final

# However long a token claims to live, check again after this long.
MAX_REFRESH_WAIT: Final = 12 * 3600.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RenewalSchedule:
    """Decides how long until the next proactive renewal; never does I/O."""

    def __init__(
        self,
        margin: timedelta,
        min_interval: float,
        max_spacing: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        utcnow: Callable[[], datetime] = _utcnow,
    ) -> None:
        """Renew `margin` before expiry, at least `min_interval` s after the last renewal."""
        self.margin = margin
        self.min_interval = min_interval
        self.max_spacing = max_spacing
        self.spacing = min_interval
        self.last_renewal: float | None = None  # monotonic
        self._was_early = False
        self._monotonic = monotonic
        self._utcnow = utcnow

    def due_in(self, expires_at: datetime | None) -> float:
        """Seconds until the token expiring at `expires_at` should be renewed (0: now).

        Never less than the spacing since the last renewal: an expiry already inside the
        margin (or in the past) means "renew now, then wait", never a loop.
        """
        if expires_at is None:
            return 0.0
        try:
            due = (expires_at - self.margin - self._utcnow()).total_seconds()
        except OverflowError:
            due = 0.0
        due = min(due, MAX_REFRESH_WAIT)
        if self.last_renewal is not None:
            due = max(due, self.last_renewal + self.spacing - self._monotonic())
        return max(0.0, due)

    def renewed(self, expires_at: datetime) -> None:
        """Note a renewal; a token already due at birth lengthens the next pause."""
        self.last_renewal = self._monotonic()
        try:
            early = expires_at - self.margin <= self._utcnow()
        except OverflowError:
            early = True
        self.spacing = (
            min(self.spacing * 2, self.max_spacing)
            if early and self._was_early
            else self.min_interval
        )
        self._was_early = early
