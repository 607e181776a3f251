"""Ask the member API whether a token the cable refused is good (the word a verdict needs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import logging
from typing import TYPE_CHECKING

from .api import API_PREFIX
from .errors import CircleError, CircleRateLimitError
from .http import DEFAULT_TIMEOUT, request_json
from .supervisor import TokenVerdict

if TYPE_CHECKING:
    import aiohttp

_LOGGER = logging.getLogger(__name__)

type TokenCheck = Callable[[str], Awaitable[tuple[TokenVerdict, float | None]]]


def member_token_check(
    session: aiohttp.ClientSession, server_url: str, timeout: float = DEFAULT_TIMEOUT
) -> TokenCheck:
    """Build a check that reads the member with exactly this token (no renewal, no retry).

    200 → VALID, 401 → REJECTED; anything else (5xx, 429, 403 from a CDN, no answer) gives
    UNKNOWN with the Retry-After, if any: no verdict.
    """
    url = server_url.rstrip("/") + API_PREFIX + "/community_member"

    async def check(token: str) -> tuple[TokenVerdict, float | None]:
        try:
            status, _body = await request_json(
                session,
                "GET",
                url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=timeout,
            )
        except CircleRateLimitError as err:
            return TokenVerdict.UNKNOWN, err.retry_after
        except CircleError as err:
            _LOGGER.debug("Checking the refused token failed: %s", err)
            return TokenVerdict.UNKNOWN, getattr(err, "retry_after", None)
        if 200 <= status < 300:
            return TokenVerdict.VALID, None
        if status == 401:
            return TokenVerdict.REJECTED, None
        _LOGGER.debug("Checking the refused token: no verdict (%s)", status)
        return TokenVerdict.UNKNOWN, None

    return check
