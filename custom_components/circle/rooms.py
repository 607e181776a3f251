"""A device per chat room: identified by Circle's room uuid, named after the room.

Each room platform (sensors, notify) adds its entities through `async_add_room_entities`;
`RoomDevices` follows the coordinator to rename devices and to remove the devices of rooms
the member left or Circle deleted (with their entities).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .client import ChatMessage
from .compat import async_get_device_by_identifier, with_via_device
from .const import CONF_IGNORE_OWN, CONF_INCLUDE_TEXT, ENABLED_ROOM_KINDS, ROOM_MODEL
from .device import ROOM_MARK, device_identifier, room_identifier, room_uuid_of
from .messaging import SentTracker
from .payload import message_payload

if TYPE_CHECKING:  # the coordinator keeps a RoomActivity
    from .coordinator import CircleConfigEntry, CircleCoordinator


class RoomActivity:
    """What the rooms' devices and sends need from the message stream.

    The member's own sends (for the new message's id), each room's last message time, and
    each room's device id (kept by `RoomDevices`, looked up once otherwise).
    """

    def __init__(self, hass: HomeAssistant, entry: CircleConfigEntry) -> None:
        """Nothing seen yet."""
        self._hass = hass
        self._entry = entry
        self.sent = SentTracker()
        self.last_message_at: dict[str, datetime] = {}
        self.device_ids: dict[str, str] = {}

    def note(self, name: str, message: ChatMessage) -> None:
        """Note a new message: an own message's id for its send; the room's last time."""
        if name != "newMessage":
            return
        self.sent.seen(message)
        uuid, sent_at = message.chat_room_uuid, message.sent_at
        if uuid and sent_at:
            last = self.last_message_at.get(uuid)
            if last is None or last < sent_at:
                self.last_message_at[uuid] = sent_at

    def device_id(self, uuid: str | None) -> str | None:
        """Return the room's device, for automations that pick rooms from a device list."""
        if not uuid:
            return None
        if (device_id := self.device_ids.get(uuid)) is None:
            device = async_get_device_by_identifier(
                self._hass, room_identifier(self._entry, uuid), self._entry.entry_id
            )
            if device is not None:
                device_id = self.device_ids[uuid] = device.id
        return device_id


def message_event(
    coordinator: CircleCoordinator, name: str, message: ChatMessage, backfilled: bool
) -> dict[str, Any] | None:
    """Describe a chat message for the bus; None for an own one the options ignore."""
    sender, member = message.sender, coordinator.member
    own = bool(member and sender and sender.community_member_id == member.id)
    if own and coordinator.options.get(CONF_IGNORE_OWN, True):
        return None
    uuid = message.chat_room_uuid
    payload = message_payload(
        name,
        message,
        room=coordinator.rooms.get(uuid or ""),
        room_name=coordinator.data.room_name(uuid),
        own=own,
        backfilled=backfilled,
        include_text=coordinator.options.get(CONF_INCLUDE_TEXT, True),
    )
    payload["room_device_id"] = coordinator.activity.device_id(uuid)
    return payload


def room_label(coordinator: CircleCoordinator, uuid: str) -> str:
    """Return the room's name as Circle shows it (a direct room: the other person)."""
    return coordinator.data.room_names.get(uuid) or uuid[:8]


def room_device_info(coordinator: CircleCoordinator, uuid: str) -> DeviceInfo:
    """Describe the room's device, linked to the account's device."""
    entry = coordinator.config_entry
    room = coordinator.rooms.get(uuid)
    info = DeviceInfo(
        identifiers={room_identifier(entry, uuid)},
        entry_type=DeviceEntryType.SERVICE,
        manufacturer="Circle",
        model=ROOM_MODEL,
        model_id=room.kind if room and room.kind else None,
        name=room_label(coordinator, uuid),
    )
    return with_via_device(info, device_identifier(entry), coordinator.device_id)


def enabled_by_default(coordinator: CircleCoordinator, uuid: str) -> bool:
    """Direct and group chats: on; space chats (a community may have hundreds): off."""
    room = coordinator.rooms.get(uuid)
    return bool(room and room.kind in ENABLED_ROOM_KINDS)


def last_message_at(coordinator: CircleCoordinator, uuid: str) -> datetime | None:
    """When the room's latest message was sent: seen live, else from the room listing."""
    if seen := coordinator.activity.last_message_at.get(uuid):
        return seen
    room = coordinator.rooms.get(uuid)
    last = room.raw.get("last_message") if room else None
    if isinstance(last, dict) and isinstance(last.get("sent_at"), str):
        return dt_util.parse_datetime(last["sent_at"])
    return None


def current_rooms(coordinator: CircleCoordinator) -> set[str]:
    """Rooms the member is in now (dropped only when left or deleted, never on a cut listing)."""
    return set(coordinator.data.unread_counts)


