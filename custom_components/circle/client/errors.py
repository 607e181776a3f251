"""Typed errors of the Circle client.

Messages carry Circle's own error text and the HTTP status, never a token.
"""

from __future__ import annotations

import logging


def log_bug(logger: logging.Logger, where: str, count: int) -> None:
    """Log the exception being handled: the first one at ERROR with its traceback, others at DEBUG.

    For bugs (exceptions of unexpected types) that are caught and retried: one traceback is
    enough to report it, and a retry loop must not flood the log.
    """
    logger.log(
        logging.ERROR if count == 1 else logging.DEBUG,
        "Unexpected error %s (%s so far); retrying",
        where,
        count,
        exc_info=count == 1,
    )


class CircleError(Exception):
    """Base class of every error the client raises."""


class CircleConnectionError(CircleError):
    """Circle could not be reached, timed out or answered with a (temporary) server error.

    `retry_after` is Circle's Retry-After (clamped to [1 s, 1 h]) when it sent one, else None.
    """

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        """Keep Circle's suggested delay, if any."""
        super().__init__(message)
        self.retry_after = retry_after


class CircleAuthenticationError(CircleError):
    """The Headless Auth app token was rejected: the user must re-authenticate."""


class CircleNotEligibleError(CircleError):
    """The community's plan has no headless API access (HTTP 403)."""


class CircleMemberNotFoundError(CircleError):
    """No community member matches the configured id or email (HTTP 404).

    A 422 from the mint call is a server error ("contact support"): it raises
    `CircleConnectionError`, so callers retry with backoff.
    """


class CircleRateLimitError(CircleError):
    """Circle answered 429; no call should be made before `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        """Keep the delay so callers can schedule the next attempt."""
        super().__init__(message)
        self.retry_after = retry_after


class CircleApiError(CircleError):
    """Circle answered a member API call with an unexpected status or body."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """Keep the HTTP status for callers that branch on it."""
        super().__init__(message)
        self.status = status


class CircleInvalidInputError(CircleApiError, ValueError):
    """A value refused before any request: e.g. a room uuid that may not go into a URL path."""


def verdict_reason(err: CircleError) -> str | None:
    """Name a definite authentication verdict; None for a passing failure."""
    if isinstance(err, CircleNotEligibleError):
        return "not_eligible"
    if isinstance(err, CircleMemberNotFoundError):
        return "member_not_found"
    if isinstance(err, CircleAuthenticationError):
        return "auth_failed"
    return None
