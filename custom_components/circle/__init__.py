"""The Circle integration: a community's notifications and chats, pushed over Circle's cable."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_BACKFILL_HOURS,
    CONF_FOLLOWED_ROOMS,
    CONF_IGNORE_OWN,
    CONF_INCLUDE_TEXT,
    DOMAIN,
)
from .coordinator import CircleConfigEntry, CircleCoordinator
from .services import async_setup_services

PLATFORMS = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR]
OPTION_KEYS = (
    CONF_INCLUDE_TEXT,
    CONF_IGNORE_OWN,
    CONF_FOLLOWED_ROOMS,
    CONF_BACKFILL_HOURS,
)


CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once, whatever the number of accounts."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: CircleConfigEntry) -> bool:
    """Check the credentials, sync the counts, then hold the cable in the background."""
    coordinator = CircleCoordinator(hass, entry)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    coordinator.async_start()
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: CircleConfigEntry) -> bool:
    """Close the cable and unload the platforms."""
    await entry.runtime_data.async_stop()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def _async_options_updated(hass: HomeAssistant, entry: CircleConfigEntry) -> None:
    """Reload on option changes only: token updates (every hour) must not drop the cable."""
    if {k: entry.options.get(k) for k in OPTION_KEYS} != {
        k: entry.runtime_data.options.get(k) for k in OPTION_KEYS
    }:
        hass.config_entries.async_schedule_reload(entry.entry_id)
