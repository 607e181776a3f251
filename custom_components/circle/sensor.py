"""Unread notifications and unread chats."""

from __future__ import annotations

from typing import Any

from homeassistant.components.sensor import SensorEntity, SensorStateClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CircleConfigEntry, CircleCoordinator
from .entity import CircleEntity

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CircleConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the two badge sensors."""
    coordinator = entry.runtime_data
    async_add_entities(
        [UnreadNotificationsSensor(coordinator), UnreadChatsSensor(coordinator)]
    )


class UnreadNotificationsSensor(CircleEntity, SensorEntity):
    """Circle's new-notifications badge (pushed by updateNewNotificationCount)."""

    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, coordinator: CircleCoordinator) -> None:
        """Set the key."""
        super().__init__(coordinator, "unread_notifications")

    @property
    def native_value(self) -> int:
        """The count."""
        return self.coordinator.data.new_notifications_count


class UnreadChatsSensor(CircleEntity, SensorEntity):
    """Number of chat rooms with unread messages; the rooms are named in attributes."""

    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, coordinator: CircleCoordinator) -> None:
        """Set the key."""
        super().__init__(coordinator, "unread_chats")

    @property
    def native_value(self) -> int:
        """The count."""
        return len(self.coordinator.data.unread_rooms)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Names of the unread rooms, sorted."""
        data = self.coordinator.data
        return {
            "rooms": sorted(
                data.room_names.get(uuid) or uuid for uuid in data.unread_rooms
            )
        }
