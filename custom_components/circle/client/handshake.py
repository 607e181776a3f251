"""The cable's handshake never follows a redirect (aiohttp's ws_connect would, silently).

aiohttp 3.11 has no `allow_redirects` for websockets, so the handshake goes through a session
that shares the caller's connector (same pool, same TLS settings) and refuses any redirect
from a trace hook, before the redirect is followed.
"""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
from yarl import URL


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
