"""Badges: unread notifications, unread chats, unread messages, and one per chat room."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import CircleConfigEntry, CircleCoordinator, CircleData
from .entity import CircleEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class CircleSensorEntityDescription(SensorEntityDescription):
    """An account-wide badge: its value (and attributes) read from the coordinator data."""

    value_fn: Callable[[CircleData], int]
    attrs_fn: Callable[[CircleData], dict[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class CircleRoomSensorEntityDescription(SensorEntityDescription):
    """A per-room badge: its value and attributes read for one room uuid."""

    value_fn: Callable[[CircleData, str], int | None]
    attrs_fn: Callable[[CircleCoordinator, str], dict[str, Any]]


def _unread_room_names(data: CircleData) -> dict[str, Any]:
    """Return the names of the unread rooms, sorted (a DM is named after the person)."""
    return {
        "rooms": sorted(data.room_names.get(uuid) or uuid for uuid in data.unread_rooms)
    }


def _room_attributes(coordinator: CircleCoordinator, uuid: str) -> dict[str, Any]:
    """Return the room's uuid (for circle.send_message and mark_chat_read) and kind."""
    room = coordinator.rooms.get(uuid)
    return {"room_uuid": uuid, "room_kind": room.kind if room else None}


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

# There can be hundreds of rooms: off by default, and no long-term statistics.
ROOM_SENSOR = CircleRoomSensorEntityDescription(
    key="room_unread",
    translation_key="room_unread",
    entity_registry_enabled_default=False,
    value_fn=lambda data, uuid: data.unread_counts.get(uuid),
    attrs_fn=_room_attributes,
)


def room_unique_id(entry: CircleConfigEntry, uuid: str) -> str:
    """Stable per entry and room."""
    return f"{entry.unique_id}_room_{uuid}"


@callback
def _async_remove_stale_rooms(
    hass: HomeAssistant, entry: CircleConfigEntry, rooms: set[str]
) -> None:
    """Remove the room sensors of rooms deleted or left while Home Assistant was down.

    Only called after a complete room listing: a room missing from a partial one may exist.
    """
    registry = er.async_get(hass)
    prefix = room_unique_id(entry, "")
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        if (
            entity.domain == Platform.SENSOR
            and entity.unique_id.startswith(prefix)
            and entity.unique_id.removeprefix(prefix) not in rooms
        ):
            registry.async_remove(entity.entity_id)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CircleConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the badge sensors, then a sensor per chat room as rooms come and go."""
    coordinator = entry.runtime_data
    async_add_entities(
        CircleSensor(coordinator, description) for description in SENSORS
    )
    known: set[str] = set()
    reconciled = False
    registry = er.async_get(hass)

    @callback
    def sync_rooms() -> None:
        nonlocal reconciled
        # The coordinator drops a room from unread_counts only when Circle deleted it or
        # the member left it, never because one listing was incomplete.
        rooms = set(coordinator.data.unread_counts)
        if not reconciled and coordinator.rooms_complete:
            # Once per setup, after the first complete listing: rooms deleted or left
            # while Home Assistant was down lose their sensors.
            reconciled = True
            _async_remove_stale_rooms(hass, entry, rooms)
        if new := rooms - known:
            known.update(new)
            async_add_entities(
                RoomUnreadSensor(coordinator, uuid) for uuid in sorted(new)
            )
        for uuid in known - rooms:
            known.discard(uuid)
            unique_id = room_unique_id(entry, uuid)
            if entity_id := registry.async_get_entity_id(
                Platform.SENSOR, DOMAIN, unique_id
            ):
                registry.async_remove(entity_id)

    sync_rooms()
    entry.async_on_unload(coordinator.async_add_listener(sync_rooms))


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


class RoomUnreadSensor(CircleEntity, SensorEntity):
    """Unread messages in one chat room; created and removed with the room."""

    entity_description: CircleRoomSensorEntityDescription

    def __init__(self, coordinator: CircleCoordinator, uuid: str) -> None:
        """One per room uuid, named after the room."""
        super().__init__(coordinator, ROOM_SENSOR)
        self._uuid = uuid
        self._attr_unique_id = room_unique_id(coordinator.config_entry, uuid)
        self._attr_translation_placeholders = {"room": self._room_label()}

    def _room_label(self) -> str:
        return self.coordinator.data.room_names.get(self._uuid) or self._uuid[:8]

    @callback
    def _handle_coordinator_update(self) -> None:
        """Follow renames of the room, then write the state."""
        if (label := self._room_label()) != self._attr_translation_placeholders.get(
            "room"
        ):
            self._attr_translation_placeholders = {"room": label}
            # The entity name is a cached property that the placeholders do not
            # invalidate; drop it so that the friendly name is formatted again.
            self.__dict__.pop("name", None)
            if self.registry_entry is not None:
                er.async_get(self.hass).async_update_entity(
                    self.entity_id, original_name=self.name
                )
        super()._handle_coordinator_update()

    @property
    def available(self) -> bool:
        """Only while the room exists."""
        return super().available and self._uuid in self.coordinator.data.unread_counts

    @property
    def native_value(self) -> int | None:
        """The room's unread count."""
        return self.entity_description.value_fn(self.coordinator.data, self._uuid)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The room's uuid and kind."""
        return self.entity_description.attrs_fn(self.coordinator, self._uuid)
