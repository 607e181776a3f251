"""The one rule for a server's Retry-After, for REST, the cable and the read-backs.

At least 1 s, so that no answer makes a loop without a wait; at most 1 h, so that no answer
blocks for good. An answer that is not a number (nan) is taken as the most cautious one.
"""

from __future__ import annotations

import math
from typing import Final

MIN_RETRY_AFTER: Final = 1.0
MAX_RETRY_AFTER: Final = 3600.0


def clamp_retry_after(seconds: float) -> float:
    """Clamp a delay to [1 s, 1 h]: nan and +inf give 1 h; zero, less and -inf give 1 s."""
    if math.isnan(seconds) or seconds > MAX_RETRY_AFTER:
        return MAX_RETRY_AFTER
    return max(MIN_RETRY_AFTER, seconds)


def retry_after_floor(seconds: float | None) -> float:
    """Return the least wait a server asked for: its clamped Retry-After, 0 when it sent none."""
    return 0.0 if seconds is None else clamp_retry_after(seconds)
