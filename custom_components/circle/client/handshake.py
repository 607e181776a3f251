"""The cable's handshake never follows a redirect (aiohttp's ws_connect would, silently).

aiohttp 3.11 has no `allow_redirects` for websockets, so the handshake goes through a session
that shares the caller's connector (same pool, same TLS settings) and refuses any redirect
from a trace hook, before the redirect is followed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
import logging
from types import SimpleNamespace

import aiohttp
from yarl import URL

from .http import retry_after_seconds
from .reliable import OFFERED_PROTOCOLS
from .supervisor import Refusal

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class Outcome:
    """How one connection attempt ended, for the supervisor."""

    reason: str
    reconnect: bool = True
    connected_for: float | None = None
    retry_after: float | None = None
    refusal: Refusal | None = None  # set when the handshake itself failed


class HandshakeRedirect(Exception):  # noqa: N818 - named for what happened
    """The cable's handshake was answered with a redirect; `where` is scheme://host/path."""

    def __init__(self, status: int, location: str | None) -> None:
        """Keep only where it pointed, without a query or credentials."""
        self.status = status
        self.where = safe_location(location)
        super().__init__(f"Handshake redirected ({status}) to {self.where}")


def safe_location(location: str | None) -> str:
    """Scheme, host and path of a redirect target, never a query, fragment or user info."""
    if not location:
        return "nowhere"
    try:
        url = URL(location)
    except (ValueError, TypeError):
        return "an invalid address"
    if not url.is_absolute():
        return f"the relative path {url.path[:200]}"
    port = f":{url.explicit_port}" if url.explicit_port else ""
    return f"{url.scheme}://{url.host}{port}{url.path[:200]}"


async def _refuse_redirect(
    _session: aiohttp.ClientSession,
    _ctx: SimpleNamespace,
    params: aiohttp.TraceRequestRedirectParams,
) -> None:
    response = params.response
    location = response.headers.get("Location")
    response.close()
    raise HandshakeRedirect(response.status, location)


def no_redirect_session(shared: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """Open a session on `shared`'s connector whose requests fail on any redirect."""
    trace = aiohttp.TraceConfig()
    trace.on_request_redirect.append(_refuse_redirect)  # type: ignore[arg-type,unused-ignore]
    return aiohttp.ClientSession(
        connector=shared.connector,
        connector_owner=False,
        headers=shared.headers,
        trace_configs=[trace],
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def open_socket(
    http: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    *,
    connect_timeout: float,
    close_timeout: float,
    max_msg_size: int,
    warn: Callable[[str, str], None],
) -> aiohttp.ClientWebSocketResponse | Outcome:
    """Upgrade to a websocket, or name why not (a refusal is only named: no verdict here)."""
    try:
        async with asyncio.timeout(connect_timeout):
            return await http.ws_connect(
                url,
                protocols=OFFERED_PROTOCOLS,
                headers=headers,
                autoclose=True,
                autoping=True,
                max_msg_size=max_msg_size,
                timeout=aiohttp.ClientWSTimeout(ws_close=close_timeout),
            )
    except HandshakeRedirect as err:
        warn(
            "redirect",
            f"Circle's cable answered {err.status} with a redirect to {err.where}, "
            "which is not followed: check the Circle server address",
        )
        return Outcome("redirected", refusal=Refusal.TRANSIENT)
    except aiohttp.WSServerHandshakeError as err:
        return handshake_refused(err, headers.get("Origin"), warn)
    except (aiohttp.ClientError, TimeoutError, OSError) as err:
        _LOGGER.debug("Cable connect failed: %s", type(err).__name__)
        return Outcome("cannot_connect", refusal=Refusal.TRANSIENT)


def handshake_refused(
    err: aiohttp.WSServerHandshakeError,
    origin: str | None,
    warn: Callable[[str, str], None],
) -> Outcome:
    """Name a refused upgrade; only the supervisor (with REST's word) gives a verdict."""
    if err.status == 404:
        warn(
            "origin",
            f"Circle refused the cable handshake (404): is the Origin "
            f"{origin or '(none)'} whitelisted?",
        )
        return Outcome("origin_rejected", refusal=Refusal.ORIGIN_404)
    if err.status in (401, 403):
        return Outcome(f"handshake_{err.status}", refusal=Refusal.HANDSHAKE)
    retry = err.headers.get("Retry-After") if err.headers else None
    if err.status == 429:
        return Outcome(
            "rate_limited",
            refusal=Refusal.RATE_LIMITED,
            retry_after=retry_after_seconds(retry),
        )
    return Outcome(
        f"handshake_{err.status}",
        refusal=Refusal.TRANSIENT,
        retry_after=retry_after_seconds(retry) if retry else None,
    )
