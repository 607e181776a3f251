"""The Circle integration: a community's notifications and chats, pushed over Circle's cable."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_BACKFILL_HOURS,
    CONF_COMMUNITY_URL,
    CONF_FOLLOWED_ROOMS,
    CONF_IGNORE_OWN,
    CONF_INCLUDE_TEXT,
    CONF_SERVER_URL,
    DOMAIN,
    LOGGER,
)
from .coordinator import CircleConfigEntry, CircleCoordinator
from .issues import EntryIssues
from .rooms import RoomDevices, room_uuid_of
from .services import async_setup_services
from .store import LedgerStore

PLATFORMS = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.NOTIFY, Platform.SENSOR]
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


async def async_migrate_entry(hass: HomeAssistant, entry: CircleConfigEntry) -> bool:
    """Version 1 -> 2: the old address served everything, so it becomes the Circle server too."""
    if entry.version > 2:
        LOGGER.error(
            "Cannot downgrade the Circle entry %s from version %s",
            entry.title,
            entry.version,
        )
        return False
    if entry.version == 1:
        hass.config_entries.async_update_entry(
            entry,
            data={**entry.data, CONF_SERVER_URL: entry.data[CONF_COMMUNITY_URL]},
            version=2,
            minor_version=1,
        )
        LOGGER.debug("Migrated the Circle entry %s to version 2", entry.title)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: CircleConfigEntry) -> bool:
    """Check the credentials, sync the counts, then hold the cable in the background."""
    coordinator = CircleCoordinator(hass, entry)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # The entities created the service device: remember its id for the bus events.
    if device := dr.async_get(hass).async_get_device({(DOMAIN, entry.entry_id)}):
        coordinator.cached_device_id = device.id
    entry.async_on_unload(RoomDevices(hass, entry).async_start())
    coordinator.async_start()
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: CircleConfigEntry) -> bool:
    """Unload the platforms, then close the cable."""
    if unload_ok := await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        await entry.runtime_data.async_stop()
    return unload_ok


async def async_remove_entry(hass: HomeAssistant, entry: CircleConfigEntry) -> None:
    """Delete what the entry leaves behind: its message ledger and its repair issues."""
    await LedgerStore(hass, entry).async_remove()
    EntryIssues(hass, entry).clear()


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: CircleConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow removing a room's device once the member left the room; never the account's."""
    uuid = room_uuid_of(entry.entry_id, device)
    if uuid is None:
        return False
    if entry.state is not ConfigEntryState.LOADED:
        return True
    return uuid not in entry.runtime_data.data.unread_counts


async def _async_options_updated(hass: HomeAssistant, entry: CircleConfigEntry) -> None:
    """Reload on option changes only: token updates (every hour) must not drop the cable."""
    if {k: entry.options.get(k) for k in OPTION_KEYS} != {
        k: entry.runtime_data.options.get(k) for k in OPTION_KEYS
    }:
        hass.config_entries.async_schedule_reload(entry.entry_id)
