"""Headless Auth: mint, refresh and persist a member's tokens.

The access token lives one hour, the refresh token one month and is not rotated. Every caller
asks `async_get_access_token()`; refreshes are single-flight under a lock (the Automower /
OAuth2Session pattern) and each new token set is handed to `on_tokens` so the owner can persist it.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
import logging
from typing import TYPE_CHECKING, Any, Final, Protocol

from .errors import (
    CircleApiError,
    CircleAuthenticationError,
    CircleConnectionError,
    CircleError,
    CircleMemberNotFoundError,
    CircleNotEligibleError,
)
from .http import DEFAULT_TIMEOUT, error_message, request_json
from .models import as_id, parse_datetime
from .renewal import RenewalSchedule
from .supervisor import renewal_delay

if TYPE_CHECKING:
    from collections.abc import Callable

    import aiohttp

_LOGGER = logging.getLogger(__name__)

MINT_PATH = "/api/v1/headless/auth_token"
REFRESH_PATH = "/api/v1/headless/access_token/refresh"
REVOKE_ACCESS_PATH = "/api/v1/headless/access_token/revoke"
REVOKE_REFRESH_PATH = "/api/v1/headless/refresh_token/revoke"

DEFAULT_REFRESH_MARGIN = timedelta(minutes=5)
DEFAULT_REMINT_MARGIN = timedelta(days=1)
# Never renew proactively sooner than this after the last renewal; when fresh tokens are
# already due (a clock ahead of Circle's, a garbage expiry), the spacing doubles up to the cap.
MIN_REFRESH_INTERVAL: Final = 30.0
MAX_REFRESH_SPACING: Final = 1800.0
DEFAULT_ACCESS_LIFETIME: Final = timedelta(hours=1)
# Which bearer the refresh call wants is unconfirmed: the app token (Circle's Node SDK) or the
# refresh token itself (a third-party SDK). Try both, remember what worked.
REFRESH_BEARERS = ("app_token", "refresh_token")


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """Read a JWT's payload without checking its signature (only for expiry and member id)."""
    try:
        payload = token.split(".")[1]
        if len(payload) > 8192:
            return {}
        decoded = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (IndexError, ValueError, RecursionError, TypeError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


@dataclass(slots=True)
class TokenSet:
    """A member's tokens. The secrets never show in repr."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_token_expires_at: datetime
    refresh_token_expires_at: datetime | None
    community_member_id: int | None = None
    community_id: int | None = None

    @classmethod
    def from_response(
        cls, body: Mapping[str, Any], previous: TokenSet | None = None
    ) -> TokenSet:
        """Build from a mint or refresh answer; expiry from the answer, else from the JWT."""
        if not isinstance(body, Mapping):
            raise CircleApiError("Circle's token answer is not an object")
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise CircleApiError("Circle's token answer has no access token")
        claims = decode_jwt_claims(access)
        # Out-of-range or junk expiries count as missing (parse_datetime never raises).
        expires = parse_datetime(body.get("access_token_expires_at"))
        if expires is None:
            expires = parse_datetime(claims.get("exp"))
        if expires is None:
            expires = datetime.now(UTC) + DEFAULT_ACCESS_LIFETIME
        refresh = body.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            if previous is None:
                raise CircleApiError("Circle's token answer has no refresh token")
            refresh = previous.refresh_token
        refresh_expires = parse_datetime(body.get("refresh_token_expires_at"))
        if refresh_expires is None and previous is not None:
            refresh_expires = previous.refresh_token_expires_at
        member_id = as_id(body.get("community_member_id"))
        if member_id is None:
            member_id = as_id(claims.get("community_member_id"))
        community_id = as_id(body.get("community_id"))
        if community_id is None:
            community_id = as_id(claims.get("community_id"))
        return cls(
            access_token=access,
            refresh_token=refresh,
            access_token_expires_at=expires,
            refresh_token_expires_at=refresh_expires,
            community_member_id=member_id
            if member_id is not None
            else (previous.community_member_id if previous else None),
            community_id=community_id
            if community_id is not None
            else (previous.community_id if previous else None),
        )

    def as_dict(self) -> dict[str, Any]:
        """Serialise for storage in a config entry."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "access_token_expires_at": self.access_token_expires_at.isoformat(),
            "refresh_token_expires_at": (
                self.refresh_token_expires_at.isoformat()
                if self.refresh_token_expires_at
                else None
            ),
            "community_member_id": self.community_member_id,
            "community_id": self.community_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenSet | None:
        """Restore from storage; None when anything essential is missing."""
        try:
            return cls.from_response(data)
        except CircleApiError:
            return None


class CircleAuth:
    """Keeps a valid member access token, minting with the Headless Auth app token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        app_token: str,
        *,
        member_id: int | None = None,
        email: str | None = None,
        tokens: TokenSet | None = None,
        on_tokens: Callable[[TokenSet], None] | None = None,
        refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
        remint_margin: timedelta = DEFAULT_REMINT_MARGIN,
        request_timeout: float = DEFAULT_TIMEOUT,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL,
    ) -> None:
        """Identify the member by id or email; stored tokens are reused while valid.

        `min_refresh_interval` spaces proactive renewals (at least this long after the last
        one); a token the server refused (`async_invalidate`) is renewed regardless.
        """
        if member_id is None and not email:
            raise ValueError("A member id or an email is required")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._app_token = app_token
        self._member_id = member_id
        self._email = email
        self._tokens = tokens
        self.on_tokens = on_tokens
        self._remint_margin = remint_margin
        self._timeout = request_timeout
        self._lock = asyncio.Lock()
        self._refresh_bearer = REFRESH_BEARERS[0]
        self.schedule = RenewalSchedule(
            refresh_margin, min_refresh_interval, MAX_REFRESH_SPACING
        )
        self._renewed = asyncio.Event()  # set (then replaced) at every new token set

    def __repr__(self) -> str:
        """Show who, never a secret."""
        who = (
            f"member_id={self._member_id}"
            if self._member_id is not None
            else "email=<set>"
        )
        return f"CircleAuth({self._base_url}, {who}, tokens={'yes' if self._tokens else 'no'})"

    @property
    def tokens(self) -> TokenSet | None:
        """The current token set, if any."""
        return self._tokens

    @property
    def member_id(self) -> int | None:
        """The member id, from configuration or from the tokens."""
        if self._tokens and self._tokens.community_member_id is not None:
            return self._tokens.community_member_id
        return self._member_id

    def seconds_until_refresh(self) -> float:
        """How long until the access token should be renewed proactively (0: now)."""
        tokens = self._tokens
        return self.schedule.due_in(tokens.access_token_expires_at if tokens else None)

    def _needs_refresh(self) -> bool:
        return self.seconds_until_refresh() <= 0

    async def async_get_access_token(self) -> str:
        """Return a valid access token: the current, a refreshed or a newly minted one."""
        tokens = self._tokens
        if tokens is not None and not self._needs_refresh():
            return tokens.access_token
        async with self._lock:
            if self._tokens is not None and not self._needs_refresh():
                return self._tokens.access_token
            return (await self._renew()).access_token

    async def async_invalidate(self, rejected_access_token: str) -> str:
        """Renew a token the server rejected, once for every caller that saw it fail."""
        async with self._lock:
            if (
                self._tokens is not None
                and self._tokens.access_token != rejected_access_token
            ):
                return self._tokens.access_token
            return (await self._renew()).access_token

    async def _renew(self) -> TokenSet:
        tokens = self._tokens
        if tokens is not None and not self._refresh_token_near_end(tokens):
            refreshed = await self._refresh(tokens)
            if refreshed is not None:
                return self._store(refreshed)
        return self._store(await self.async_mint())

    def _refresh_token_near_end(self, tokens: TokenSet) -> bool:
        end = tokens.refresh_token_expires_at
        try:
            return end is not None and end - self._remint_margin <= datetime.now(UTC)
        except OverflowError:
            return True

    async def async_wait_renewed(self) -> None:
        """Return once new tokens were stored (a cable waiting for a token waits for this)."""
        await self._renewed.wait()

    def _store(self, tokens: TokenSet) -> TokenSet:
        self._tokens = tokens
        self.schedule.renewed(tokens.access_token_expires_at)
        renewed, self._renewed = self._renewed, asyncio.Event()
        renewed.set()
        if tokens.community_member_id is not None and self._member_id is None:
            self._member_id = tokens.community_member_id
        if self.on_tokens is not None:
            try:
                self.on_tokens(tokens)
            except Exception:
                _LOGGER.exception("Token callback failed")
        return tokens

    async def async_run_refresher(self, stop: asyncio.Event) -> None:
        """Refresh ahead of expiry until `stop` is set, even when no call needs a token.

        Every pass waits at least 1 s. The renewal spacing (30 s) follows successful
        renewals only: a failed one is retried fast (1 s doubling, capped at 15 s), never
        sooner than Circle's Retry-After (clamped to [1 s, 1 h]).
        """
        failures = 0
        while not stop.is_set():
            delay = self.seconds_until_refresh()
            if delay <= 0:
                try:
                    await self.async_get_access_token()
                except (
                    CircleAuthenticationError,
                    CircleNotEligibleError,
                    CircleMemberNotFoundError,
                ):
                    return  # the cable and the member API report it to the owner
                except CircleError as err:
                    failures += 1
                    delay = renewal_delay(failures, _err_delay(err) or None)
                    _LOGGER.debug(
                        "Token refresh failed, retrying in %.0f s: %s", delay, err
                    )
                else:
                    failures = 0
                    delay = self.seconds_until_refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(delay, 1.0))

    async def async_mint(self) -> TokenSet:
        """Mint a new token set for the member with the app token (does not store it)."""
        body: dict[str, Any] = (
            {"community_member_id": self._member_id}
            if self._member_id is not None
            else {"email": self._email}
        )
        status, answer = await request_json(
            self._session,
            "POST",
            self._base_url + MINT_PATH,
            headers={"Authorization": f"Bearer {self._app_token}"},
            json_body=body,
            timeout=self._timeout,
        )
        if status in (200, 201):
            tokens = TokenSet.from_response(answer or {})
            _LOGGER.debug(
                "Minted member tokens, valid until %s", tokens.access_token_expires_at
            )
            return tokens
        message = error_message(answer)
        if status == 401:
            raise CircleAuthenticationError(
                f"Circle rejected the Headless Auth token (401: {message or 'unauthorized'})"
            )
        if status == 403:
            raise CircleNotEligibleError(
                f"The community has no headless API access (403: {message or 'forbidden'})"
            )
        if status == 404:
            raise CircleMemberNotFoundError(
                f"Circle found no such community member (404: {message or 'not found'})"
            )
        if status == 422:
            # Circle's specification: "error creating the token, contact support". Temporary.
            _LOGGER.debug("Minting a token failed with 422; will retry: %s", message)
            raise CircleConnectionError(
                f"Circle could not create a token (422: {message or 'server error'}); "
                "retrying later"
            )
        raise CircleApiError(f"Minting a token failed ({status}: {message})", status)

    async def _refresh(self, tokens: TokenSet) -> TokenSet | None:
        """Refresh the access token; None when the refresh token is no good (then re-mint)."""
        order = [self._refresh_bearer] + [
            b for b in REFRESH_BEARERS if b != self._refresh_bearer
        ]
        for bearer in order:
            secret = self._app_token if bearer == "app_token" else tokens.refresh_token
            status, answer = await request_json(
                self._session,
                "PATCH",
                self._base_url + REFRESH_PATH,
                headers={"Authorization": f"Bearer {secret}"},
                json_body={"refresh_token": tokens.refresh_token},
                timeout=self._timeout,
            )
            if status in (200, 201):
                self._refresh_bearer = bearer
                refreshed = TokenSet.from_response(answer or {}, previous=tokens)
                _LOGGER.debug(
                    "Refreshed the access token, valid until %s",
                    refreshed.access_token_expires_at,
                )
                return refreshed
            message = error_message(answer)
            if status == 403:
                raise CircleNotEligibleError(
                    f"The community has no headless API access (403: {message or 'forbidden'})"
                )
            if status == 401 and "refresh token" not in message.lower():
                # The bearer itself was refused: try the other documented variant.
                _LOGGER.debug("Refresh with the %s as bearer refused (401)", bearer)
                continue
            # 404 not found, 401 refresh token expired, 422 generation failed: re-mint.
            _LOGGER.debug(
                "Refresh token rejected (%s: %s); minting anew", status, message
            )
            return None
        return None

    async def async_revoke(self) -> None:
        """Revoke the current tokens (best effort) and forget them."""
        tokens, self._tokens = self._tokens, None
        if tokens is None:
            return
        for path, key, secret in (
            (REVOKE_ACCESS_PATH, "access_token", tokens.access_token),
            (REVOKE_REFRESH_PATH, "refresh_token", tokens.refresh_token),
        ):
            status, answer = await request_json(
                self._session,
                "POST",
                self._base_url + path,
                headers={"Authorization": f"Bearer {self._app_token}"},
                json_body={key: secret},
                timeout=self._timeout,
            )
            if status not in (200, 204):
                _LOGGER.debug(
                    "Revoking the %s failed (%s: %s)",
                    key,
                    status,
                    error_message(answer),
                )


def _err_delay(err: CircleError) -> float:
    """Return the delay a temporary error asks for (Retry-After, clamped), else 0."""
    delay = getattr(err, "retry_after", None)
    return float(delay) if isinstance(delay, (int, float)) else 0.0


class AccessTokenProvider(Protocol):
    """What the cable and the member API need from an auth source."""

    async def async_get_access_token(self) -> str:
        """Return a currently valid access token."""

    async def async_invalidate(self, rejected_access_token: str) -> str:
        """Return a replacement for a token the server rejected."""


class StaticAccessToken:
    """A bare access token (the probe's `--access-token`): it cannot be renewed."""

    def __init__(self, access_token: str) -> None:
        """Hold the token; repr never shows it."""
        self._token = access_token

    def __repr__(self) -> str:
        """Never show the token."""
        return "StaticAccessToken(<hidden>)"

    async def async_get_access_token(self) -> str:
        """Return the token as given."""
        return self._token

    async def async_invalidate(self, rejected_access_token: str) -> str:
        """No way to renew: the caller must report an authentication failure."""
        raise CircleAuthenticationError(
            "The access token was rejected and cannot be renewed"
        )
