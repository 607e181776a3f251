"""A deletedMessage describes the deleted message, never its parent (issue 19).

Frames shaped as in Circle's document (circle-websockets.md): `{id, parent_message}`, the
parent with the room's uuid on the room channel and without it on the threads channel.
"""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.circle.client.models import MessageEvent
from custom_components.circle.payload import message_payload

ROOM = "0f0e6c55-6f0c-4a2c-9a3e-2f6f1b3c9d41"
PARENT: dict[str, Any] = {
    "id": 500,
    "chat_room_uuid": ROOM,
    "chat_room_participant_id": 31,
    "body": "the parent's text",
    "rich_text_body": {},
    "sent_at": "2026-01-02T10:00:00.000Z",
    "created_at": "2026-01-02T10:00:00.000Z",
    "sender": {"community_member_id": 7, "name": "Parent Author"},
    "creation_uuid": "c-500",
    "chat_thread_id": 90,
    "parent_message_id": None,
    "lesson_id": None,
    "edited_at": None,
    "replies_count": 2,
    "total_thread_participants_count": 2,
    "thread_participants_preview": {},
}


@pytest.fixture
def auto_enable_custom_integrations() -> None:
    """Pure Python: no Home Assistant instance here."""


def deleted(data: dict[str, Any], channel: str = "ChatRoomChannel") -> MessageEvent:
    return MessageEvent(channel, "deletedMessage", data)


def test_a_deleted_reply_is_not_described_by_its_parent() -> None:
    message = deleted({"id": 501, "parent_message": PARENT}).message
    assert message is not None
    assert message.id == 501
    assert message.chat_room_uuid == ROOM
    assert message.parent_message_id == 500 and message.chat_thread_id == 90
    assert message.sender is None  # not the parent's author
    assert message.body == "" and message.sent_at is None
    assert message.creation_uuid is None


def test_a_deleted_reply_on_the_threads_channel_has_no_room() -> None:
    thread_parent = {k: v for k, v in PARENT.items() if k != "chat_room_uuid"}
    message = deleted({"id": 501, "parent_message": thread_parent}).message
    assert message is not None
    assert (message.id, message.chat_room_uuid, message.sender) == (501, None, None)


def test_a_deleted_top_level_message_is_described_by_itself() -> None:
    """When the parent is the deleted message itself, its fields are that message's."""
    message = deleted({"id": 500, "parent_message": PARENT}).message
    assert message is not None
    assert message.id == 500 and message.chat_room_uuid == ROOM
    assert message.sender is not None and message.sender.name == "Parent Author"
    assert message.parent_message_id is None


def test_the_event_payload_of_a_deleted_reply_names_no_parent_author() -> None:
    message = deleted({"id": 501, "parent_message": PARENT}).message
    assert message is not None
    payload = message_payload(
        "deletedMessage",
        message,
        room=None,
        room_name="Room",
        own=False,
        backfilled=False,
        include_text=True,
    )
    assert payload["message_id"] == 501 and payload["parent_message_id"] == 500
    assert payload["room_uuid"] == ROOM
    assert payload["sender_name"] is None and payload["sender_id"] is None
    assert payload["sent_at"] is None and "text" not in payload
