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
    ChatRoomEvent,
    ChatThreadReadEvent,
    EventName,
    MessageEvent,
    NewNotificationEvent,
    NotificationCountEvent,
)

SUBPROTOCOLS: Final = ("actioncable-v1-json", "actioncable-unsupported")

MAX_ENVELOPE_DEPTH: Final = 3
_NAME_KEYS: Final = ("event", "type", "action", "event_name", "name")
_DATA_KEYS: Final = ("data", "payload", "json", "message")

# Circle's camelCase names, also reached from snake_case or other casing.
_EXACT: Final = {name.value: name.value for name in EventName}
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
    if type(payload) is dict:
        # Fast path for the common shape {"event": "<known name>", "data": {...}}.
        name = payload.get("event")
        if type(name) is str:
            data = payload.get("data")
            if type(data) is dict and (known := _EXACT.get(name)) is not None:
                return known, data
    payload = _decode_nested(payload)
    if not isinstance(payload, Mapping):
        return "", {"value": payload}
    name = ""
    for key in _NAME_KEYS:
        value = payload.get(key)
        if isinstance(value, str) and value:
            name = value
            break
    fields: Mapping[str, Any] = payload
    for key in _DATA_KEYS:
        nested = _decode_nested(payload.get(key))
        if isinstance(nested, Mapping):
            # {"event": "x", "data": {"event": "y", ...}}: the outer name wins, inner fields are data.
            if name or depth >= MAX_ENVELOPE_DEPTH:
                inner_name, inner = "", nested
            else:
                inner_name, inner = split_envelope(nested, depth + 1)
            name = name or inner_name
            fields = inner
            break
    if not name and "new_notifications_count" in fields:
        name = EventName.UPDATE_NEW_NOTIFICATION_COUNT.value
    return _canonical_name(name), fields


EVENT_CLASSES: Final[dict[str, type[CableEvent]]] = {
    EventName.NEW_MESSAGE: MessageEvent,
    EventName.UPDATED_MESSAGE: MessageEvent,
    EventName.DELETED_MESSAGE: MessageEvent,
    EventName.UPDATE_NEW_NOTIFICATION_COUNT: NotificationCountEvent,
    EventName.RESET_NEW_NOTIFICATION_COUNT: NotificationCountEvent,
    EventName.NEW_NOTIFICATION: NewNotificationEvent,
    EventName.CHAT_ROOM_CREATED: ChatRoomEvent,
    EventName.CHAT_ROOM_UPDATED: ChatRoomEvent,
    EventName.CHAT_ROOM_DELETED: ChatRoomEvent,
    EventName.CHAT_ROOM_READ: ChatRoomEvent,
    EventName.CHAT_ROOM_PINNED: ChatRoomEvent,
    EventName.CHAT_ROOM_UNPINNED: ChatRoomEvent,
    EventName.CHAT_THREAD_READ: ChatThreadReadEvent,
}


def parse_payload(channel: str, payload: Any, room_id: int | None = None) -> CableEvent:
    """Turn a broadcast payload into the most specific event (typed views parse lazily)."""
    name, data = split_envelope(payload)
    return EVENT_CLASSES.get(name, CableEvent)(channel, name, data, room_id)


def cable_url_for(community_url: str) -> str:
    """wss://<host>/cable for https://<host> (ws:// for http://)."""
    url = URL(community_url)
    return str(
        url.with_scheme("wss" if url.scheme == "https" else "ws").with_path("/cable")
    )
