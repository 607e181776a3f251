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
    parse_datetime,
    plain_to_rich_text,
    rich_text_to_plain,
)
from custom_components.circle.client.protocol import (
    canonical_identifier,
    identifier,
    parse_payload,
    split_envelope,
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
