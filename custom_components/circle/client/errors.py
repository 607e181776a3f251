"""Typed errors of the Circle client.

Messages carry Circle's own error text and the HTTP status, never a token.
"""

from __future__ import annotations


class CircleError(Exception):
    """Base class of every error the client raises."""


class CircleConnectionError(CircleError):
    """Circle could not be reached, timed out or answered with a server error."""


class CircleAuthenticationError(CircleError):
    """The Headless Auth app token was rejected: the user must re-authenticate."""


class CircleNotEligibleError(CircleError):
    """The community's plan has no headless API access (HTTP 403)."""


class CircleMemberNotFoundError(CircleError):
    """No community member matches the configured id or email (HTTP 404 or 422)."""


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
