"""The config flow's address rules in Home Assistant's terms; the rules live in the client.

Applied by the config flow, the migration and setup, and (by the client) by the probe: an
address that breaks them never gets the app token or a member token.
"""

from __future__ import annotations

from .client.urls import (
    CREDENTIALS,
    INSECURE,
    INVALID,
    AddressError,
    normalise_url as _client_normalise_url,
)
from .compat import vol

__all__ = ["CREDENTIALS", "INSECURE", "INVALID", "address_error", "normalise_url"]


def normalise_url(value: str) -> str:
    """Return `scheme://host[:port]` by the client's address rules; vol.Invalid if refused."""
    try:
        return _client_normalise_url(value)
    except AddressError as err:
        raise vol.Invalid(err.reason) from err


def address_error(value: object) -> str | None:
    """None when `value` is an address the config flow would accept; else the reason."""
    if not isinstance(value, str):
        return INVALID
    try:
        _client_normalise_url(value)
    except AddressError as err:
        return err.reason
    return None
