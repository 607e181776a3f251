"""Diagnostic: is the cable connected, and are the counts in step with Circle."""

from __future__ import annotations

from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .client import ConnectionState
from .compat import BinarySensorDeviceClass
from .coordinator import CircleConfigEntry, CircleCoordinator
from .entity import CircleEntity

PARALLEL_UPDATES = 0

CONNECTION = BinarySensorEntityDescription(
    key="connection",
    translation_key="connection",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CircleConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the connectivity sensor."""
    async_add_entities([CableConnectedBinarySensor(entry.runtime_data)])


class CableConnectedBinarySensor(CircleEntity, BinarySensorEntity):
    """Shows every drop, even the short ones the other entities ride out."""

    def __init__(self, coordinator: CircleCoordinator) -> None:
        """Set the description."""
        super().__init__(coordinator, CONNECTION)

    @property
    def available(self) -> bool:
        """Always: it reports the connection itself."""
        return True

    @property
    def is_on(self) -> bool:
        """Connected and welcomed by the server."""
        return self.coordinator.connection.state is ConnectionState.CONNECTED

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Why it is down, how often it reconnected, and whether the counts are synced."""
        coordinator = self.coordinator
        return {
            "reason": coordinator.connection.reason,
            "origin": coordinator.origin_verdict,
            "reconnects": coordinator.reconnects,
            "synced": coordinator.synced,
            "sync_error": coordinator.sync_error,
        }
