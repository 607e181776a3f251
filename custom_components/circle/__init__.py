"""The Circle integration: a community's notifications and chats, pushed over Circle's cable."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .address import address_error, normalise_url
from .const import (
    CONF_APP_TOKEN,
    CONF_COMMUNITY_URL,
    CONF_ORIGIN,
    CONF_SERVER_URL,
    DOMAIN,
    ISSUE_INVALID_ADDRESS,
    LOGGER,
)
from .coordinator import CircleConfigEntry, CircleCoordinator
from .device import async_ensure_device, async_migrate_device, room_uuid_of
from .issues import EntryIssues
from .revocation import async_revoke_tokens
from .rooms import RoomDevices, async_enable_chat_rooms
from .services import async_setup_services
from .store import (
    RUNTIME_KEYS,
    LedgerStore,
    RuntimeStore,
    async_get_runtime_store,
    async_remove_runtime_store,
    take_new_entry_tokens,
)

PLATFORMS = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.NOTIFY, Platform.SENSOR]
ADDRESS_FIELDS = (CONF_SERVER_URL, CONF_COMMUNITY_URL, CONF_ORIGIN)

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once, whatever the number of accounts."""
    async_setup_services(hass)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: CircleConfigEntry) -> bool:
    """Bring an entry to version 3.1.

    1 -> 2: one address becomes two. 2.x -> 3: runtime state moves to a Store and the device
    gets the account's identifier. Major 3, because releases that read version 2 would write
    tokens back into the entry and make a second device: they must refuse it.
    """
    if entry.version > 3:
        LOGGER.error(
            "Cannot downgrade the Circle entry %s from version %s",
            entry.title,
            entry.version,
        )
        return False
    if entry.version == 1:
        address = entry.data[CONF_COMMUNITY_URL]
        if address_error(address) is None:
            address = normalise_url(address)
        else:  # kept as it was: setup refuses it and asks for a reconfiguration
            LOGGER.warning("The Circle entry %s has an invalid address", entry.title)
        hass.config_entries.async_update_entry(
            entry,
            data={**entry.data, CONF_SERVER_URL: address},
            version=2,
            minor_version=1,
        )
    if entry.version == 2:
        runtime = await async_get_runtime_store(hass, entry.entry_id)
        # A 2.2 entry that still holds tokens was run again by an older release after 2.2
        # moved them out (a rollback): the entry's copy is the newer one.
        runtime.adopt(
            _server_url(entry.data), entry.data, newer=entry.minor_version >= 2
        )
        await runtime.async_save()  # before the entry forgets them
        async_migrate_device(hass, entry)
        hass.config_entries.async_update_entry(
            entry,
            data=_user_data(entry.data),
            version=3,
            minor_version=1,
        )
    LOGGER.debug("Migrated the Circle entry %s to version 3.1", entry.title)
    return True


def _user_data(data: Any) -> dict[str, Any]:
    """Return the entry's data without runtime state (that lives in the runtime store)."""
    return {k: v for k, v in data.items() if k not in RUNTIME_KEYS}


async def _async_strip_runtime_keys(
    hass: HomeAssistant, entry: CircleConfigEntry, runtime: RuntimeStore
) -> None:
    """Runtime state found in the entry moves to the store (if it has none), then goes."""
    if not any(key in entry.data for key in RUNTIME_KEYS):
        return
    runtime.adopt(_server_url(entry.data), entry.data)
    await runtime.async_save()
    hass.config_entries.async_update_entry(entry, data=_user_data(entry.data))


async def async_setup_entry(hass: HomeAssistant, entry: CircleConfigEntry) -> bool:
    """Check the credentials, sync the counts, then hold the cable in the background."""
    _check_addresses(hass, entry)
    runtime = await async_get_runtime_store(hass, entry.entry_id)
    await _async_strip_runtime_keys(hass, entry, runtime)
    if tokens := take_new_entry_tokens(hass, entry.unique_id, _server_url(entry.data)):
        runtime.hand_over(_server_url(entry.data), tokens)
    coordinator = CircleCoordinator(hass, entry, runtime)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    member = coordinator.member
    coordinator.cached_device_id = async_ensure_device(
        hass, entry, member.name if member else None, coordinator.community_url
    )
    async_enable_chat_rooms(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(RoomDevices(hass, entry).async_start())
    coordinator.async_start()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: CircleConfigEntry) -> bool:
    """Unload the platforms, then close the cable; revoke the tokens a flow replaced."""
    if unload_ok := await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        coordinator = entry.runtime_data
        await coordinator.async_stop()
        if coordinator.superseded:
            same_server = _server_url(entry.data) == coordinator.server_url
            async_revoke_tokens(
                hass,
                coordinator.server_url,
                # The current app token only goes to the server it belongs to.
                entry.data[CONF_APP_TOKEN] if same_server else coordinator.app_token,
                coordinator.auth.tokens,
            )
    return unload_ok


async def async_remove_entry(hass: HomeAssistant, entry: CircleConfigEntry) -> None:
    """Delete what the entry leaves behind and revoke its tokens (in the background)."""
    runtime = await async_remove_runtime_store(hass, entry.entry_id)
    server_url = _server_url(entry.data)
    async_revoke_tokens(
        hass, server_url, entry.data.get(CONF_APP_TOKEN, ""), runtime.tokens(server_url)
    )
    await LedgerStore(hass, entry).async_remove()
    EntryIssues(hass, entry).clear()


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: CircleConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow removing a room's device once the member left the room; never the account's."""
    uuid = room_uuid_of(entry, device)
    if uuid is None:
        return False
    if entry.state is not ConfigEntryState.LOADED:
        return True
    return uuid not in entry.runtime_data.data.unread_counts


def _server_url(data: Any) -> str:
    return str(data.get(CONF_SERVER_URL) or data.get(CONF_COMMUNITY_URL) or "")


def _check_addresses(hass: HomeAssistant, entry: CircleConfigEntry) -> None:
    """Apply the config flow's address rules again: a broken entry gets a repair, no token."""
    issues = EntryIssues(hass, entry)
    for field in ADDRESS_FIELDS:
        value = (
            _server_url(entry.data)
            if field == CONF_SERVER_URL
            else entry.data.get(field)
        )
        if (value or field != CONF_ORIGIN) and address_error(value) is not None:
            issues.raise_issue(ISSUE_INVALID_ADDRESS, field=field)
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key=ISSUE_INVALID_ADDRESS,
                translation_placeholders={"field": field},
            )
    issues.clear(ISSUE_INVALID_ADDRESS)
