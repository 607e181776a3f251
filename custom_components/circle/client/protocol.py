"""ActionCable framing and Circle's event envelopes.

Circle does not document how a broadcast's payload names its event, so `parse_payload` accepts
each plausible envelope: the name under `event`, `type` or `action`, the fields either beside it
or under `data`, `payload`, `json` or `message` (possibly JSON-encoded once more).
"""

from __future__ import annotations

from collections.abc import Mapping
import json
from typing import Any, Final

from yarl import URL

from .models import (
    CableEvent,
    Channel,
    ChatMessage,
    ChatRoom,
    ChatRoomEvent,
    ChatThreadReadEvent,
    EventName,
    MessageEvent,
    NewNotificationEvent,
    Notification,
    NotificationCountEvent,
)

SUBPROTOCOLS: Final = ("actioncable-v1-json", "actioncable-unsupported")

MAX_ENVELOPE_DEPTH: Final = 3
_NAME_KEYS: Final = ("event", "type", "action", "event_name", "name")
_DATA_KEYS: Final = ("data", "payload", "json", "message")

# Circle's camelCase names, also reached from snake_case or other casing.
_CANONICAL: Final = {name.value.lower(): name.value for name in EventName}
_CANONICAL["chatroomunpinned"] = EventName.CHAT_ROOM_UNPINNED.value


def identifier(channel: str, **params: Any) -> str:
    """Build an identifier the way the Rails JS client does: compact JSON, channel first."""
    return json.dumps({"channel": channel, **params}, separators=(",", ":"))


def canonical_identifier(raw: str) -> str | None:
    """Key-sorted compact form, to match a server that re-serialises identifiers."""
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    return json.dumps(parsed, separators=(",", ":"), sort_keys=True)


def command(name: str, ident: str) -> str:
    """Serialise a subscribe or unsubscribe command."""
    return json.dumps({"command": name, "identifier": ident})


def _canonical_name(name: str) -> str:
    return _CANONICAL.get(name.replace("_", "").replace("-", "").lower(), name)


def _decode_nested(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def split_envelope(payload: Any, depth: int = 0) -> tuple[str, Mapping[str, Any]]:
    """Return (event name, fields) of a broadcast payload; the name is "" when none is found."""
    payload = _decode_nested(payload)
    if not isinstance(payload, Mapping):
        return "", {"value": payload}
    name = ""
    for key in _NAME_KEYS:
        value = payload.get(key)
        if isinstance(value, str) and value:
            name = value
            break
    data: Mapping[str, Any] = payload
    for key in _DATA_KEYS:
        nested = _decode_nested(payload.get(key))
        if isinstance(nested, Mapping):
            # {"event": "x", "data": {"event": "y", ...}}: the outer name wins, inner fields are data.
            if name or depth >= MAX_ENVELOPE_DEPTH:
                inner_name, inner = "", nested
            else:
                inner_name, inner = split_envelope(nested, depth + 1)
            name = name or inner_name
            data = inner
            break
    if not name and "new_notifications_count" in data:
        name = EventName.UPDATE_NEW_NOTIFICATION_COUNT.value
    return _canonical_name(name), data


def parse_payload(channel: str, payload: Any, room_id: int | None = None) -> CableEvent:
    """Turn a broadcast payload into the most specific typed event."""
    name, data = split_envelope(payload)
    match name:
        case EventName.NEW_MESSAGE | EventName.UPDATED_MESSAGE:
            return MessageEvent(
                channel, name, data, room_id, ChatMessage.from_json(data)
            )
        case EventName.DELETED_MESSAGE:
            message = ChatMessage.from_json(data)
            parent = data.get("parent_message")
            if (
                message is not None
                and message.chat_room_uuid is None
                and isinstance(parent, Mapping)
            ):
                # deletedMessage carries {id, parent_message}: take the room from the parent.
                merged = {
                    **parent,
                    **data,
                    "chat_room_uuid": parent.get("chat_room_uuid"),
                }
                message = ChatMessage.from_json(merged)
            return MessageEvent(channel, name, data, room_id, message)
        case (
            EventName.UPDATE_NEW_NOTIFICATION_COUNT
            | EventName.RESET_NEW_NOTIFICATION_COUNT
        ):
            count = data.get("new_notifications_count", 0)
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                count = 0
            return NotificationCountEvent(channel, name, data, room_id, count)
        case EventName.NEW_NOTIFICATION:
            return NewNotificationEvent(
                channel, name, data, room_id, Notification.from_json(data)
            )
        case (
            EventName.CHAT_ROOM_CREATED
            | EventName.CHAT_ROOM_UPDATED
            | EventName.CHAT_ROOM_DELETED
            | EventName.CHAT_ROOM_READ
            | EventName.CHAT_ROOM_PINNED
            | EventName.CHAT_ROOM_UNPINNED
        ):
            room = ChatRoom.from_json(data)
            uuid = data.get("chat_room_uuid") or data.get("uuid")
            room_ref = data.get("chat_room_id")
            return ChatRoomEvent(
                channel,
                name,
                data,
                room_id,
                uuid if isinstance(uuid, str) else None,
                room_ref if isinstance(room_ref, int) else (room.id if room else None),
                room,
            )
        case EventName.CHAT_THREAD_READ:
            thread = data.get("chat_thread_id")
            return ChatThreadReadEvent(
                channel,
                name,
                data,
                room_id,
                thread if isinstance(thread, int) else None,
            )
    return CableEvent(channel, name, data, room_id)


__all__ = [
    "SUBPROTOCOLS",
    "Channel",
    "cable_url_for",
    "canonical_identifier",
    "command",
    "identifier",
    "parse_payload",
    "split_envelope",
]


def cable_url_for(community_url: str) -> str:
    """wss://<host>/cable for https://<host> (ws:// for http://)."""
    url = URL(community_url)
    return str(
        url.with_scheme("wss" if url.scheme == "https" else "ws").with_path("/cable")
    )
