"""Envelope parsing and record models: every plausible shape of Circle's payloads."""

from __future__ import annotations

import json

import pytest

from custom_components.circle.client import (
    ChatMessage,
    ChatRoom,
    Member,
    MessageEvent,
    Notification,
    NotificationCountEvent,
)
from custom_components.circle.client.models import (
    as_count,
    as_id,
    parse_datetime,
    plain_to_rich_text,
    rich_text_to_plain,
)
from custom_components.circle.client.protocol import (
    canonical_identifier,
    dedupe_id,
    describe_frame,
    identifier,
    message_dedupe_key,
    parse_payload,
    sanitize_reason,
    split_broadcast,
    split_envelope,
    valid_room_key,
)

MESSAGE = {
    "id": 7,
    "chat_room_uuid": "r1",
    "body": "hi",
    "sender": {"id": 1, "name": "Ada", "community_member_id": "5"},
}


@pytest.mark.parametrize(
    "payload",
    [
        {"event": "newMessage", "data": MESSAGE},
        {"type": "newMessage", "data": MESSAGE},
        {"event": "newMessage", **MESSAGE},
        {"type": "newMessage", **MESSAGE},
        {"action": "new_message", "payload": MESSAGE},
        {"event": "NEW_MESSAGE", "json": json.dumps(MESSAGE)},
        json.dumps({"event": "newMessage", "data": MESSAGE}),
        {"message": {"event": "newMessage", "data": MESSAGE}},
    ],
)
def test_every_envelope_gives_the_same_message(payload) -> None:
    event = parse_payload("ChatRoomChannel", payload)
    assert isinstance(event, MessageEvent)
    assert event.name == "newMessage"
    assert event.message is not None
    assert (event.message.id, event.message.body, event.message.chat_room_uuid) == (
        7,
        "hi",
        "r1",
    )
    assert (
        event.message.sender is not None
        and event.message.sender.community_member_id == 5
    )


def test_count_inferred_and_sanitised() -> None:
    event = parse_payload("NotificationChannel", {"new_notifications_count": 4})
    assert isinstance(event, NotificationCountEvent) and event.count == 4
    bad = parse_payload(
        "NotificationChannel",
        {
            "event": "updateNewNotificationCount",
            "data": {"new_notifications_count": "x"},
        },
    )
    assert isinstance(bad, NotificationCountEvent) and bad.count == 0


def test_non_mapping_payloads_are_unknown_events() -> None:
    assert split_envelope([1, 2]) == ("", {"value": [1, 2]})
    assert split_envelope("{not json") == ("", {"value": "{not json"})
    event = parse_payload("X", 5)
    assert event.name == "" and event.data == {"value": 5}


def test_message_without_id_is_kept_as_event_without_message() -> None:
    event = parse_payload(
        "Chats::RoomChannel", {"event": "newMessage", "data": {"body": "x"}}, room_id=3
    )
    assert (
        isinstance(event, MessageEvent) and event.message is None and event.room_id == 3
    )


def test_identifiers() -> None:
    ident = identifier("ChatRoomChannel", community_member_id=42)
    assert ident == '{"channel":"ChatRoomChannel","community_member_id":42}'
    assert canonical_identifier(
        '{"community_member_id": 42, "channel": "ChatRoomChannel"}'
    ) == canonical_identifier(ident)
    assert canonical_identifier("nope") is None
    assert canonical_identifier("[1]") is None


def test_rich_text_round_trip() -> None:
    rich = plain_to_rich_text("one\n\ntwo")
    assert rich_text_to_plain(rich) == "one\n\ntwo"
    assert rich_text_to_plain(None) == ""
    message = ChatMessage.from_json({"id": "9", "rich_text_body": rich})
    assert message is not None and message.body == "one\n\ntwo" and message.id == 9


