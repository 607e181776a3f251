"""Hostile cable frames at the protocol level: every one ends as an event, a control frame or
a drop, never an exception, and every typed view of it stays within bounds.

`run_frame` follows the cable's path with the protocol functions: the common
{"identifier", "message": {"event", "data"}} shape inline, then control frames, then
`split_broadcast` and `parse_payload` for the other shapes, and `describe_frame` for a drop.
The live cable (client/cable.py) is run through the same table by its own tests.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from custom_components.circle.client.models import (
    INT_LIMIT,
    CableEvent,
    ChatRoomEvent,
    ChatThreadReadEvent,
    MessageEvent,
    NewNotificationEvent,
    NotificationCountEvent,
    valid_room_key,
)
from custom_components.circle.client.protocol import (
    CONTROL_TYPES,
    EVENT_CLASSES,
    describe_frame,
    message_dedupe_key,
    parse_payload,
    sanitize_reason,
    split_broadcast,
)

CHANNEL = "ChatRoomChannel"
IDENT = '{"channel":"ChatRoomChannel","community_member_id":42}'
SECRET = "SECRETVALUE"
SAFE_REASON = re.compile(r"[A-Za-z0-9_ .:-]{0,100}")


def run_frame(raw: str) -> tuple[str, Any]:
    """("event", CableEvent) | ("control", detail) | ("drop", description)."""
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        return "drop", "not JSON"
    try:
        payload = frame["message"]
        if frame["identifier"] != IDENT:
            raise KeyError  # noqa: TRY301 - as the cable's lookup does
        name = payload["event"]
        fields = payload["data"]
        if type(fields) is not dict:
            raise TypeError  # noqa: TRY301
        event = EVENT_CLASSES[name](CHANNEL, name, fields, None)
    except (KeyError, TypeError, IndexError):
        kind = frame.get("type") if type(frame) is dict else None
        if type(kind) is str and kind in CONTROL_TYPES:
            if kind == "disconnect":
                return "control", sanitize_reason(frame.get("reason"))
            return "control", kind
        broadcast = split_broadcast(frame)
        if broadcast is None:
            return "drop", describe_frame(frame)
        if broadcast.by_channel:
            channel = broadcast.route
        elif broadcast.route == IDENT:
            channel = CHANNEL
        else:
            return "drop", "unknown identifier"
        event = parse_payload(channel, broadcast.payload)
    return "event", event


def touch(event: CableEvent) -> None:
    """Read every typed view, as a consumer would, and check its bounds."""
    assert isinstance(event.name, str)
    if isinstance(event, MessageEvent):
        message = event.message
        if message is not None:
            assert 0 < message.id < INT_LIMIT
            assert message.chat_room_uuid is None or valid_room_key(
                message.chat_room_uuid
            )
            for value in (message.chat_thread_id, message.parent_message_id):
                assert value is None or 0 < value < INT_LIMIT
            if message.sender is not None:
                assert message.sender.id is None or 0 < message.sender.id < INT_LIMIT
        key = message_dedupe_key(event.name, event.data)
        assert key is None or len(repr(key)) < 300
    elif isinstance(event, NotificationCountEvent):
        assert 0 <= event.count < INT_LIMIT
    elif isinstance(event, NewNotificationEvent):
        note = event.notification
        assert 0 < len(note.summary) <= 255
        assert note.id is None or 0 < note.id < INT_LIMIT
    elif isinstance(event, ChatRoomEvent):
        room = event.room
        assert room is None or valid_room_key(room.uuid)
        uuid = event.chat_room_uuid
        assert uuid is None or valid_room_key(uuid)
        room_id = event.chat_room_id
        assert room_id is None or 0 < room_id < INT_LIMIT
    elif isinstance(event, ChatThreadReadEvent):
        thread = event.chat_thread_id
        assert thread is None or 0 < thread < INT_LIMIT


def bcast(name: Any, data: Any) -> str:
    return json.dumps({"identifier": IDENT, "message": {"event": name, "data": data}})


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


MESSAGE = {"id": 7, "chat_room_uuid": "room-1", "body": "hi"}

# (id, raw frame, expected kind, expected event name or control detail; None: not checked)
FRAMES: list[tuple[str, str, str, Any]] = [
    ("common", bcast("newMessage", MESSAGE), "event", "newMessage"),
    ("html", "<html>oops</html>", "drop", None),
    ("truncated", '{"type":"ping","message":17', "drop", None),
    ("deep-array", "[" * 100_000 + "]" * 100_000, "drop", None),
    ("deep-data", bcast("newMessage", json.loads(deep(500))), "event", "newMessage"),
    ("null", "null", "drop", None),
    ("number", "42", "drop", None),
    ("string", '"SECRETVALUE"', "drop", None),
    ("array", "[1, 2]", "drop", None),
    ("empty-object", "{}", "drop", None),
    ("huge-int", '{"identifier": ' + "9" * 5000 + "}", "drop", None),
    ("nan", '{"type": "ping", "message": NaN}', "control", "ping"),
    ("ping", '{"type":"ping","message":1729855056}', "control", "ping"),
    (
        "welcome-huge-sid",
        json.dumps({"type": "welcome", "sid": "x" * 100_000}),
        "control",
        "welcome",
    ),
    (
        "confirm-unknown",
        json.dumps({"type": "confirm_subscription", "identifier": "x"}),
        "control",
        "confirm_subscription",
    ),
    (
        "reject",
        json.dumps({"type": "reject_subscription", "identifier": IDENT}),
        "control",
        "reject_subscription",
    ),
    (
        "disconnect-script",
        json.dumps(
            {"type": "disconnect", "reason": "<script>" * 100, "reconnect": True}
        ),
        "control",
        ("_script_" * 13)[:100],
    ),
    (
        "disconnect-newlines",
        json.dumps({"type": "disconnect", "reason": "a\nb\r\x1b[31mc"}),
        "control",
        "a_b___31mc",
    ),
    (
        "disconnect-reason-object",
        json.dumps({"type": "disconnect", "reason": {"x": SECRET}}),
        "control",
        "",
    ),
    ("type-list", json.dumps({"type": ["ping"], "identifier": IDENT}), "drop", None),
    ("type-object", json.dumps({"type": {"a": SECRET}}), "drop", None),
    (
        "identifier-int",
        json.dumps(
            {"identifier": 42, "message": {"event": "newMessage", "data": MESSAGE}}
        ),
        "drop",
        None,
    ),
    (
        "identifier-unknown",
        json.dumps(
            {
                "identifier": "someone else",
                "message": {"event": "newMessage", "data": MESSAGE},
            }
        ),
        "drop",
        "unknown identifier",
    ),
    (
        "identifier-deep-json",
        json.dumps({"identifier": "[" * 10_000, "data": {}}),
        "drop",
        "unknown identifier",
    ),
    ("message-null", json.dumps({"identifier": IDENT, "message": None}), "event", ""),
    (
        "message-json-string",
        json.dumps(
            {
                "identifier": IDENT,
                "message": json.dumps({"event": "newMessage", "data": MESSAGE}),
            }
        ),
        "event",
        "newMessage",
    ),
    (
        "message-deep-string",
        json.dumps({"identifier": IDENT, "message": "[" * 100_000}),
        "event",
        "",
    ),
    ("unknown-event", bcast("fooBar", MESSAGE), "event", "fooBar"),
    ("event-name-int", bcast(5, MESSAGE), "event", ""),
    ("event-name-huge", bcast("x" * 100_000, {}), "event", None),
    ("data-list", bcast("newMessage", [1, 2]), "event", "newMessage"),
    (
        "data-string-json",
        bcast("newMessage", json.dumps(MESSAGE)),
        "event",
        "newMessage",
    ),
    ("data-deep-string", bcast("newMessage", "[" * 100_000), "event", "newMessage"),
    ("data-null", bcast("newMessage", None), "event", "newMessage"),
    ("id-bool", bcast("newMessage", {"id": True}), "event", "newMessage"),
    ("id-dashdash", bcast("newMessage", {"id": "--5"}), "event", "newMessage"),
    ("id-2-63", bcast("newMessage", {"id": 2**63}), "event", "newMessage"),
    ("id-negative", bcast("newMessage", {"id": -1}), "event", "newMessage"),
    (
        "id-long-string",
        bcast("newMessage", {"id": "x" * 10_000}),
        "event",
        "newMessage",
    ),
    ("id-float", bcast("newMessage", {"id": 1e308}), "event", "newMessage"),
    (
        "edited-huge",
        bcast("updatedMessage", {"id": 7, "edited_at": "t" * 100_000}),
        "event",
        "updatedMessage",
    ),
    (
        "room-uuid-traversal",
        bcast("newMessage", {"id": 7, "chat_room_uuid": "../../etc"}),
        "event",
        "newMessage",
    ),
    (
        "dates-out-of-range",
        bcast(
            "newMessage",
            {
                "id": 7,
                "sent_at": "0001-01-01T00:00:00+01:00",
                "edited_at": 1e20,
                "created_at": "9999-12-31T23:59:59-01:00",
            },
        ),
        "event",
        "newMessage",
    ),
    (
        "sender-junk",
        bcast(
            "newMessage",
            {
                "id": 7,
                "sender": {"id": "--5", "community_member_id": True, "name": ["x"]},
            },
        ),
        "event",
        "newMessage",
    ),
    (
        "rich-text-deep",
        bcast("newMessage", {"id": 7, "rich_text_body": json.loads(deep(900))}),
        "event",
        "newMessage",
    ),
    (
        "count-negative",
        bcast("updateNewNotificationCount", {"new_notifications_count": -5}),
        "event",
        "updateNewNotificationCount",
    ),
    (
        "count-bool",
        bcast("updateNewNotificationCount", {"new_notifications_count": True}),
        "event",
        "updateNewNotificationCount",
    ),
    (
        "count-2-64",
        bcast("updateNewNotificationCount", {"new_notifications_count": 2**64}),
        "event",
        "updateNewNotificationCount",
    ),
    (
        "count-float",
        bcast("resetNewNotificationCount", {"new_notifications_count": 1e308}),
        "event",
        "resetNewNotificationCount",
    ),
    (
        "notification-huge-actor",
        bcast(
            "newNotification",
            {"actor_name": "A" * 100_000, "display_action": "x" * 100_000},
        ),
        "event",
        "newNotification",
    ),
    (
        "notification-junk-types",
        bcast(
            "newNotification",
            {"id": "--5", "actor_name": {"x": 1}, "created_at": "junk"},
        ),
        "event",
        "newNotification",
    ),
    (
        "room-created-bad-uuid",
        bcast("chatRoomCreated", {"uuid": "a/b", "id": True}),
        "event",
        "chatRoomCreated",
    ),
    (
        "room-read-bad-uuid",
        bcast("chatRoomRead", {"chat_room_uuid": "a" * 65}),
        "event",
        "chatRoomRead",
    ),
    (
        "room-pinned-bad-id",
        bcast("chatRoomPinned", {"chat_room_id": "--5", "pinned_at": 1e20}),
        "event",
        "chatRoomPinned",
    ),
    (
        "thread-read-bool",
        bcast("chatThreadRead", {"chat_thread_id": True}),
        "event",
        "chatThreadRead",
    ),
    (
        "deleted-parent-junk",
        bcast("deletedMessage", {"id": 7, "parent_message": "x"}),
        "event",
        "deletedMessage",
    ),
    (
        "deleted-parent-bad-uuid",
        bcast("deletedMessage", {"id": 7, "parent_message": {"chat_room_uuid": "?"}}),
        "event",
        "deletedMessage",
    ),
    (
        "channel-data",
        json.dumps(
            {"channel": "ChatRoomChannel", "event": "newMessage", "data": MESSAGE}
        ),
        "event",
        "newMessage",
    ),
    (
        "channel-room-channel",
        json.dumps({"channel": "Chats::RoomChannel", "data": MESSAGE}),
        "drop",
        None,
    ),
    ("channel-unknown", json.dumps({"channel": SECRET, "data": MESSAGE}), "drop", None),
    (
        "channel-ping",
        json.dumps({"channel": "NotificationChannel", "type": "ping"}),
        "control",
        "ping",
    ),
    (
        "identifier-welcome",
        json.dumps({"identifier": IDENT, "type": "welcome", "data": MESSAGE}),
        "control",
        "welcome",
    ),
    (
        "identifier-type-flat",
        json.dumps({"identifier": IDENT, "type": "newMessage", **MESSAGE}),
        "event",
        "newMessage",
    ),
    (
        "identifier-event-type",
        json.dumps(
            {
                "identifier": IDENT,
                "event_type": "updateNewNotificationCount",
                "data": {"new_notifications_count": 3},
            }
        ),
        "event",
        "updateNewNotificationCount",
    ),
    (
        "identifier-name",
        json.dumps(
            {
                "identifier": IDENT,
                "name": "chatRoomRead",
                "data": {"chat_room_uuid": "ok"},
            }
        ),
        "event",
        "chatRoomRead",
    ),
    (
        "identifier-data-envelope",
        json.dumps(
            {"identifier": IDENT, "data": {"event": "newMessage", "data": MESSAGE}}
        ),
        "event",
        "newMessage",
    ),
    (
        "nested-envelopes",
        json.dumps(
            {
                "identifier": IDENT,
                "message": {
                    "data": {"data": {"data": {"data": {"event": "newMessage"}}}}
                },
            }
        ),
        "event",
        None,
    ),
    (
        "hostile-keys",
        json.dumps({"a\n\x1b[2J" * 50: SECRET, "\ud800": SECRET}),
        "drop",
        None,
    ),
    ("many-keys", json.dumps({f"k{i}": SECRET for i in range(1000)}), "drop", None),
    (
        "duplicate-keys",
        '{"identifier": "x", "identifier": '
        + json.dumps(IDENT)
        + ', "message": {"event": "newMessage", "data": {"id": 7}}}',
        "event",
        "newMessage",
    ),
    (
        "surrogates",
        bcast("newMessage", {"id": 7, "body": "\ud800\udfff\ud800"}),
        "event",
        "newMessage",
    ),
    (
        "infinity",
        bcast("updateNewNotificationCount", {"new_notifications_count": float("inf")}),
        "event",
        "updateNewNotificationCount",
    ),
]


@pytest.mark.parametrize(
    ("raw", "kind", "detail"),
    [(raw, kind, detail) for _, raw, kind, detail in FRAMES],
    ids=[frame_id for frame_id, *_ in FRAMES],
)
def test_hostile_frame(raw: str, kind: str, detail: Any) -> None:
    got_kind, got = run_frame(raw)
    assert got_kind == kind
    if kind == "event":
        assert isinstance(got, CableEvent)
        touch(got)
        if detail is not None:
            assert got.name == detail
        assert SECRET not in repr(got)
    elif kind == "control":
        if detail is not None:
            assert got == detail
        assert SAFE_REASON.fullmatch(got)
    else:
        assert isinstance(got, str)
        assert SECRET not in got and len(got) < 600
        assert "\n" not in got and "\x1b" not in got
        if detail is not None:
            assert got == detail


def test_there_are_at_least_fifty_frames() -> None:
    assert len(FRAMES) >= 50
    assert len({frame_id for frame_id, *_ in FRAMES}) == len(FRAMES)


def test_the_common_shape_never_needs_the_fallback() -> None:
    """The hot path stays as it is: the common frame is typed without split_broadcast."""
    frame = json.loads(bcast("newMessage", MESSAGE))
    event = EVENT_CLASSES[frame["message"]["event"]](
        CHANNEL, "newMessage", frame["message"]["data"], None
    )
    assert isinstance(event, MessageEvent) and event.message is not None
    # The fallback gives the very same event for it.
    broadcast = split_broadcast(frame)
    assert broadcast is not None
    assert parse_payload(CHANNEL, broadcast.payload) == event
