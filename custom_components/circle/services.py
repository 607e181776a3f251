"""Actions: reply from an automation, clear the badges."""

from __future__ import annotations

from collections.abc import Awaitable
import re
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
import voluptuous as vol

from .client import CircleError
from .const import DOMAIN
from .coordinator import CircleCoordinator
from .errors import describe_error

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_ROOM = "room"
ATTR_MESSAGE = "message"
ATTR_REPLY_TO = "reply_to"

SERVICE_SEND_MESSAGE = "send_message"
SERVICE_MARK_CHAT_READ = "mark_chat_read"
SERVICE_MARK_NOTIFICATIONS_READ = "mark_notifications_read"

MAX_MESSAGE_LENGTH = 10_000

ENTRY_SCHEMA: dict[vol.Marker, Any] = {vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string}
SEND_MESSAGE_SCHEMA = vol.Schema(
    {
        **ENTRY_SCHEMA,
        vol.Required(ATTR_ROOM): cv.string,
        vol.Required(ATTR_MESSAGE): cv.string,
        vol.Optional(ATTR_REPLY_TO): vol.All(vol.Coerce(int), vol.Range(min=1)),
    }
)
MARK_CHAT_READ_SCHEMA = vol.Schema({**ENTRY_SCHEMA, vol.Optional(ATTR_ROOM): cv.string})
MARK_NOTIFICATIONS_READ_SCHEMA = vol.Schema(ENTRY_SCHEMA)


def _coordinator(hass: HomeAssistant, call: ServiceCall) -> CircleCoordinator:
    entry = hass.config_entries.async_get_entry(call.data[ATTR_CONFIG_ENTRY_ID])
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="entry_not_found"
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    coordinator: CircleCoordinator = entry.runtime_data
    return coordinator


UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _room_uuid(coordinator: CircleCoordinator, room: str) -> str:
    """Find a room by uuid, or by its name (case-insensitive) when that is unambiguous."""
    if room in coordinator.rooms:
        return room
    wanted = room.strip().casefold()
    matches = [
        uuid
        for uuid, r in coordinator.rooms.items()
        if (r.name or "").casefold() == wanted
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches and UUID.fullmatch(room.strip()):
        # A room uuid not in the last listing (new, or a listing cut short): Circle knows.
        return room.strip()
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="room_ambiguous" if matches else "room_not_found",
        translation_placeholders={"room": room},
    )


async def _circle[T](call: Awaitable[T]) -> T:
    """Turn client errors into translated Home Assistant errors."""
    try:
        return await call
    except CircleError as err:
        raise HomeAssistantError(**describe_error(err, "action_failed")) from err


async def _send_message(call: ServiceCall) -> ServiceResponse:
    coordinator = _coordinator(call.hass, call)
    text = call.data[ATTR_MESSAGE].strip()
    if not text:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="empty_message"
        )
    if len(text) > MAX_MESSAGE_LENGTH:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="message_too_long",
            translation_placeholders={
                "length": str(len(text)),
                "max": str(MAX_MESSAGE_LENGTH),
            },
        )
    uuid = _room_uuid(coordinator, call.data[ATTR_ROOM])
    sent = await _circle(
        coordinator.api.async_send_message(
            uuid, text, parent_message_id=call.data.get(ATTR_REPLY_TO)
        )
    )
    return {
        "room_uuid": sent.chat_room_uuid,
        "room_name": coordinator.data.room_name(sent.chat_room_uuid),
        "creation_uuid": sent.creation_uuid,
        "sent_at": sent.sent_at.isoformat() if sent.sent_at else None,
    }


async def _mark_chat_read(call: ServiceCall) -> None:
    coordinator = _coordinator(call.hass, call)
    data = coordinator.data
    if ATTR_ROOM in call.data:
        uuids = {_room_uuid(coordinator, call.data[ATTR_ROOM])}
    else:
        uuids = set(data.unread_rooms) | {u for u, n in data.unread_counts.items() if n}
    for uuid in sorted(uuids):
        await _circle(coordinator.api.async_mark_chat_room_read(uuid))
    # Circle broadcasts chatRoomRead too; show the result at once all the same.
    coordinator.rooms_read(uuids)


async def _mark_notifications_read(call: ServiceCall) -> None:
    coordinator = _coordinator(call.hass, call)
    await _circle(coordinator.api.async_mark_all_notifications_read())
    await _circle(coordinator.api.async_reset_new_notifications_count())
    coordinator.notifications_read()


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, in async_setup)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SEND_MESSAGE,
        _send_message,
        schema=SEND_MESSAGE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN, SERVICE_MARK_CHAT_READ, _mark_chat_read, schema=MARK_CHAT_READ_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_MARK_NOTIFICATIONS_READ,
        _mark_notifications_read,
        schema=MARK_NOTIFICATIONS_READ_SCHEMA,
    )
