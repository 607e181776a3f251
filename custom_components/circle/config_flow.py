"""Config flow: community, member and Headless Auth token; reauth, reconfigure and options.

Two addresses: the Circle server (auth API, member API and cable; `https://app.circle.so`
unless a test server is named) and the community address (the `*.circle.so` address or the
community's own domain), which is only the default Origin and the device's link.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import re
from typing import Any, Final

from homeassistant.config_entries import ConfigEntryState, ConfigFlow, ConfigFlowResult
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .address import CREDENTIALS, INSECURE, INVALID, normalise_url as _normalise_url
from .client import (
    CircleAuth,
    CircleAuthenticationError,
    CircleConnectionError,
    CircleError,
    CircleMemberApi,
    CircleMemberNotFoundError,
    CircleNotEligibleError,
    CircleRateLimitError,
    Member,
    TokenSet,
)
from .compat import OptionsFlowWithReload, vol
from .const import (
    CONF_ALLOW_NON_ADMIN,
    CONF_APP_TOKEN,
    CONF_BACKFILL_HOURS,
    CONF_COMMUNITY_URL,
    CONF_FOLLOWED_ROOMS,
    CONF_IGNORE_OWN,
    CONF_INCLUDE_TEXT,
    CONF_MEMBER,
    CONF_MEMBER_ID,
    CONF_ORIGIN,
    CONF_SERVER_URL,
    CONF_TOKENS,
    DEFAULT_BACKFILL_HOURS,
    DEFAULT_SERVER_URL,
    DOMAIN,
    LOGGER,
)
from .coordinator import CircleConfigEntry
from .revocation import async_revoke_tokens
from .store import SERVER, async_get_runtime_store, give_new_entry_tokens

ADVANCED: Final = "advanced"
URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
TEXT_SELECTOR = TextSelector()
PASSWORD_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))

# Each field has its own translated error for each reason an address is refused.
URL_ERRORS: Final[dict[str, dict[str, str]]] = {
    CONF_COMMUNITY_URL: {
        INVALID: "invalid_url",
        INSECURE: "insecure_url",
        CREDENTIALS: "url_credentials",
    },
    CONF_SERVER_URL: {
        INVALID: "invalid_server_url",
        INSECURE: "insecure_server_url",
        CREDENTIALS: "server_url_credentials",
    },
    CONF_ORIGIN: {
        INVALID: "invalid_origin",
        INSECURE: "insecure_origin",
        CREDENTIALS: "origin_credentials",
    },
}

MAX_MEMBER_DIGITS: Final = 19
_EMAIL = re.compile(
    r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@(?=[^@]{1,253}$)(?:[\w-]+\.)+[\w-]{2,}"
)


def _parse_member(value: str) -> dict[str, Any]:
    """ASCII digits (a member id, 0 < id < 2**63) or an email address."""
    text = value.strip()
    if text.isascii() and text.isdigit():
        if len(text) <= MAX_MEMBER_DIGITS and 0 < int(text) < 2**63:
            return {"member_id": int(text)}
    elif text.isprintable() and _EMAIL.fullmatch(text):
        return {"email": text}
    raise vol.Invalid("invalid_member")


@dataclass(frozen=True, slots=True)
class Connection:
    """The connection settings of a submitted form, checked and normalised."""

    community_url: str
    server_url: str
    origin: str | None
    member: str
    member_settings: dict[str, Any]

    def entry_data(self, member: Member, app_token: str) -> dict[str, Any]:
        """Return the config entry data (version 2.2: what the user entered, no tokens)."""
        return {
            CONF_COMMUNITY_URL: self.community_url,
            CONF_SERVER_URL: self.server_url,
            CONF_MEMBER: self.member,
            CONF_MEMBER_ID: member.id,
            CONF_APP_TOKEN: app_token,
            CONF_ORIGIN: self.origin,
        }


def _check_url(
    value: str, field: str, errors: dict[str, str], error_key: str
) -> str | None:
    try:
        return _normalise_url(value)
    except vol.Invalid as err:
        errors.setdefault(error_key, URL_ERRORS[field][str(err.msg)])
        return None


def _parse_connection(
    user_input: Mapping[str, Any], errors: dict[str, str]
) -> Connection | None:
    """Check every address and the member; fill `errors` (section fields: on the section)."""
    advanced = user_input.get(ADVANCED) or {}
    community_url = _check_url(
        user_input[CONF_COMMUNITY_URL], CONF_COMMUNITY_URL, errors, CONF_COMMUNITY_URL
    )
    server_url = _check_url(
        advanced.get(CONF_SERVER_URL) or DEFAULT_SERVER_URL,
        CONF_SERVER_URL,
        errors,
        ADVANCED,
    )
    origin: str | None = None
    if raw_origin := (advanced.get(CONF_ORIGIN) or "").strip():
        origin = _check_url(raw_origin, CONF_ORIGIN, errors, ADVANCED)
    member = str(user_input[CONF_MEMBER]).strip()
    member_settings: dict[str, Any] = {}
    try:
        member_settings = _parse_member(member)
    except vol.Invalid:
        errors[CONF_MEMBER] = "invalid_member"
    if errors:
        return None
    assert community_url is not None and server_url is not None
    return Connection(community_url, server_url, origin, member, member_settings)


def _connection_schema() -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_COMMUNITY_URL): URL_SELECTOR,
            vol.Required(CONF_MEMBER): TEXT_SELECTOR,
            vol.Required(ADVANCED): section(
                vol.Schema(
                    {
                        vol.Required(
                            CONF_SERVER_URL, default=DEFAULT_SERVER_URL
                        ): URL_SELECTOR,
                        vol.Optional(CONF_ORIGIN): URL_SELECTOR,
                    }
                ),
                {"collapsed": True},
            ),
        }
    )


def _without_token(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Return what a form may show again: everything but the app token."""
    return {k: v for k, v in user_input.items() if k != CONF_APP_TOKEN}


class CircleConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a Circle member account."""

    VERSION = 3
    MINOR_VERSION = 1

    async def _validate(
        self,
        server_url: str,
        member_settings: Mapping[str, Any],
        app_token: str,
        errors: dict[str, str],
        member_error: str = CONF_MEMBER,
    ) -> tuple[Member, TokenSet] | None:
        """Mint a token on the Circle server and read the member; fill `errors` on failure."""
        session = async_get_clientsession(self.hass)
        auth = CircleAuth(session, server_url, app_token, **member_settings)
        try:
            await auth.async_get_access_token()
            member = await CircleMemberApi(session, server_url, auth).async_get_member()
        except CircleAuthenticationError:
            errors["base"] = "invalid_auth"
        except CircleNotEligibleError:
            errors["base"] = "not_eligible"
        except CircleMemberNotFoundError:
            errors[member_error] = "member_not_found"
        except CircleRateLimitError:
            errors["base"] = "rate_limited"
        except CircleConnectionError:
            errors["base"] = "cannot_connect"
        except CircleError as err:
            LOGGER.warning("Unexpected answer from Circle: %s", err)
            errors["base"] = "unknown"
        except Exception:  # noqa: BLE001 - the flow must end with a form, never a traceback
            LOGGER.exception("Unexpected error while checking the Circle account")
            errors["base"] = "unknown"
        else:
            assert auth.tokens is not None
            return member, auth.tokens
        return None

    @staticmethod
    def _unique_id(member: Member, tokens: TokenSet) -> str:
        return f"{tokens.community_id}_{member.id}"

    async def _async_hand_over(
        self,
        entry: CircleConfigEntry,
        server_url: str,
        app_token: str,
        tokens: TokenSet,
    ) -> None:
        """Give the new tokens to the entry; the tokens they replace are revoked.

        A running session revokes its own at unload (it may renew them until then); for an
        entry that is not running, the stored ones are revoked here, at the server that
        issued them, with an app token of that server.
        """
        runtime = await async_get_runtime_store(self.hass, entry.entry_id)
        # An entry not yet migrated to 2.2 still holds its server's tokens itself.
        runtime.adopt(
            entry.data.get(CONF_SERVER_URL) or entry.data[CONF_COMMUNITY_URL],
            entry.data,
        )
        previous = runtime.hand_over(server_url, tokens.as_dict())
        if entry.state is not ConfigEntryState.LOADED and (old := previous.get(SERVER)):
            old_app_token = (
                app_token if old == server_url else entry.data[CONF_APP_TOKEN]
            )
            async_revoke_tokens(
                self.hass, old, old_app_token, previous.get(CONF_TOKENS)
            )

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the community, the member and the app token."""
        errors: dict[str, str] = {}
        if user_input is not None:
            connection = _parse_connection(user_input, errors)
            if connection is not None and (
                result := await self._validate(
                    connection.server_url,
                    connection.member_settings,
                    user_input[CONF_APP_TOKEN],
                    errors,
                )
            ):
                member, tokens = result
                await self.async_set_unique_id(self._unique_id(member, tokens))
                self._abort_if_unique_id_configured()
                give_new_entry_tokens(
                    self.hass,
                    self._unique_id(member, tokens),
                    connection.server_url,
                    tokens.as_dict(),
                )
                return self.async_create_entry(
                    title=member.name or f"Member {member.id}",
                    data=connection.entry_data(member, user_input[CONF_APP_TOKEN]),
                )
        schema = _connection_schema().extend(
            {vol.Required(CONF_APP_TOKEN): PASSWORD_SELECTOR}
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                schema, _without_token(user_input or {})
            ),
            errors=errors,
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Start re-authentication: the app token stopped working."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new Headless Auth app token (for the same server and member)."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None and (
            result := await self._validate(
                entry.data[CONF_SERVER_URL],
                {"member_id": entry.data[CONF_MEMBER_ID]},
                user_input[CONF_APP_TOKEN],
                errors,
                member_error="base",  # this form has no member field
            )
        ):
            member, tokens = result
            await self.async_set_unique_id(self._unique_id(member, tokens))
            self._abort_if_unique_id_mismatch(reason="wrong_member")
            server_url = entry.data[CONF_SERVER_URL]
            await self._async_hand_over(
                entry, server_url, user_input[CONF_APP_TOKEN], tokens
            )
            return self.async_update_reload_and_abort(
                entry, data_updates={CONF_APP_TOKEN: user_input[CONF_APP_TOKEN]}
            )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_APP_TOKEN): PASSWORD_SELECTOR}),
            errors=errors,
            description_placeholders={"title": entry.title},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the addresses, the Origin or the token of the same member.

        The stored app token is never sent to another Circle server: a new server needs the
        token again. Another member or community aborts: that is a new entry.
        """
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            connection = _parse_connection(user_input, errors)
            app_token = user_input.get(CONF_APP_TOKEN) or ""
            if connection is not None and not app_token:
                if connection.server_url == entry.data.get(CONF_SERVER_URL):
                    app_token = entry.data[CONF_APP_TOKEN]
                else:
                    errors[CONF_APP_TOKEN] = "app_token_required"
            if (
                connection is not None
                and app_token
                and (
                    result := await self._validate(
                        connection.server_url,
                        connection.member_settings,
                        app_token,
                        errors,
                    )
                )
            ):
                member, tokens = result
                await self.async_set_unique_id(self._unique_id(member, tokens))
                self._abort_if_unique_id_mismatch(reason="wrong_member")
                await self._async_hand_over(
                    entry, connection.server_url, app_token, tokens
                )
                return self.async_update_reload_and_abort(
                    entry, data_updates=connection.entry_data(member, app_token)
                )
        suggested = _without_token(user_input) if user_input else _stored(entry.data)
        schema = _connection_schema().extend(
            {vol.Optional(CONF_APP_TOKEN): PASSWORD_SELECTOR}
        )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: CircleConfigEntry) -> CircleOptionsFlow:
        """Options: event contents and extra rooms."""
        return CircleOptionsFlow()


def _stored(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the reconfigure form's values from an entry."""
    return {
        CONF_COMMUNITY_URL: data.get(CONF_COMMUNITY_URL),
        CONF_MEMBER: data.get(CONF_MEMBER),
        ADVANCED: {
            CONF_SERVER_URL: data.get(CONF_SERVER_URL) or DEFAULT_SERVER_URL,
            CONF_ORIGIN: data.get(CONF_ORIGIN),
        },
    }


