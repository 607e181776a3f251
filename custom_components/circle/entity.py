"""Base entity: one service device per Circle account."""

from __future__ import annotations

from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import CircleCoordinator
from .device import device_info


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
