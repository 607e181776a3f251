"""The address rules of the config flow, also applied by the migration and at setup.

https:// only (http:// only to loopback), no user name or password, no backslash, a valid
host and port: an address that breaks them never gets the app token or a member token.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

import voluptuous as vol
from yarl import URL

# Why an address was refused (the config flow has a translated error for each reason).
INVALID: Final = "invalid"
INSECURE: Final = "insecure"
CREDENTIALS: Final = "credentials"

_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.IGNORECASE)
_AUTHORITY_END = re.compile(r"[/?#]")


def _host_error(host: str) -> str | None:
    """None for a DNS name or an IP address; INVALID otherwise."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.removesuffix(".").split(".")
        if labels[-1].isdigit() or not all(map(_HOST_LABEL.fullmatch, labels)):
            return INVALID
    return None


def _is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: the only hosts that may be reached over http://."""
    if host.removesuffix(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_url(value: str) -> str:
    r"""Return `scheme://host[:port]` of an address typed by the user; vol.Invalid if refused.

    https:// is added when no scheme is given. http:// is accepted only for loopback hosts.
    User names, passwords, "@" and backslashes are refused before parsing, so that
    `app.circle.so@evil.com` or `app.circle.so\\@evil.com` never resolves to evil.com.
    """
    text = value.strip()
    if "\\" in text:
        raise vol.Invalid(CREDENTIALS)
    if not text or not text.isprintable() or any(ch.isspace() for ch in text):
        raise vol.Invalid(INVALID)
    if "://" not in text:
        text = f"https://{text}"
    authority = _AUTHORITY_END.split(text.partition("://")[2], maxsplit=1)[0]
    if "@" in authority:
        raise vol.Invalid(CREDENTIALS)
    if authority.endswith(":"):  # an empty port: `https://https://host` is no address
        raise vol.Invalid(INVALID)
    try:
        url = URL(text)
        origin = str(url.origin())
    except ValueError as err:  # bad port, broken IPv6 literal, bad IDNA name
        raise vol.Invalid(INVALID) from err
    host = url.raw_host or ""
    if (
        url.scheme not in ("http", "https")
        or not host
        or url.explicit_port == 0
        or _host_error(host)
    ):
        raise vol.Invalid(INVALID)
    if url.scheme == "http" and not _is_loopback(host):
        raise vol.Invalid(INSECURE)
    return origin


def address_error(value: object) -> str | None:
    """None when `value` is an address the config flow would accept; else the reason."""
    if not isinstance(value, str):
        return INVALID
    try:
        normalise_url(value)
    except vol.Invalid as err:
        return str(err.msg)
    return None
