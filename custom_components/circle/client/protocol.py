"""ActionCable framing and Circle's event envelopes.

Circle does not document how a broadcast's payload names its event, so `parse_payload` accepts
each plausible envelope: the name under `event`, `type`, `event_type`, `action` or `name`, the
fields either beside it or under `data`, `payload`, `json` or `message` (possibly JSON-encoded
once more).

Nor does it document the frame around the payload: stock ActionCable sends
`{"identifier", "message"}`, Circle's own sample reads `channel` and `data`. `split_broadcast`
routes every such shape; the cable calls it only for frames off the common path.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
import json
import re
from typing import Any, Final, NamedTuple

from yarl import URL

from .models import (
    INT_LIMIT,
    MAX_KEY_LENGTH,
    CableEvent,
    Channel,
    ChatRoomEvent,
    ChatThreadReadEvent,
    EventName,
    MessageEvent,
    NewNotificationEvent,
    NotificationCountEvent,
    valid_room_key,
)

__all__ = [
    "CONTROL_TYPES",
    "EVENT_CLASSES",
    "MEMBER_CHANNELS",
    "SUBPROTOCOLS",
    "Broadcast",
    "cable_url_for",
    "canonical_identifier",
    "command",
    "dedupe_id",
    "describe_frame",
    "identifier",
    "message_dedupe_key",
    "parse_payload",
    "sanitize_reason",
    "split_broadcast",
    "split_envelope",
    "valid_room_key",
]

SUBPROTOCOLS: Final = ("actioncable-v1-json", "actioncable-unsupported")

MAX_ENVELOPE_DEPTH: Final = 3
_NAME_KEYS: Final = ("event", "type", "event_type", "action", "event_name", "name")
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


# --- Frames off the common path --------------------------------------------------------------

CONTROL_TYPES: Final = frozenset(
    {"welcome", "ping", "confirm_subscription", "reject_subscription", "disconnect"}
)
MEMBER_CHANNELS: Final = frozenset(
    {Channel.NOTIFICATION.value, Channel.CHAT_ROOM.value, Channel.THREADS.value}
)
_ROUTE_KEYS: Final = ("identifier", "channel")
_MAX_DESCRIBED_KEYS: Final = 12
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_.:-]")
_UNSAFE_REASON = re.compile(r"[^A-Za-z0-9_ .:-]")
MAX_REASON_LENGTH: Final = 100
# A run this long of token characters is no reason word: it may be an echoed token (a JWT,
# an access token), so it never reaches a log or an attribute.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_.:-]{33,}")


class Broadcast(NamedTuple):
    """Where a broadcast goes and what it carries (unpacks as `route, payload`).

    `route` is an identifier string (route it like a frame's `identifier`) or, when
    `by_channel` is true, one of the member channels' class names (`MEMBER_CHANNELS`).
    `payload` goes to `parse_payload(channel, payload, room_id)` as is.
    """

    route: str
    payload: Any

    @property
    def by_channel(self) -> bool:
        """True when `route` is a channel class name rather than an identifier."""
        return self.route in MEMBER_CHANNELS


def split_broadcast(frame: Any) -> Broadcast | None:
    """Route a frame that is not the common `{"identifier", "message": {"event", "data"}}`.

    Accepted (the event name under `event`, `type`, `event_type` or `name`, the fields under
    `data`, `message`, `payload` or beside the name):
    - `{"identifier": "<ours>", "message": ...}` (any payload shape);
    - `{"identifier": "<ours>", "data": ..., ["event": "<name>"]}`;
    - `{"channel": "<member channel class>", "data": ...}` (Circle's sample), or a `channel`
      holding an identifier string;
    - `{"identifier" | "channel": ..., "type" | "event_type" | "name": "<event>", ...flat}`.
    None for control frames (a top-level `type` of welcome, ping, confirm_subscription,
    reject_subscription or disconnect), for anything without a usable route, with neither a data
    key nor an event name, and for non-objects: log those with `describe_frame`. Never raises.
    """
    if type(frame) is not dict:
        return None
    kind = frame.get("type")
    if type(kind) is str and kind in CONTROL_TYPES:
        return None
    ident = frame.get("identifier")
    channel = frame.get("channel")
    if type(ident) is str and ident:
        route = ident
    elif type(channel) is str and (
        channel in MEMBER_CHANNELS or channel.startswith("{")
    ):
        route = channel
    else:
        return None
    payload = {k: v for k, v in frame.items() if k not in _ROUTE_KEYS}
    if len(payload) == 1 and "message" in payload:
        return Broadcast(route, payload["message"])
    # Something to deliver: a data key, or an event name (a string) to go by.
    if any(key in payload for key in _DATA_KEYS) or any(
        type(payload.get(key)) is str and payload[key] for key in _NAME_KEYS
    ):
        return Broadcast(route, payload)
    return None


def describe_frame(frame: Any) -> str:
    """Describe a frame's shape for a log line: its keys only (never a value), sanitised.

    E.g. `object with keys [channel, data, foo]`; at most 12 keys of at most 32 safe characters.
    """
    if not isinstance(frame, Mapping):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
            type(frame), "number" if isinstance(frame, (int, float)) else "value"
        )
        return f"JSON {kind}"
    keys = sorted(_UNSAFE_KEY.sub("?", str(key)[:32]) for key in list(frame)[:200])
    shown = ", ".join(keys[:_MAX_DESCRIBED_KEYS])
    more = (
        f", +{len(frame) - _MAX_DESCRIBED_KEYS} more"
        if len(frame) > _MAX_DESCRIBED_KEYS
        else ""
    )
    return f"object with keys [{shown}{more}]"


def sanitize_reason(value: Any) -> str:
    """Make a `disconnect` reason safe for logs and attributes: <= 100 of [A-Za-z0-9_ .:-].

    Other characters become "_"; a run of over 32 token characters (an echoed token, whole or
    cut) becomes "<redacted>"; a non-string gives "".
    """
    if type(value) is not str:
        return ""
    return _UNSAFE_REASON.sub("_", _TOKEN_LIKE.sub("<redacted>", value))[
        :MAX_REASON_LENGTH
    ]


def dedupe_id(value: Any) -> int | str | None:
    """Bound a de-duplication id: an int 0 < n < 2**63 or a string of at most 64 characters.

    Digit strings become ints; anything else gives None (then do not de-duplicate).
    """
    if type(value) is int:
        return value if 0 < value < INT_LIMIT else None
    if type(value) is str and 0 < len(value) <= MAX_KEY_LENGTH:
        if value.isascii() and value.isdigit():
            number = int(value)
            return number if 0 < number < INT_LIMIT else None
        return value
    return None


def message_dedupe_key(name: str, fields: Mapping[str, Any]) -> Hashable | None:
    """Return the key under which a message event is delivered once (None: no usable id).

    A new, unedited message is keyed by its id alone; edits and deletions by
    (name, id, edited_at) with edited_at cut to 64 characters.
    """
    message_id = dedupe_id(fields.get("id"))
    if message_id is None:
        return None
    edited = fields.get("edited_at")
    if edited is None and name == EventName.NEW_MESSAGE:
        return message_id
    return (
        name[:MAX_KEY_LENGTH],
        message_id,
        edited[:MAX_KEY_LENGTH] if type(edited) is str else None,
    )