class CircleOptionsFlow(OptionsFlowWithReload):
    """What goes into events, and which extra rooms to follow (a change reloads the entry)."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One form. The room list needs the loaded entry; chosen rooms always stay."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        options = self.config_entry.options
        labels: dict[str, str] = {}
        if self.config_entry.state is ConfigEntryState.LOADED:
            labels = {
                str(room.id): room.name or room.uuid
                for room in self.config_entry.runtime_data.rooms.values()
                if room.id is not None
            }
        followed = [str(room_id) for room_id in options.get(CONF_FOLLOWED_ROOMS, [])]
        for room_id in followed:
            labels.setdefault(room_id, room_id)
        rooms = [
            SelectOptionDict(value=value, label=label)
            for value, label in labels.items()
        ]
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_INCLUDE_TEXT, default=options.get(CONF_INCLUDE_TEXT, True)
                ): BooleanSelector(),
                vol.Required(
                    CONF_IGNORE_OWN, default=options.get(CONF_IGNORE_OWN, True)
                ): BooleanSelector(),
                vol.Required(
                    CONF_BACKFILL_HOURS,
                    default=options.get(CONF_BACKFILL_HOURS, DEFAULT_BACKFILL_HOURS),
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=0,
                        max=168,
                        step=1,
                        unit_of_measurement="h",
                        mode=NumberSelectorMode.BOX,
                    )
                ),
                vol.Optional(CONF_FOLLOWED_ROOMS, default=followed): SelectSelector(
                    SelectSelectorConfig(options=rooms, multiple=True)
                ),
                vol.Required(
                    CONF_ALLOW_NON_ADMIN,
                    default=options.get(CONF_ALLOW_NON_ADMIN, False),
                ): BooleanSelector(),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
