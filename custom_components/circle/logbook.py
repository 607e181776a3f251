"""Logbook lines for Circle's bus events (never the message text)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback

from .const import (
    DOMAIN,
    EVENT_MESSAGE_DELETED,
    EVENT_MESSAGE_UPDATED,
    EVENT_NEW_MESSAGE,
    EVENT_NEW_NOTIFICATION,
)

_VERBS = {
    EVENT_NEW_MESSAGE: "New message",
    EVENT_MESSAGE_UPDATED: "Message edited",
    EVENT_MESSAGE_DELETED: "Message deleted",
}


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe the bus events."""

    @callback
    def describe_message(event: Event) -> dict[str, str]:
        data: Mapping[str, Any] = event.data
        text = _VERBS[str(event.event_type)]
        if data.get("sender_name"):
            text += f" from {data['sender_name']}"
        if data.get("room_name") and data.get("room_kind") != "direct":
            text += (
                f" in {data['room_name']}"  # a direct room is named after the sender
            )
        return {LOGBOOK_ENTRY_NAME: "Circle", LOGBOOK_ENTRY_MESSAGE: text}

    @callback
    def describe_notification(event: Event) -> dict[str, str]:
        actor = event.data.get("actor_name")
        return {
            LOGBOOK_ENTRY_NAME: "Circle",
            LOGBOOK_ENTRY_MESSAGE: f"New notification from {actor}"
            if actor
            else "New notification",
        }

    for event_type in _VERBS:
        async_describe_event(DOMAIN, event_type, describe_message)
    async_describe_event(DOMAIN, EVENT_NEW_NOTIFICATION, describe_notification)