def test_records_in_both_shapes() -> None:
    flat = ChatRoom.from_json(
        {
            "uuid": "u",
            "chat_room_name": "N",
            "unread_messages_count": 2,
            "last_message": {"id": 3},
        }
    )
    wrapped = ChatRoom.from_json(
        {
            "chat_room": {
                "uuid": "u",
                "chat_room_name": "N",
                "unread_messages_count": 2,
                "last_message": {"id": 3},
            }
        }
    )
    assert flat == wrapped and flat is not None and flat.last_message_id == 3
    assert ChatRoom.from_json({"name": "no uuid"}) is None
    assert ChatRoom.from_json("junk") is None
    assert Member.from_json({"community_member": {"id": 1, "email": "a@b"}}) is not None
    assert Member.from_json({"name": "x"}) is None
    note = Notification.from_json(
        {"notification": {"id": 3, "actor_name": "A", "created_at": 1700000000}}
    )
    assert note.id == 3 and note.created_at is not None and note.created_at.year == 2023


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2024-03-20T16:54:47.274Z", True),
        ("2024-03-20T16:54:47", True),
        ("yesterday", False),
        ("", False),
        (None, False),
        (True, False),
    ],
)
def test_datetimes(value, ok) -> None:
    parsed = parse_datetime(value)
    assert (parsed is not None) is ok
    if parsed:
        assert parsed.tzinfo is not None


# --- Broadcast envelopes off the common path (issue 12) -------------------------------------

IDENT = '{"channel":"ChatRoomChannel","community_member_id":42}'


@pytest.mark.parametrize(
    ("frame", "route"),
    [
        (
            {"identifier": IDENT, "message": {"event": "newMessage", "data": MESSAGE}},
            IDENT,
        ),
        ({"identifier": IDENT, "message": {"type": "newMessage", **MESSAGE}}, IDENT),
        (
            {"identifier": IDENT, "data": {"event": "newMessage", "data": MESSAGE}},
            IDENT,
        ),
        ({"identifier": IDENT, "event": "newMessage", "data": MESSAGE}, IDENT),
        ({"identifier": IDENT, "type": "newMessage", "data": MESSAGE}, IDENT),
        ({"identifier": IDENT, "event_type": "newMessage", "data": MESSAGE}, IDENT),
        ({"identifier": IDENT, "name": "newMessage", "data": MESSAGE}, IDENT),
        ({"identifier": IDENT, "type": "newMessage", **MESSAGE}, IDENT),
        ({"identifier": IDENT, "event_type": "new_message", "payload": MESSAGE}, IDENT),
        (
            {"channel": "ChatRoomChannel", "event": "newMessage", "data": MESSAGE},
            "ChatRoomChannel",
        ),
        (
            {"channel": "ChatRoomChannel", "type": "newMessage", "data": MESSAGE},
            "ChatRoomChannel",
        ),
        (
            {
                "channel": "ChatRoomChannel",
                "data": {"event": "newMessage", "data": MESSAGE},
            },
            "ChatRoomChannel",
        ),
        (
            {
                "channel": "ChatRoomChannel",
                "data": json.dumps({"type": "newMessage", **MESSAGE}),
            },
            "ChatRoomChannel",
        ),
        ({"channel": IDENT, "event": "newMessage", "data": MESSAGE}, IDENT),
    ],
)
def test_split_broadcast_routes_every_shape(frame, route) -> None:
    broadcast = split_broadcast(frame)
    assert broadcast is not None
    got_route, payload = broadcast  # unpacks as (route, payload)
    assert got_route == route
    assert broadcast.by_channel is (route == "ChatRoomChannel")
    event = parse_payload("ChatRoomChannel", payload)
    assert isinstance(event, MessageEvent) and event.name == "newMessage"
    assert event.message is not None and (event.message.id, event.message.body) == (
        7,
        "hi",
    )


