"""Diagnostic: is the cable connected."""

from __future__ import annotations

from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .client import ConnectionState
from .coordinator import CircleConfigEntry, CircleCoordinator
from .entity import CircleEntity

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CircleConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the connectivity sensor."""
    async_add_entities([CableConnectedBinarySensor(entry.runtime_data)])


class CableConnectedBinarySensor(CircleEntity, BinarySensorEntity):
    """Shows every drop, even the short ones the other entities ride out."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, coordinator: CircleCoordinator) -> None:
        """Set the key."""
        super().__init__(coordinator, "connection")

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
        """Why it is down, and how often it reconnected."""
        cable = self.coordinator.cable
        return {
            "reason": self.coordinator.connection.reason,
            "reconnects": cable.reconnects if cable else 0,
        }
