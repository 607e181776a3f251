"""Badges: unread notifications, unread chats, unread messages, and one per chat room."""

from __future__ import annotations

from typing import Any

from homeassistant.components.sensor import SensorEntity, SensorStateClass
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import CircleConfigEntry, CircleCoordinator
from .entity import CircleEntity

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CircleConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the badge sensors, then a sensor per chat room as rooms come and go."""
    coordinator = entry.runtime_data
    async_add_entities(
        [
            UnreadNotificationsSensor(coordinator),
            UnreadChatsSensor(coordinator),
            UnreadMessagesSensor(coordinator),
        ]
    )
    known: set[str] = set()
    registry = er.async_get(hass)

    @callback
    def sync_rooms() -> None:
        rooms = set(coordinator.data.unread_counts)
        if new := rooms - known:
            known.update(new)
            async_add_entities(
                RoomUnreadSensor(coordinator, uuid) for uuid in sorted(new)
            )
        for uuid in known - rooms:
            # The member left the room, or it was deleted: remove its entity for good.
            known.discard(uuid)
            unique_id = RoomUnreadSensor.unique_id_for(coordinator, uuid)
            if entity_id := registry.async_get_entity_id("sensor", DOMAIN, unique_id):
                registry.async_remove(entity_id)

    sync_rooms()
    entry.async_on_unload(coordinator.async_add_listener(sync_rooms))


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


class UnreadMessagesSensor(CircleEntity, SensorEntity):
    """Unread messages across every chat room."""

    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, coordinator: CircleCoordinator) -> None:
        """Set the key."""
        super().__init__(coordinator, "unread_messages")

    @property
    def native_value(self) -> int:
        """The total."""
        return self.coordinator.data.unread_messages


class RoomUnreadSensor(CircleEntity, SensorEntity):
    """Unread messages in one chat room; created and removed with the room."""

    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, coordinator: CircleCoordinator, uuid: str) -> None:
        """One per room uuid, named after the room."""
        super().__init__(coordinator, "room_unread")
        self._uuid = uuid
        self._attr_unique_id = self.unique_id_for(coordinator, uuid)
        self._attr_translation_placeholders = {
            "room": coordinator.data.room_names.get(uuid) or uuid[:8]
        }

    @staticmethod
    def unique_id_for(coordinator: CircleCoordinator, uuid: str) -> str:
        """Stable per entry and room."""
        return f"{coordinator.config_entry.unique_id}_room_{uuid}"

    @property
    def available(self) -> bool:
        """Only while the room exists."""
        return super().available and self._uuid in self.coordinator.data.unread_counts

    @property
    def native_value(self) -> int | None:
        """The room's unread count."""
        return self.coordinator.data.unread_counts.get(self._uuid)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The room's uuid (for circle.send_message and circle.mark_chat_read)."""
        room = self.coordinator.rooms.get(self._uuid)
        return {"room_uuid": self._uuid, "room_kind": room.kind if room else None}
