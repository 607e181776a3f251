"""Badges: unread notifications, chats and messages; per room: unread and last message time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CircleConfigEntry, CircleCoordinator, CircleData
from .entity import CircleEntity, CircleRoomEntity
from .rooms import async_add_room_entities, last_message_at

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class CircleSensorEntityDescription(SensorEntityDescription):
    """An account-wide badge: its value (and attributes) read from the coordinator data."""

    value_fn: Callable[[CircleData], int]
    attrs_fn: Callable[[CircleData], dict[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class CircleRoomSensorEntityDescription(SensorEntityDescription):
    """A per-room sensor: its value read for one room uuid."""

    value_fn: Callable[[CircleCoordinator, str], int | datetime | None]


def _unread_room_names(data: CircleData) -> dict[str, Any]:
    """Return the names of the unread rooms, sorted (a DM is named after the person)."""
    return {
        "rooms": sorted(data.room_names.get(uuid) or uuid for uuid in data.unread_rooms)
    }


SENSORS: tuple[CircleSensorEntityDescription, ...] = (
    CircleSensorEntityDescription(
        key="unread_notifications",
        translation_key="unread_notifications",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: data.new_notifications_count,
    ),
    CircleSensorEntityDescription(
        key="unread_chats",
        translation_key="unread_chats",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: len(data.unread_rooms),
        attrs_fn=_unread_room_names,
    ),
    CircleSensorEntityDescription(
        key="unread_messages",
        translation_key="unread_messages",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: data.unread_messages,
    ),
)

# Per room; the unread count keeps the unique id (and history) of earlier versions.
ROOM_SENSORS: tuple[CircleRoomSensorEntityDescription, ...] = (
    CircleRoomSensorEntityDescription(
        key="unread_messages",
        translation_key="unread_messages",
        value_fn=lambda coordinator, uuid: coordinator.data.unread_counts.get(uuid),
    ),
    CircleRoomSensorEntityDescription(
        key="last_message",
        translation_key="last_message",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=last_message_at,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CircleConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the badge sensors, then each room's sensors as rooms appear."""
    coordinator = entry.runtime_data
    async_add_entities(
        CircleSensor(coordinator, description) for description in SENSORS
    )
    async_add_room_entities(
        entry,
        async_add_entities,
        lambda coordinator, uuid: (
            RoomSensor(coordinator, description, uuid) for description in ROOM_SENSORS
        ),
    )


class CircleSensor(CircleEntity, SensorEntity):
    """An account-wide badge."""

    entity_description: CircleSensorEntityDescription
    # The unread chats' names (direct-message partners) stay out of the recorder.
    _unrecorded_attributes = frozenset({"rooms"})

    def __init__(
        self, coordinator: CircleCoordinator, description: CircleSensorEntityDescription
    ) -> None:
        """Set the description."""
        super().__init__(coordinator, description)

    @property
    def native_value(self) -> int:
        """The count."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Attributes of the badge, if it has any."""
        if (attrs_fn := self.entity_description.attrs_fn) is None:
            return None
        return attrs_fn(self.coordinator.data)


class RoomSensor(CircleRoomEntity, SensorEntity):
    """One value of one chat room (its device carries the room's name)."""

    entity_description: CircleRoomSensorEntityDescription

    def __init__(
        self,
        coordinator: CircleCoordinator,
        description: CircleRoomSensorEntityDescription,
        uuid: str,
    ) -> None:
        """Set the description and the room."""
        super().__init__(coordinator, description, uuid)

    @property
    def native_value(self) -> int | datetime | None:
        """The room's value."""
        return self.entity_description.value_fn(self.coordinator, self.room_uuid)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The room's uuid and kind (what automations compare; earlier versions had both)."""
        room = self.coordinator.rooms.get(self.room_uuid)
        return {"room_uuid": self.room_uuid, "room_kind": room.kind if room else None}

    async def async_added_to_hass(self) -> None:
        """Move the last message time with each message of the room too."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_activity_listener(self._on_activity)
        )

    @callback
    def _on_activity(self, kind: str, _bus_event: str, data: dict[str, Any]) -> None:
        if kind == "new_message" and data.get("room_uuid") == self.room_uuid:
            self.async_write_ha_state()