def test_split_broadcast_member_channels_and_counts() -> None:
    for channel in (
        "NotificationChannel",
        "ChatRoomChannel",
        "Chats::CommunityMemberThreadsChannel",
    ):
        assert split_broadcast({"channel": channel, "data": {}}) is not None
    broadcast = split_broadcast(
        {"channel": "NotificationChannel", "data": {"new_notifications_count": 3}}
    )
    assert broadcast is not None and broadcast.by_channel
    event = parse_payload("NotificationChannel", broadcast.payload)
    assert isinstance(event, NotificationCountEvent) and event.count == 3


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "ping", "message": 1},
        {"type": "welcome", "sid": "x"},
        {"type": "confirm_subscription", "identifier": IDENT},
        {"type": "reject_subscription", "identifier": IDENT},
        {"type": "disconnect", "reason": "x", "identifier": IDENT},
        {"channel": "Chats::RoomChannel", "data": MESSAGE},  # which room? not routable
        {"channel": "SomethingElse", "data": MESSAGE},
        {"channel": 5, "data": MESSAGE},
        {"identifier": 5, "data": MESSAGE},
        {"identifier": "", "data": MESSAGE},
        {"identifier": IDENT},
        {"event": "newMessage", "data": MESSAGE},  # no route at all
        [IDENT, MESSAGE],
        "text",
        None,
        42,
    ],
)
def test_split_broadcast_refuses_control_and_unroutable_frames(frame) -> None:
    assert split_broadcast(frame) is None


def test_describe_frame_lists_keys_never_values() -> None:
    text = describe_frame(
        {"zeta": "SECRET", "alpha": {"nested": "SECRET"}, "b\n<x>": 1}
    )
    assert text == "object with keys [alpha, b??x?, zeta]"
    assert "SECRET" not in text
    many = describe_frame({f"k{i:02d}": i for i in range(30)})
    assert many.endswith(", +18 more]") and "k12" not in many
    assert len(describe_frame({"x" * 10_000: 1})) < 60
    assert describe_frame([1, 2]) == "JSON array"
    assert describe_frame("SECRET") == "JSON string"
    assert describe_frame(None) == "JSON null"
    assert describe_frame(1.5) == "JSON number"
    assert describe_frame(True) == "JSON boolean"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("server_restart", "server_restart"),
        ("unauthorized", "unauthorized"),
        ("a b.c:d-e_f", "a b.c:d-e_f"),
        ("<script>alert(1)</script>", "_script_alert_1___script_"),
        ("line\nbreak\x00", "line_break_"),
        ("é", "_"),
        ("x" * 500, "_redacted_"),
        ("x y" * 200, ("x y" * 200)[:100]),
        # An echoed token never survives, whole or cut to the length limit.
        (
            "expired eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjQyfQ.c2lnbmF0dXJl",
            "expired _redacted_",
        ),
        ("token " + "a1B2" * 10 + " gone", "token _redacted_ gone"),
        ("server_restart_because_of_an_unexpected_condition", "_redacted_"),
        (None, ""),
        (42, ""),
        (["x"], ""),
    ],
)
def test_sanitize_reason(value, expected) -> None:
    assert sanitize_reason(value) == expected


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("3f2c-11aa-BB", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("../etc/passwd", False),
        ("abc/def", False),
        ("abc?x=1", False),
        ("abc\n", False),
        ("abc ", False),
        ("ab%2F", False),
        ("\uff41\uff42\uff43", False),  # full-width letters
        (None, False),
        (True, False),
        (5, True),
        (0, False),
        (-5, False),
        (2**63, False),
        (["a"], False),
    ],
)
def test_valid_room_key(value, ok) -> None:
    assert valid_room_key(value) is ok


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, 7),
        ("7", 7),
        ("abc-def", "abc-def"),
        ("x" * 64, "x" * 64),
        ("x" * 65, None),
        ("", None),
        (0, None),
        (-1, None),
        (2**63, None),
        ("9" * 30, None),  # digits beyond int64: no usable id
        ("99999999999999999999", None),
        (True, None),
        (1.5, None),
        (None, None),
        ({"id": 1}, None),
    ],
)
def test_dedupe_id_is_bounded(value, expected) -> None:
    assert dedupe_id(value) == expected


