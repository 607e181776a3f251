"""The one rule for a server's Retry-After: at least 1 s, at most 1 h."""

from __future__ import annotations

import math
from typing import Final

MIN_RETRY_AFTER: Final = 1.0
MAX_RETRY_AFTER: Final = 3600.0


def clamp_retry_after(seconds: float | None) -> float:
    """Clamp a delay to [1 s, 1 h]: nan and infinity give 1 h, zero or less 1 s; none gives 0."""
    if seconds is None:
        return 0.0
    seconds = float(seconds)
    if math.isnan(seconds) or seconds > MAX_RETRY_AFTER:
        return MAX_RETRY_AFTER
    return max(MIN_RETRY_AFTER, seconds)
