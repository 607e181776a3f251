"""Best-effort revocation of member tokens that are no longer used.

On removal, reauthentication and reconfiguration the old access and refresh tokens are revoked
at the server that issued them, in the background with a short timeout: a slow or failing
Circle never holds up the user, and the log names only the kind of failure, never a token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .client import CircleAuth, TokenSet
from .const import DOMAIN, LOGGER

REVOKE_TIMEOUT: Final = 10.0


async def _async_revoke(auth: CircleAuth) -> None:
    try:
        async with asyncio.timeout(REVOKE_TIMEOUT):
            await auth.async_revoke()
    except Exception as err:  # noqa: BLE001 - best effort: never raise, never block
        LOGGER.info("Could not revoke the old Circle tokens (%s)", type(err).__name__)
    else:
        LOGGER.debug("Revoked the old Circle tokens")


def async_revoke_tokens(
    hass: HomeAssistant,
    server_url: str,
    app_token: str,
    tokens: TokenSet | Mapping[str, Any] | None,
) -> asyncio.Task[None] | None:
    """Revoke `tokens` at `server_url` (the server that issued them) in the background."""
    if isinstance(tokens, Mapping):
        tokens = TokenSet.from_dict(tokens)
    if tokens is None or not server_url or not app_token:
        return None
    auth = CircleAuth(
        async_get_clientsession(hass),
        server_url,
        app_token,
        member_id=tokens.community_member_id or 0,
        tokens=tokens,
        request_timeout=REVOKE_TIMEOUT,
    )
    return hass.async_create_background_task(
        _async_revoke(auth), f"{DOMAIN}_revoke_tokens"
    )
