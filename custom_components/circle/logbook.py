"""Logbook lines for Circle's bus events, in the user's language (never the message text)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.translation import async_get_cached_translations

from .const import (
    DOMAIN,
    EVENT_MESSAGE_DELETED,
    EVENT_MESSAGE_UPDATED,
    EVENT_NEW_MESSAGE,
    EVENT_NEW_NOTIFICATION,
)

_VERBS = {
    EVENT_NEW_MESSAGE: "logbook_new_message",
    EVENT_MESSAGE_UPDATED: "logbook_message_updated",
    EVENT_MESSAGE_DELETED: "logbook_message_deleted",
    EVENT_NEW_NOTIFICATION: "logbook_new_notification",
}
# English, should the translation cache not hold the integration's strings.
_FALLBACK = {
    "logbook_new_message": "New message",
    "logbook_message_updated": "Message edited",
    "logbook_message_deleted": "Message deleted",
    "logbook_new_notification": "New notification",
    "logbook_from": "from {sender}",
    "logbook_in": "in {room}",
}


def _phrase(hass: HomeAssistant, key: str, **placeholders: str) -> str:
    """Return a translated phrase from the `common` strings, placeholders filled in."""
    strings = async_get_cached_translations(
        hass, hass.config.language, "common", DOMAIN
    )
    text = strings.get(f"component.{DOMAIN}.common.{key}") or _FALLBACK[key]
    return text.format(**placeholders)


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe the bus events."""

    @callback
    def describe(event: Event) -> dict[str, str]:
        data: Mapping[str, Any] = event.data
        parts = [_phrase(hass, _VERBS[str(event.event_type)])]
        if sender := data.get("sender_name") or data.get("actor_name"):
            parts.append(_phrase(hass, "logbook_from", sender=str(sender)))
        # A direct room is named after the sender: name it once.
        if (room := data.get("room_name")) and data.get("room_kind") != "direct":
            parts.append(_phrase(hass, "logbook_in", room=str(room)))
        return {LOGBOOK_ENTRY_NAME: "Circle", LOGBOOK_ENTRY_MESSAGE: " ".join(parts)}

    for event_type in _VERBS:
        async_describe_event(DOMAIN, event_type, describe)
