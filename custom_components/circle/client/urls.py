r"""Address rules shared by the config flow, setup and the probe, and safe printing of URLs.

A Circle address is https://, or http:// to a loopback host only (the app token must never
travel in clear). User names, passwords, "@" and backslashes are refused before parsing, so
that `app.circle.so@evil.com` or `app.circle.so\@evil.com` never resolves to evil.com.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from yarl import URL

INVALID: Final = "invalid"
INSECURE: Final = "insecure"
CREDENTIALS: Final = "credentials"

_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.IGNORECASE)
_AUTHORITY_END = re.compile(r"[/?#]")


class AddressError(ValueError):
    """An address refused by the rules; `reason` is INVALID, INSECURE or CREDENTIALS."""

    def __init__(self, reason: str) -> None:
        """Keep the reason, which the config flow maps to a translated error."""
        super().__init__(reason)
        self.reason = reason


def host_error(host: str) -> str | None:
    """Return None for a DNS name or an IP address; INVALID otherwise."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.removesuffix(".").split(".")
        if labels[-1].isdigit() or not all(map(_HOST_LABEL.fullmatch, labels)):
            return INVALID
    return None


def is_loopback(host: str) -> bool:
    """Tell localhost, 127.0.0.0/8 or ::1: the only hosts that may be reached over http://."""
    if host.removesuffix(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_url(value: str) -> str:
    """Return `scheme://host[:port]` of an address typed by a user; AddressError if refused.

    https:// is added when no scheme is given. http:// is accepted only for loopback hosts.
    """
    text = value.strip()
    if "\\" in text:
        raise AddressError(CREDENTIALS)
    if not text or not text.isprintable() or any(ch.isspace() for ch in text):
        raise AddressError(INVALID)
    if "://" not in text:
        text = f"https://{text}"
    authority = _AUTHORITY_END.split(text.partition("://")[2], maxsplit=1)[0]
    if "@" in authority:
        raise AddressError(CREDENTIALS)
    if authority.endswith(":"):  # an empty port: `https://https://host` is no address
        raise AddressError(INVALID)
    try:
        url = URL(text)
        origin = str(url.origin())
    except ValueError as err:  # bad port, broken IPv6 literal, bad IDNA name
        raise AddressError(INVALID) from err
    host = url.raw_host or ""
    if (
        url.scheme not in ("http", "https")
        or not host
        or url.explicit_port == 0
        or host_error(host)
    ):
        raise AddressError(INVALID)
    if url.scheme == "http" and not is_loopback(host):
        raise AddressError(INSECURE)
    return origin


def printable_url(value: str) -> str:
    """Return scheme, host, port and path of a URL: never a query, fragment or user info.

    For output that is documented as holding no token (a `?token=` cable URL must not leak,
    nor a `;token=` path parameter).
    """
    try:
        url = URL(value)
        if not url.absolute or not url.raw_host:
            return "<not an absolute URL>"
        path = "/".join(part.split(";", 1)[0] for part in url.raw_path.split("/"))
        return f"{url.origin()}{path}"
    except (ValueError, TypeError):
        return "<not a URL>"


def check_cable_url(value: str) -> str:
    """Apply the address rules to a cable URL (wss://, or ws:// to loopback); return it.

    Its path and query are kept for connecting (and never printed: see `printable_url`).
    """
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("ws", "wss"):
        raise AddressError(INVALID)
    normalise_url(("https" if scheme.lower() == "wss" else "http") + "://" + rest)
    return text
