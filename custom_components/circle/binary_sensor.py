"""Diagnostic: is the cable connected, and are the counts in step with Circle."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

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

    # Counters and hold details change often: shown, not written to the recorder each time.
    _unrecorded_attributes = frozenset(
        {"reconnects", "held_messages", "held_rooms", "held_since", "sync_error"}
    )

    def __init__(self, coordinator: CircleCoordinator) -> None:
        """Set the description."""
        super().__init__(coordinator, CONNECTION)
        self._held_since: tuple[float, datetime] | None = None

    @property
    def available(self) -> bool:
        """Always: it reports the connection itself."""
        return True

    @property
    def is_on(self) -> bool:
        """Connected and welcomed by the server."""
        return self.coordinator.connection.state is ConnectionState.CONNECTED

    async def async_added_to_hass(self) -> None:
        """Take the hold's start as it is now."""
        await super().async_added_to_hass()
        self._update_held_since()

    @callback
    def _handle_coordinator_update(self) -> None:
        """Turn a new hold's start into a time here, not in a property."""
        self._update_held_since()
        super()._handle_coordinator_update()

    def _update_held_since(self) -> None:
        since = self.coordinator.status.held_since
        if since is None:
            self._held_since = None
        elif self._held_since is None or self._held_since[0] != since:
            # The core's clock is the loop's: turned into a time once, so it stays put.
            age = max(self.hass.loop.time() - since, 0.0)
            self._held_since = (since, dt_util.utcnow() - timedelta(seconds=age))

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Why it is down, how often it reconnected, and whether the counts are synced."""
        coordinator = self.coordinator
        status = coordinator.status
        return {
            "reason": coordinator.connection.reason,
            "origin": coordinator.origin_verdict,
            "reconnects": coordinator.reconnects,
            "synced": coordinator.synced,
            "sync_error": coordinator.sync_error,
            # Whether delivery is held for a read-back, why, and since when.
            "delivery_held": status.hold_reason,
            "held_rooms": status.held_rooms,
            "held_messages": status.held_messages,
            "held_since": self._held_since[1].isoformat() if self._held_since else None,
        }
