"""The service device of one Circle account, named after the account, not the entry.

The identifier is `(circle, "<community id>_<member id>")`, the entry's unique id: removing and
re-adding the account gives the same device id (Home Assistant restores a deleted device by its
identifier), so automations filtering bus events on `device_id` keep matching.
"""

from __future__ import annotations

from typing import Protocol

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo

from .const import ACCOUNT_MODEL, DOMAIN


def device_identifier(entry: ConfigEntry) -> tuple[str, str]:
    """Return the account's identifier (the entry id only for an entry without a unique id)."""
    return (DOMAIN, entry.unique_id or entry.entry_id)


ROOM_MARK = "_room_"


def room_identifier(entry: ConfigEntry, uuid: str) -> tuple[str, str]:
    """Return a room's device identifier: per account (two members may share a room)."""
    return (DOMAIN, f"{device_identifier(entry)[1]}{ROOM_MARK}{uuid}")


class _HasIdentifiers(Protocol):
    @property
    def identifiers(self) -> set[tuple[str, str]]: ...


def room_uuid_of(entry: ConfigEntry, device: _HasIdentifiers) -> str | None:
    """Return the room uuid of one of this account's room devices, else None."""
    prefix = f"{device_identifier(entry)[1]}{ROOM_MARK}"
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and identifier.startswith(prefix):
            return identifier.removeprefix(prefix)
    return None


def device_info(entry: ConfigEntry, member_name: str | None, url: str) -> DeviceInfo:
    """Describe the device: the member, Circle, and a link to the community."""
    return DeviceInfo(
        identifiers={device_identifier(entry)},
        entry_type=DeviceEntryType.SERVICE,
        manufacturer="Circle",
        model=ACCOUNT_MODEL,
        name=f"Circle {member_name}" if member_name else entry.title,
        configuration_url=url,
    )


@callback
def async_ensure_device(
    hass: HomeAssistant, entry: ConfigEntry, member_name: str | None, url: str
) -> str:
    """Create (or restore) the device before the platforms are set up; return its id."""
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **device_info(entry, member_name, url)
    )
    return device.id


@callback
def async_migrate_device(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Give the entry's device the account's identifier; its id and entities stay.

    After a rollback an older release may have made a second device with the entry's id
    beside the migrated one: its entities go back to the migrated device, and it goes.
    """
    registry = dr.async_get(hass)
    old, new = (DOMAIN, entry.entry_id), device_identifier(entry)
    if old == new:
        return
    devices = dr.async_entries_for_config_entry(registry, entry.entry_id)
    kept = next((d for d in devices if new in d.identifiers), None)
    for device in devices:
        if old not in device.identifiers or device is kept:
            continue
        if kept is None:
            registry.async_update_device(
                device.id, new_identifiers=(device.identifiers - {old}) | {new}
            )
            continue
        entities = er.async_get(hass)
        for entity in er.async_entries_for_device(
            entities, device.id, include_disabled_entities=True
        ):
            entities.async_update_entity(entity.entity_id, device_id=kept.id)
        registry.async_remove_device(device.id)
