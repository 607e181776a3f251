"""Client errors as Home Assistant translations (setup, actions and repairs share them)."""

from __future__ import annotations

from typing import Any

from homeassistant.exceptions import ConfigEntryAuthFailed, HomeAssistantError
from homeassistant.helpers.update_coordinator import UpdateFailed

from .client import (
    CircleAuthenticationError,
    CircleError,
    CircleMemberNotFoundError,
    CircleNotEligibleError,
    CircleRateLimitError,
)
from .const import DOMAIN


def describe_error(err: CircleError, fallback: str) -> dict[str, Any]:
    """Return the translation arguments (key, placeholders) for a client error."""
    key, placeholders = fallback, {"error": str(err)}
    if isinstance(err, CircleRateLimitError):
        key, placeholders = "rate_limited", {"seconds": f"{err.retry_after:.0f}"}
    elif isinstance(err, CircleAuthenticationError):
        key, placeholders = "auth_failed", {}
    elif isinstance(err, CircleNotEligibleError):
        key, placeholders = "not_eligible", {}
    elif isinstance(err, CircleMemberNotFoundError):
        key, placeholders = "member_not_found", {}
    return {
        "translation_domain": DOMAIN,
        "translation_key": key,
        "translation_placeholders": placeholders,
    }


def setup_error(err: CircleError) -> HomeAssistantError:
    """Map a client error during setup or a refresh: reauth, or retry later."""
    translation = describe_error(err, "cannot_connect")
    if isinstance(err, CircleAuthenticationError):
        return ConfigEntryAuthFailed(**translation)
    return UpdateFailed(**translation)
