"""The cable's token: fetch or renew it for a connection, and ask REST about a refused one.

The supervisor decides what a failure means (`supervisor.py`); this only reports how the
token API or the member API answered, and keeps the error behind an authentication verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
import contextlib
import logging
from typing import Any

from .auth import AccessTokenProvider, CircleAuth
from .errors import (
    CircleAuthenticationError,
    CircleError,
    CircleMemberNotFoundError,
    CircleNotEligibleError,
    CircleRateLimitError,
    verdict_reason,
)
from .hub import CableHub
from .supervisor import CableState, CableSupervisor, Step, StepKind, TokenVerdict
from .tokencheck import TokenCheck
from .waiting import wait_first

_LOGGER = logging.getLogger(__name__.rpartition(".")[0] + ".cable")


class CableToken:
    """The access token the cable connects with; `fatal` holds the error of a verdict."""

    def __init__(
        self,
        auth: AccessTokenProvider,
        token_check: TokenCheck | None,
        hub: CableHub,
        stop: asyncio.Event,
    ) -> None:
        """Use `auth` for tokens and `token_check` (if any) for REST's word on a refusal."""
        self.auth = auth
        self._check = token_check
        self._hub = hub
        self._stop = stop
        self.last: str | None = None
        self.fatal: CircleError | None = None

    async def fetch(self, sup: CableSupervisor, *, renew: bool) -> str | Step:
        """Get (or renew) a token; on failure, the supervisor's next step instead."""
        try:
            if renew and self.last is not None:
                token = await self.auth.async_invalidate(self.last)
            else:
                token = await self.auth.async_get_access_token()
        except (
            CircleAuthenticationError,
            CircleNotEligibleError,
            CircleMemberNotFoundError,
        ) as err:
            self.fatal = err
            return sup.token_failed(fatal=verdict_reason(err) or "auth_failed")
        except CircleRateLimitError as err:
            return sup.token_failed(retry_after=err.retry_after, reason="rate_limited")
        except Exception as err:  # noqa: BLE001 - no verdict: retry soon
            if isinstance(err, CircleError):
                _LOGGER.debug("No access token for the cable: %s", err)
            else:
                self._hub.unexpected("renewing the token")
            return sup.token_failed(retry_after=getattr(err, "retry_after", None))
        sup.token_ready(renewed=renew)
        self.last = token
        return token

    async def check_refused(self, sup: CableSupervisor, origin: str | None) -> Step:
        """Ask the member API about the token the cable refused: the verdict needs its word."""
        verdict, retry_after = TokenVerdict.UNKNOWN, None
        token = self.last
        if self._check is not None and token is not None:
            try:
                verdict, retry_after = await self._check(token)
            except Exception:  # noqa: BLE001 - no verdict on a bug
                self._hub.unexpected("checking the token")
        step = sup.token_checked(verdict, retry_after)
        if step.kind is StepKind.DONE:
            self.fatal = CircleAuthenticationError(
                "Circle refused the member's access token on the cable and the member API"
            )
        elif sup.state is CableState.ORIGIN_REFUSED:
            self._hub.warn_once(
                "origin_refused",
                f"Circle's cable refused the Origin {origin or '(none)'} although "
                "the member API accepts the token: allow that Origin in the community, "
                "or reconfigure the integration with another Origin",
            )
        return step

    async def wait(self, delay: float, *, for_token: bool) -> None:
        """Sleep `delay`, or less: until stop(), or (waiting for a token) until one comes."""
        waits: list[Awaitable[Any]] = [self._stop.wait()]
        if for_token and isinstance(self.auth, CircleAuth):
            waits.append(self.auth.async_wait_renewed())
        await wait_first(waits, delay)

    def start_refresher(self) -> asyncio.Task[None] | None:
        """Keep a `CircleAuth` token fresh ahead of expiry until stop()."""
        auth = self.auth
        if not isinstance(auth, CircleAuth):
            return None
        return asyncio.create_task(self._refresh(auth))

    async def _refresh(self, auth: CircleAuth) -> None:
        """Run the refresher; a bug in there is logged and retried a minute later."""
        while not self._stop.is_set():
            try:
                await auth.async_run_refresher(self._stop)
            except Exception:  # noqa: BLE001 - a bug must not stop the refreshes
                self._hub.unexpected("refreshing the token")
            else:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 60.0)
