"""Actions: send and reply in a room, mark read, ask what is unread.

Rooms are targeted by their device or notify entity (a room uuid underneath), never by a
display name: a room renamed in Circle, or a stranger's room of the same name, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_AREA_ID,
    ATTR_DEVICE_ID,
    ATTR_ENTITY_ID,
    ATTR_FLOOR_ID,
    ATTR_LABEL_ID,
    ENTITY_MATCH_NONE,
)
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)

from .client import CircleError
from .compat import async_get_device_by_identifier, async_referenced, vol
from .const import DOMAIN
from .coordinator import CircleConfigEntry, CircleCoordinator
from .device import room_identifier, room_uuid_of
from .messaging import (
    async_check_sender,
    async_send,
    circle_call,
    compose,
    invalid_input,
)
from .rooms import room_response

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_MESSAGE = "message"
ATTR_MESSAGE_ID = "message_id"
ATTR_NOTIFICATION_ID = "notification_id"
ATTR_MESSAGES = "messages"

SERVICE_SEND_MESSAGE = "send_message"
SERVICE_REPLY = "reply"
SERVICE_MARK_READ = "mark_read"
SERVICE_MARK_NOTIFICATIONS_READ = "mark_notifications_read"
SERVICE_GET_UNREAD = "get_unread"

MAX_UNREAD_ROOMS = 20

# Devices, entities, areas, floors and labels, as the target selector offers them.
TARGET: dict[Any, Any] = dict(cv.TARGET_SERVICE_FIELDS)
TARGET_KEYS = (
    ATTR_ENTITY_ID,
    ATTR_DEVICE_ID,
    ATTR_AREA_ID,
    ATTR_FLOOR_ID,
    ATTR_LABEL_ID,
)
ID = vol.All(vol.Coerce(int), vol.Range(min=1, max=2**53 - 1))
SEND_MESSAGE_SCHEMA = vol.Schema({**TARGET, vol.Required(ATTR_MESSAGE): cv.string})
REPLY_SCHEMA = vol.Schema(
    {**TARGET, vol.Required(ATTR_MESSAGE): cv.string, vol.Required(ATTR_MESSAGE_ID): ID}
)
MARK_READ_SCHEMA = vol.Schema({**TARGET, vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})
MARK_NOTIFICATIONS_READ_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_NOTIFICATION_ID): ID,
    }
)
GET_UNREAD_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_MESSAGES, default=3): vol.All(
            vol.Coerce(int), vol.Range(min=0, max=20)
        ),
    }
)


@dataclass(frozen=True, slots=True)
class RoomTarget:
    """A targeted room: its account and its uuid."""

    coordinator: CircleCoordinator
    uuid: str


def _loaded(hass: HomeAssistant, entry_id: str) -> CircleCoordinator:
    entry: CircleConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise invalid_input("entry_not_found")
    if entry.state is not ConfigEntryState.LOADED:
        raise invalid_input("entry_not_loaded", title=entry.title)
    return entry.runtime_data


def _room_of_device(
    hass: HomeAssistant, device_id: str, shown: str, named: bool = True
) -> RoomTarget | None:
    """Return the room behind one of our room devices.

    A device or entity named in the target gets a clear error when it is no room; one reached
    through an area, floor or label is skipped (an area holds other devices too).
    """
    device = dr.async_get(hass).async_get(device_id)
    # Room identifiers name their account, so no device-to-entry look-up is needed.
    for entry in hass.config_entries.async_entries(DOMAIN) if device else ():
        if device and (uuid := room_uuid_of(entry, device)):
            coordinator = _loaded(hass, entry.entry_id)
            if uuid in coordinator.data.unread_counts:
                return RoomTarget(coordinator, uuid)
            if named:
                raise invalid_input("room_gone", target=shown)
            return None
    if named:
        raise invalid_input("room_not_found", target=shown)
    return None


def _has_target(call: ServiceCall) -> bool:
    """Whether the call has a target; one given but naming nothing is refused.

    An empty list (a template that found no room) must not mean "every room" to mark_read,
    nor be taken silently as no target: it is an error.
    """
    given = [key for key in TARGET_KEYS if key in call.data]
    values = [call.data[key] for key in given]
    if given and all(v in (None, [], "", ENTITY_MATCH_NONE) for v in values):
        raise invalid_input("empty_target")
    return bool(given)


def _rooms(hass: HomeAssistant, call: ServiceCall) -> list[RoomTarget]:
    """Every targeted room, from devices and entities (their devices), areas, floors, labels."""
    registry = er.async_get(hass)
    named_entities, other_entities, devices = async_referenced(hass, call)
    named_devices = set(cv.ensure_list(call.data.get(ATTR_DEVICE_ID)))
    found = [
        _room_of_device(hass, device_id, device_id, device_id in named_devices)
        for device_id in sorted(devices | named_devices - {ENTITY_MATCH_NONE})
    ]
    for entity_id in sorted(named_entities | other_entities):
        named = entity_id in named_entities
        entity = registry.async_get(entity_id)
        if entity is None or entity.platform != DOMAIN or entity.device_id is None:
            if named:
                raise invalid_input("room_not_found", target=entity_id)
            continue
        found.append(_room_of_device(hass, entity.device_id, entity_id, named))
    targets = list(dict.fromkeys(t for t in found if t is not None))
    if not targets:
        raise invalid_input("no_room_in_target")
    return targets


def _one_room(hass: HomeAssistant, call: ServiceCall) -> RoomTarget:
    rooms = _rooms(hass, call) if _has_target(call) else []
    if len(rooms) != 1:
        raise invalid_input("one_room", count=str(len(rooms)))
    return rooms[0]


def _account(hass: HomeAssistant, call: ServiceCall) -> CircleCoordinator:
    """Return the account named by config_entry_id, or the only loaded one."""
    if entry_id := call.data.get(ATTR_CONFIG_ENTRY_ID):
        return _loaded(hass, entry_id)
    loaded = hass.config_entries.async_loaded_entries(DOMAIN)
    if len(loaded) != 1:
        raise invalid_input("account_required")
    coordinator: CircleCoordinator = loaded[0].runtime_data
    return coordinator


async def _send_message(call: ServiceCall) -> ServiceResponse:
    room = _one_room(call.hass, call)
    await async_check_sender(call.hass, room.coordinator, call.context)
    text = compose(call.data[ATTR_MESSAGE])
    response = await async_send(
        room.coordinator, room.uuid, text, want_id=call.return_response
    )
    return response if call.return_response else None


async def _reply(call: ServiceCall) -> ServiceResponse:
    room = _one_room(call.hass, call)
    await async_check_sender(call.hass, room.coordinator, call.context)
    text = compose(call.data[ATTR_MESSAGE])
    response = await async_send(
        room.coordinator,
        room.uuid,
        text,
        call.data[ATTR_MESSAGE_ID],
        want_id=call.return_response,
    )
    return response if call.return_response else None


async def _mark_read(call: ServiceCall) -> None:
    """Mark the targeted rooms read; without a target, every unread room of the account."""
    if _has_target(call):
        if ATTR_CONFIG_ENTRY_ID in call.data:
            raise invalid_input("target_and_account")
        rooms = _rooms(call.hass, call)
    else:
        coordinator = _account(call.hass, call)
        data = coordinator.data
        unread = set(data.unread_rooms) | {
            u for u, n in data.unread_counts.items() if n
        }
        rooms = [RoomTarget(coordinator, uuid) for uuid in sorted(unread)]
    for coordinator in {room.coordinator for room in rooms}:
        await async_check_sender(call.hass, coordinator, call.context)
    for room in rooms:
        await circle_call(room.coordinator.api.async_mark_chat_room_read(room.uuid))
    for coordinator in {room.coordinator for room in rooms}:
        # Circle broadcasts chatRoomRead too; show the result at once all the same.
        coordinator.rooms_read({r.uuid for r in rooms if r.coordinator is coordinator})


async def _mark_notifications_read(call: ServiceCall) -> None:
    """One notification (by id), or all of them and the badge."""
    coordinator = _account(call.hass, call)
    await async_check_sender(call.hass, coordinator, call.context)
    if (notification_id := call.data.get(ATTR_NOTIFICATION_ID)) is not None:
        await circle_call(coordinator.api.async_mark_notification_read(notification_id))
        return
    await circle_call(coordinator.api.async_mark_all_notifications_read())
    await circle_call(coordinator.api.async_reset_new_notifications_count())
    coordinator.notifications_read()


async def _get_unread(call: ServiceCall) -> ServiceResponse:
    """Unread rooms (most unread first, at most 20), each with its latest messages."""
    coordinator = _account(call.hass, call)
    await async_check_sender(call.hass, coordinator, call.context)
    data = coordinator.data
    uuids = set(data.unread_rooms) | {u for u, n in data.unread_counts.items() if n}
    ordered = sorted(uuids, key=lambda u: (-data.unread_counts.get(u, 0), u))
    rooms: list[Any] = []
    for uuid in ordered[:MAX_UNREAD_ROOMS]:
        room = room_response(coordinator, uuid)
        room["device_id"] = _device_id(call.hass, coordinator, uuid)
        room["messages"] = await _latest(coordinator, uuid, call.data[ATTR_MESSAGES])
        rooms.append(room)
    return {"rooms": rooms, "total": len(uuids)}


def _device_id(
    hass: HomeAssistant, coordinator: CircleCoordinator, uuid: str
) -> str | None:
    device = async_get_device_by_identifier(
        hass,
        room_identifier(coordinator.config_entry, uuid),
        coordinator.config_entry.entry_id,
    )
    return device.id if device else None


async def _latest(
    coordinator: CircleCoordinator, uuid: str, count: int
) -> list[dict[str, Any]]:
    if count == 0:
        return []
    try:
        page = await coordinator.api.async_get_messages(
            uuid, previous=count - 1, following=0
        )
    except CircleError:
        return []  # one room's failure must not hide the others
    return [
        {
            "id": m.id,
            "sender_id": m.sender.community_member_id if m.sender else None,
            "sender_name": m.sender.name if m.sender else None,
            "text": m.body,
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
        }
        for m in page.messages[-count:]
    ]


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
        DOMAIN,
        SERVICE_REPLY,
        _reply,
        schema=REPLY_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN, SERVICE_MARK_READ, _mark_read, schema=MARK_READ_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_MARK_NOTIFICATIONS_READ,
        _mark_notifications_read,
        schema=MARK_NOTIFICATIONS_READ_SCHEMA,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_UNREAD,
        _get_unread,
        schema=GET_UNREAD_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
