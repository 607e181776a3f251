"""Config flow: community, member and Headless Auth token; reauth, reconfigure and options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlow
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
import voluptuous as vol
from yarl import URL

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
from .const import (
    CONF_APP_TOKEN,
    CONF_BACKFILL_HOURS,
    CONF_COMMUNITY_URL,
    CONF_FOLLOWED_ROOMS,
    CONF_IGNORE_OWN,
    CONF_INCLUDE_TEXT,
    CONF_MEMBER,
    CONF_MEMBER_ID,
    CONF_ORIGIN,
    CONF_TOKENS,
    DEFAULT_BACKFILL_HOURS,
    DEFAULT_COMMUNITY_URL,
    DOMAIN,
    LOGGER,
)
from .coordinator import CircleConfigEntry, member_settings

ADVANCED = "advanced"
URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
TEXT_SELECTOR = TextSelector()
PASSWORD_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))


def _normalise_url(value: str) -> str:
    url = URL(value.strip() if "://" in value else f"https://{value.strip()}")
    if url.scheme not in ("http", "https") or not url.host:
        raise vol.Invalid("invalid_url")
    return str(url.origin())


def _connection_schema(defaults: Mapping[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(
                CONF_COMMUNITY_URL,
                default=defaults.get(CONF_COMMUNITY_URL, DEFAULT_COMMUNITY_URL),
            ): URL_SELECTOR,
            vol.Required(
                CONF_MEMBER, default=defaults.get(CONF_MEMBER, vol.UNDEFINED)
            ): TEXT_SELECTOR,
            vol.Required(ADVANCED): section(
                vol.Schema(
                    {
                        vol.Optional(
                            CONF_ORIGIN,
                            description={"suggested_value": defaults.get(CONF_ORIGIN)},
                        ): URL_SELECTOR
                    }
                ),
                {"collapsed": True},
            ),
        }
    )


class CircleConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a Circle member account."""

    VERSION = 1

    async def _validate(
        self, data: Mapping[str, Any], errors: dict[str, str]
    ) -> tuple[Member, TokenSet] | None:
        """Mint a token and read the member; fill `errors` on failure."""
        try:
            url = _normalise_url(data[CONF_COMMUNITY_URL])
        except vol.Invalid:
            errors[CONF_COMMUNITY_URL] = "invalid_url"
            return None
        auth = CircleAuth(
            async_get_clientsession(self.hass),
            url,
            data[CONF_APP_TOKEN],
            **member_settings(str(data[CONF_MEMBER])),
        )
        try:
            await auth.async_get_access_token()
            member = await CircleMemberApi(
                async_get_clientsession(self.hass), url, auth
            ).async_get_member()
        except CircleAuthenticationError:
            errors["base"] = "invalid_auth"
        except CircleNotEligibleError:
            errors["base"] = "not_eligible"
        except CircleMemberNotFoundError:
            errors[CONF_MEMBER] = "member_not_found"
        except CircleRateLimitError:
            errors["base"] = "rate_limited"
        except CircleConnectionError:
            errors["base"] = "cannot_connect"
        except CircleError:
            LOGGER.exception("Unexpected answer from Circle")
            errors["base"] = "unknown"
        else:
            assert auth.tokens is not None
            return member, auth.tokens
        return None

    def _entry_data(
        self, user_input: Mapping[str, Any], member: Member, tokens: TokenSet
    ) -> dict[str, Any]:
        origin = (user_input.get(ADVANCED) or {}).get(CONF_ORIGIN)
        return {
            CONF_COMMUNITY_URL: _normalise_url(user_input[CONF_COMMUNITY_URL]),
            CONF_MEMBER: str(user_input[CONF_MEMBER]).strip(),
            CONF_MEMBER_ID: member.id,
            CONF_APP_TOKEN: user_input[CONF_APP_TOKEN],
            CONF_ORIGIN: _normalise_url(origin) if origin else None,
            CONF_TOKENS: tokens.as_dict(),
        }

    @staticmethod
    def _unique_id(member: Member, tokens: TokenSet) -> str:
        return f"{tokens.community_id}_{member.id}"

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the community, the member and the app token."""
        errors: dict[str, str] = {}
        if user_input is not None and (
            result := await self._validate(user_input, errors)
        ):
            member, tokens = result
            await self.async_set_unique_id(self._unique_id(member, tokens))
            self._abort_if_unique_id_configured()
            return self.async_create_entry(
                title=member.name or f"Member {member.id}",
                data=self._entry_data(user_input, member, tokens),
            )
        schema = _connection_schema(user_input or {}).extend(
            {vol.Required(CONF_APP_TOKEN): PASSWORD_SELECTOR}
        )
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Start re-authentication: the app token stopped working."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new Headless Auth app token."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**entry.data, CONF_APP_TOKEN: user_input[CONF_APP_TOKEN]}
            if (result := await self._validate(data, errors)) is not None:
                member, tokens = result
                await self.async_set_unique_id(self._unique_id(member, tokens))
                self._abort_if_unique_id_mismatch(reason="wrong_member")
                return self.async_update_reload_and_abort(
                    entry,
                    data_updates={
                        CONF_APP_TOKEN: user_input[CONF_APP_TOKEN],
                        CONF_TOKENS: tokens.as_dict(),
                    },
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
        """Change the community address, the member or the Origin."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**user_input, CONF_APP_TOKEN: entry.data[CONF_APP_TOKEN]}
            if (result := await self._validate(data, errors)) is not None:
                member, tokens = result
                unique_id = self._unique_id(member, tokens)
                if unique_id != entry.unique_id:
                    await self.async_set_unique_id(unique_id)
                    self._abort_if_unique_id_configured()
                return self.async_update_reload_and_abort(
                    entry,
                    unique_id=unique_id,
                    title=member.name or entry.title,
                    data=self._entry_data(data, member, tokens),
                )
        defaults = user_input or {
            **entry.data,
            CONF_ORIGIN: entry.data.get(CONF_ORIGIN),
        }
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=_connection_schema(defaults),
            errors=errors,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: CircleConfigEntry) -> CircleOptionsFlow:
        """Options: event contents and extra rooms."""
        return CircleOptionsFlow()


class CircleOptionsFlow(OptionsFlow):
    """What goes into events, and which extra rooms to follow."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One form."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        coordinator = self.config_entry.runtime_data
        options = self.config_entry.options
        rooms = [
            SelectOptionDict(value=str(room.id), label=room.name or room.uuid)
            for room in coordinator.rooms.values()
            if room.id is not None
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
                vol.Optional(
                    CONF_FOLLOWED_ROOMS, default=options.get(CONF_FOLLOWED_ROOMS, [])
                ): SelectSelector(SelectSelectorConfig(options=rooms, multiple=True)),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
