"""Where an entry's chat and notification events go: the bus, and its event entities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant

type ActivityListener = Callable[[str, str, dict[str, Any]], None]


class EntryBus:
    """Fires an entry's events on the bus (with its ids) and tells its event entities."""

    def __init__(
        self, hass: HomeAssistant, entry_id: str, device_id: Callable[[], str | None]
    ) -> None:
        """Events carry `entry_id` and the service device's id (known after setup)."""
        self._hass = hass
        self._entry_id = entry_id
        self._device_id = device_id
        self._listeners: list[ActivityListener] = []

    def add_listener(self, listener: ActivityListener) -> CALLBACK_TYPE:
        """Event entities listen here: (event type, bus event type, data)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def fire(self, kind: str, bus_event: str, payload: dict[str, Any]) -> None:
        """Fire `bus_event`, then tell the listeners (`kind` is the event entity's type)."""
        self._hass.bus.async_fire(
            bus_event,
            {
                "config_entry_id": self._entry_id,
                "device_id": self._device_id(),
                **payload,
            },
        )
        for listener in tuple(self._listeners):
            listener(kind, bus_event, payload)
