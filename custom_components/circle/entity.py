"""Base entities: one service device per Circle account, one per chat room."""

from __future__ import annotations

from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import CircleCoordinator
from .device import device_info
from .rooms import enabled_by_default, room_device_info


class CircleEntity(CoordinatorEntity[CircleCoordinator]):
    """Shares the device and the availability rule (grace period) of the coordinator."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: CircleCoordinator, description: EntityDescription
    ) -> None:
        """Name comes from the description's translation key; unique per entry."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self._attr_unique_id = f"{entry.unique_id}_{description.key}"
        member = coordinator.member
        self._attr_device_info = device_info(
            entry, member.name if member else None, coordinator.community_url
        )

    @property
    def available(self) -> bool:
        """Unavailable only after the grace period or an auth failure."""
        return self.coordinator.available


class CircleRoomEntity(CircleEntity):
    """An entity of one chat room's device; unavailable once the room is gone."""

    def __init__(
        self, coordinator: CircleCoordinator, description: EntityDescription, uuid: str
    ) -> None:
        """Set ids per entry and room (room sensors keep the unique ids they always had)."""
        super().__init__(coordinator, description)
        self.room_uuid = uuid
        entry = coordinator.config_entry
        suffix = f"_{description.key}" if description.key != "unread_messages" else ""
        self._attr_unique_id = f"{entry.unique_id}_room_{uuid}{suffix}"
        self._attr_device_info = room_device_info(coordinator, uuid)
        self._attr_entity_registry_enabled_default = enabled_by_default(
            coordinator, uuid
        )

    @property
    def available(self) -> bool:
        """Only while the room exists."""
        return (
            super().available and self.room_uuid in self.coordinator.data.unread_counts
        )
