"""The data of bus events and event entities, built from the client's typed objects."""

from __future__ import annotations

from typing import Any

from .client import ChatMessage, ChatRoom, Notification
from .const import EVENT_MESSAGE_DELETED, EVENT_MESSAGE_UPDATED, EVENT_NEW_MESSAGE

# Circle's event name -> (event entity type, bus event type)
MESSAGE_EVENTS = {
    "newMessage": ("new_message", EVENT_NEW_MESSAGE),
    "updatedMessage": ("message_updated", EVENT_MESSAGE_UPDATED),
    "deletedMessage": ("message_deleted", EVENT_MESSAGE_DELETED),
}


def message_payload(
    name: str,
    message: ChatMessage,
    *,
    room: ChatRoom | None,
    room_name: str | None,
    own: bool,
    backfilled: bool,
    include_text: bool,
) -> dict[str, Any]:
    """Describe a chat message event; no text for deletions or when the options say so."""
    sender = message.sender
    payload: dict[str, Any] = {
        "room_uuid": message.chat_room_uuid,
        "room_name": room_name,
        "room_kind": message.chat_room_kind or (room.kind if room else None),
        "message_id": message.id,
        "sender_name": sender.name if sender else None,
        "sender_id": sender.community_member_id if sender else None,
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "thread_id": message.chat_thread_id,
        "parent_message_id": message.parent_message_id,
        "own": own,
        "backfilled": backfilled,
    }
    if include_text and name != "deletedMessage":
        payload["text"] = message.body
    return payload


def notification_payload(notification: Notification) -> dict[str, Any]:
    """Describe a new notification, with a human line (actor, action, title)."""
    return {
        "notification_id": notification.id,
        "action": notification.action,
        "actor_name": notification.actor_name,
        "title": notification.notifiable_title,
        "text": notification.summary,
        "space": notification.space_title,
        "url": notification.url,
    }
