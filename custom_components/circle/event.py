"""Event entities for chat messages and notifications (fixed, translated event types)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CircleConfigEntry, CircleCoordinator
from .entity import CircleEntity

PARALLEL_UPDATES = 0

CHAT_MESSAGE = EventEntityDescription(
    key="chat_message",
    translation_key="chat_message",
    event_types=["new_message", "message_updated", "message_deleted"],
)
NOTIFICATION = EventEntityDescription(
    key="notification",
    translation_key="notification",
    event_types=["new_notification"],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CircleConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the chat and notification event entities."""
    coordinator = entry.runtime_data
    async_add_entities([ChatMessageEvent(coordinator), NotificationEvent(coordinator)])


class CircleActivityEvent(CircleEntity, EventEntity):
    """Triggers on the coordinator's activity of its own event types."""

    # Every user sees these attributes: no message text at all; names and titles are
    # shown but stay out of the recorder.
    _unrecorded_attributes = frozenset(
        {"sender_name", "room_name", "actor_name", "title"}
    )

    @callback
    def _async_on_activity(
        self, kind: str, _bus_event: str, data: dict[str, Any]
    ) -> None:
        if kind in self.event_types:
            self._trigger_event(kind, {k: v for k, v in data.items() if k != "text"})
            self.async_write_ha_state()

    async def async_added_to_hass(self) -> None:
        """Listen to the coordinator."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_activity_listener(self._async_on_activity)
        )


class ChatMessageEvent(CircleActivityEvent):
    """New, edited and deleted chat messages."""

    def __init__(self, coordinator: CircleCoordinator) -> None:
        """Set the description."""
        super().__init__(coordinator, CHAT_MESSAGE)


class NotificationEvent(CircleActivityEvent):
    """New in-app notifications."""

    def __init__(self, coordinator: CircleCoordinator) -> None:
        """Set the description."""
        super().__init__(coordinator, NOTIFICATION)