def test_message_dedupe_key() -> None:
    assert message_dedupe_key("newMessage", {"id": 7}) == 7
    assert message_dedupe_key("newMessage", {"id": "7"}) == 7
    assert message_dedupe_key("updatedMessage", {"id": 7, "edited_at": "t"}) == (
        "updatedMessage",
        7,
        "t",
    )
    key = message_dedupe_key("updatedMessage", {"id": 7, "edited_at": "t" * 1000})
    assert key == ("updatedMessage", 7, "t" * 64)
    assert message_dedupe_key("deletedMessage", {"id": 7, "edited_at": 5}) == (
        "deletedMessage",
        7,
        None,
    )
    assert message_dedupe_key("newMessage", {"id": "x" * 1000}) is None
    assert message_dedupe_key("newMessage", {}) is None


@pytest.mark.parametrize(
    ("record", "summary"),
    [
        (
            {
                "actor_name": "Ada",
                "display_action": "commented on",
                "notifiable_title": "Welcome post",
            },
            "Ada commented on Welcome post",
        ),
        (
            {"actor_name": "Ada", "action": "comment", "notifiable_title": "Welcome"},
            "Ada commented on Welcome",
        ),
        (
            {"actor_name": "Ada", "action": "new_reaction", "notifiable_title": "T"},
            "Ada new reaction T",
        ),
        (
            {
                "actor_name": "Ada",
                "display_action": "Ada commented on Welcome post",
                "notifiable_title": "Welcome post",
            },
            "Ada commented on Welcome post",
        ),
        ({"display_action": "liked", "notifiable_title": "T"}, "liked T"),
        ({"actor_name": "Ada\n\tLovelace", "action": "like"}, "Ada Lovelace liked"),
        ({}, "New notification"),
        ({"actor_name": 5, "action": ["x"], "notifiable_title": None}, "5"),
    ],
)
def test_notification_summary(record, summary) -> None:
    note = Notification.from_json(record)
    assert note.summary == summary
    assert note.text == record.get("display_action")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        ("5", 5),
        (" 5 ", 5),
        (2**63 - 1, 2**63 - 1),
        (2**63, None),
        ("9223372036854775808", None),
        ("99999999999999999999999", None),
        (0, None),
        ("0", None),
        (-5, None),
        ("-5", None),
        ("--5", None),
        ("+5", None),
        ("5.0", None),
        (5.0, None),
        ("\u0665", None),  # Arabic-Indic digit
        ("²", None),
        (True, None),
        (False, None),
        (None, None),
        ("", None),
        ([5], None),
        ("5" * 10_000, None),
    ],
)
def test_ids_accept_only_positive_int64(value, expected) -> None:
    assert as_id(value) == expected
    message = ChatMessage.from_json({"id": value, "parent_message_id": value})
    if expected is None:
        assert message is None
    else:
        assert (
            message is not None and message.id == message.parent_message_id == expected
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), ("0", 0), (3, 3), (-1, None), (True, None), (2**63, None), ("x", None)],
)
def test_counts_accept_zero(value, expected) -> None:
    assert as_count(value) == expected
    assert NotificationCountEvent(
        "NotificationChannel",
        "updateNewNotificationCount",
        {"new_notifications_count": value},
    ).count == (expected or 0)


def test_rooms_with_unsafe_uuids_are_dropped() -> None:
    assert ChatRoom.from_json({"uuid": "../x"}) is None
    assert ChatRoom.from_json({"uuid": "a" * 65}) is None
    assert ChatRoom.from_json({"chat_room": {"uuid": "ok-1", "id": True}}).id is None  # type: ignore[union-attr]
    room = ChatRoom.from_json(
        {"uuid": "ok", "unread_messages_count": "--5", "name": "n" * 999}
    )
    assert (
        room is not None
        and room.unread_messages_count == 0
        and len(room.name or "") == 255
    )
    message = ChatMessage.from_json({"id": 1, "chat_room_uuid": "a/b"})
    assert message is not None and message.chat_room_uuid is None


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59.999999",
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-03-20T16:54:47+99:00",
        "2024-03-20T16:54:47.274Z" + "0" * 1000,
        1e20,
        -1e20,
        float("inf"),
        float("nan"),
        2**70,
        -1,
        1.7e12,  # milliseconds: year ~55000
        [],
        {},
    ],
)
def test_out_of_range_dates_are_missing(value) -> None:
    assert parse_datetime(value) is None