@callback
def async_add_room_entities(
    entry: CircleConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    factory: Callable[[CircleCoordinator, str], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every room now and for each room that appears."""
    coordinator = entry.runtime_data
    known: set[str] = set()

    @callback
    def sync() -> None:
        rooms = current_rooms(coordinator)
        known.intersection_update(rooms)  # a room that comes back is added again
        if new := sorted(rooms - known):
            known.update(new)
            async_add_entities(
                entity for uuid in new for entity in factory(coordinator, uuid)
            )

    sync()
    entry.async_on_unload(coordinator.async_add_listener(sync))


@callback
def async_enable_chat_rooms(hass: HomeAssistant, entry: CircleConfigEntry) -> None:
    """Enable the direct and group chats' entities that earlier versions disabled by default.

    This version never disables those itself, so only migrated entities change; run before
    the platforms, so they are added at once.
    """
    coordinator: CircleCoordinator = entry.runtime_data
    registry = er.async_get(hass)
    prefix = f"{entry.unique_id}{ROOM_MARK}"
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        if entity.disabled_by is not er.RegistryEntryDisabler.INTEGRATION:
            continue
        if not entity.unique_id.startswith(prefix):
            continue
        uuid = entity.unique_id.removeprefix(prefix).split("_", 1)[0]
        if enabled_by_default(coordinator, uuid):
            registry.async_update_entity(entity.entity_id, disabled_by=None)


class RoomDevices:
    """Renames room devices with their rooms; removes the devices of rooms that are gone."""

    def __init__(self, hass: HomeAssistant, entry: CircleConfigEntry) -> None:
        """Follow the entry's coordinator."""
        self.hass = hass
        self.entry = entry
        self.coordinator: CircleCoordinator = entry.runtime_data
        self._reconciled = False
        self._seen: set[str] = set()
        # The listing read at setup counts as the first; the session's are counted by its core.
        self._first_listings = int(self.coordinator.rooms_complete)
        self._missing: dict[
            str, int
        ] = {}  # room -> the listing count when first missed

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Apply now and on every update; returns the unsubscribe callback."""
        self._sync()
        return self.coordinator.async_add_listener(self._sync)

    def _devices(self) -> dict[str, dr.DeviceEntry]:
        registry = dr.async_get(self.hass)
        entry_id = self.entry.entry_id
        return {
            uuid: device
            for device in dr.async_entries_for_config_entry(registry, entry_id)
            if (uuid := room_uuid_of(self.entry, device)) is not None
        }

    def _listings(self) -> int:
        """Complete room listings taken during this run."""
        session = self.coordinator.session
        return self._first_listings + (session.core.complete_listings if session else 0)

    def _gone(self, uuid: str, listings: int) -> bool:
        """Whether a room with a device is known gone, as the delivery core decides it.

        A room the core held this run is gone once the core forgot it (deleted, or missing
        from two complete listings). A room it never held (its device is from an earlier
        run) is gone once two complete listings lacked it: one can miss a room that moved
        between its pages.
        """
        if uuid in self._seen:
            return True
        if listings == 0:
            return False
        first = self._missing.setdefault(uuid, listings)
        return listings > first

    @callback
    def _sync(self) -> None:
        """Rename; remove a room's device once the room is known gone."""
        registry = dr.async_get(self.hass)
        rooms = current_rooms(self.coordinator)
        self._seen |= rooms
        listings = self._listings()
        devices = self._devices()
        self.coordinator.activity.device_ids = {
            uuid: device.id for uuid, device in devices.items() if uuid in rooms
        }
        for uuid, device in devices.items():
            if uuid in rooms:
                self._missing.pop(uuid, None)
                if device.name != (name := room_label(self.coordinator, uuid)):
                    registry.async_update_device(device.id, name=name)
            elif self._gone(uuid, listings):
                registry.async_remove_device(device.id)
        if listings >= 2 and not self._reconciled:
            self._reconciled = True
            self._remove_legacy_sensors(rooms)

    def _remove_legacy_sensors(self, rooms: set[str]) -> None:
        """Room sensors of earlier versions (on the account's device) of rooms now gone."""
        registry = er.async_get(self.hass)
        prefix = f"{self.entry.unique_id}{ROOM_MARK}"
        for entity in er.async_entries_for_config_entry(registry, self.entry.entry_id):
            uuid = entity.unique_id.removeprefix(prefix).split("_", 1)[0]
            if entity.unique_id.startswith(prefix) and uuid not in rooms:
                registry.async_remove(entity.entity_id)


def room_response(coordinator: CircleCoordinator, uuid: str) -> dict[str, Any]:
    """Describe a room for actions: uuid, name, kind and unread count."""
    room = coordinator.rooms.get(uuid)
    return {
        "room_uuid": uuid,
        "name": coordinator.data.room_name(uuid),
        "kind": room.kind if room else None,
        "unread": coordinator.data.unread_counts.get(uuid, 0),
    }
