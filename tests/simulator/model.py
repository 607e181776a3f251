"""One consistent model of a Circle community; REST answers and cable broadcasts derive from it.

Fan-out follows circle-websockets.md:
- the member's `ChatRoomChannel` gets `newMessage` only for non-reply messages of non-embedded rooms;
- `Chats::RoomChannel` gets every message of its room, replies and embedded rooms included;
- the threads channel gets thread messages (replies) of the threads a member takes part in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
import itertools
from typing import Any
import uuid as uuidlib


def now_iso() -> str:
    """Circle's timestamp format: ISO-8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def notification_stream(member_id: int) -> str:
    return f"notification-channel-{member_id}"


def chat_room_stream(member_id: int) -> str:
    return f"chat-room-channel-{member_id}"


def room_stream(room_id: int) -> str:
    return f"chat-room-{room_id}-channel"


def threads_stream(member_id: int) -> str:
    return f"chat-community-member-{member_id}-threads-channel"


@dataclass
class SimMember:
    id: int
    name: str
    email: str
    sso_user_id: str | None = None
    new_notifications_count: int = 0

    def sender(self, participant_id: int) -> dict[str, Any]:
        return {
            "id": participant_id,
            "name": self.name,
            "avatar_url": None,
            "community_member_id": self.id,
            "user_public_uid": f"u{self.id:04x}",
        }


@dataclass
class SimMessage:
    id: int
    room_id: int
    sender_id: int
    body: str
    parent_message_id: int | None = None
    chat_thread_id: int | None = None
    sent_at: str = field(default_factory=now_iso)
    edited_at: str | None = None
    creation_uuid: str = field(default_factory=lambda: str(uuidlib.uuid4()))
    replies_count: int = 0


@dataclass
class SimRoom:
    id: int
    uuid: str
    kind: str  # direct | group_chat
    name: str
    participants: dict[int, int]  # member id -> participant id
    embedded: bool = False
    description: str = ""
    show_history: bool = True
    pinned_message_id: int | None = None
    messages: list[SimMessage] = field(default_factory=list)
    last_read: dict[int, int] = field(default_factory=dict)  # member id -> message id
    pinned_by: dict[int, str] = field(default_factory=dict)


@dataclass
class SimNotification:
    id: int
    member_id: int
    action: str
    actor_name: str
    notifiable_type: str
    notifiable_title: str
    space_title: str
    created_at: str = field(default_factory=now_iso)
    read_at: str | None = None


Publisher = Callable[[str, str, dict[str, Any]], None]
"""publish(stream, event name, data): the cable hub wraps it in the configured envelope."""


class Community:
    """Members, rooms, messages and notifications of one community."""

    def __init__(self, community_id: int = 1) -> None:
        self.community_id = community_id
        self.members: dict[int, SimMember] = {}
        self.rooms: dict[int, SimRoom] = {}
        self.notifications: list[SimNotification] = []
        self.threads: dict[
            int, tuple[int, int]
        ] = {}  # thread id -> (room id, parent id)
        self._ids = itertools.count(1000)
        self._participant_ids = itertools.count(5000)
        self.publish: Publisher = lambda stream, event, data: None

    # --- members and rooms -----------------------------------------------------------------

    def add_member(
        self, name: str, email: str, member_id: int | None = None
    ) -> SimMember:
        member = SimMember(
            member_id or next(self._ids), name, email, f"sso-{name.lower()}"
        )
        self.members[member.id] = member
        return member

    def member_by(
        self, *, member_id: Any = None, email: Any = None, sso: Any = None
    ) -> SimMember | None:
        if sso is not None:
            return next(
                (m for m in self.members.values() if m.sso_user_id == sso), None
            )
        if member_id is not None:
            return self.members.get(member_id) if isinstance(member_id, int) else None
        if email is not None:
            return next((m for m in self.members.values() if m.email == email), None)
        return None

    def create_room(
        self,
        kind: str,
        name: str,
        member_ids: list[int],
        *,
        embedded: bool = False,
        announce: bool = True,
    ) -> SimRoom:
        room_id = next(self._ids)
        room = SimRoom(
            id=room_id,
            uuid=str(uuidlib.uuid4()),
            kind=kind,
            name=name,
            participants={m: next(self._participant_ids) for m in member_ids},
            embedded=embedded,
        )
        self.rooms[room_id] = room
        if announce and not embedded:
            for member_id in member_ids:
                self.publish(
                    chat_room_stream(member_id),
                    "chatRoomCreated",
                    self.room_json(room, member_id),
                )
        return room

    def room_by_uuid(self, uuid: str) -> SimRoom | None:
        return next((r for r in self.rooms.values() if r.uuid == uuid), None)

    def update_room(
        self, room: SimRoom, *, name: str | None = None, description: str | None = None
    ) -> None:
        if name is not None:
            room.name = name
        if description is not None:
            room.description = description
        simplified = {
            "uuid": room.uuid,
            "chat_room_name": room.name,
            "chat_room_description": room.description,
            "chat_room_show_history": room.show_history,
            "pinned_message": self.message_json(
                self._message(room, room.pinned_message_id)
            )
            if room.pinned_message_id
            else None,
        }
        if not room.embedded:
            for member_id in room.participants:
                self.publish(chat_room_stream(member_id), "chatRoomUpdated", simplified)
        self.publish(room_stream(room.id), "chatRoomUpdated", simplified)

    def delete_room(self, room: SimRoom) -> None:
        del self.rooms[room.id]
        for member_id in room.participants:
            self.publish(
                chat_room_stream(member_id),
                "chatRoomDeleted",
                {"chat_room_uuid": room.uuid},
            )

    def pin_room(self, room: SimRoom, member_id: int, pinned: bool = True) -> None:
        if pinned:
            room.pinned_by[member_id] = now_iso()
            self.publish(
                chat_room_stream(member_id),
                "chatRoomPinned",
                {"chat_room_id": room.id, "pinned_at": room.pinned_by[member_id]},
            )
        else:
            room.pinned_by.pop(member_id, None)
            self.publish(
                chat_room_stream(member_id),
                "chatRoomUnPinned",
                {"chat_room_id": room.id},
            )

    def rooms_of(self, member_id: int) -> list[SimRoom]:
        return [r for r in self.rooms.values() if member_id in r.participants]

    def unread_count(self, room: SimRoom, member_id: int) -> int:
        last = room.last_read.get(member_id, 0)
        return sum(
            1
            for m in room.messages
            if m.id > last and m.sender_id != member_id and m.parent_message_id is None
        )

    def unread_rooms(self, member_id: int) -> list[SimRoom]:
        return [
            r for r in self.rooms_of(member_id) if self.unread_count(r, member_id) > 0
        ]

    def mark_room_read(self, room: SimRoom, member_id: int) -> None:
        room.last_read[member_id] = room.messages[-1].id if room.messages else 0
        if not room.embedded:
            self.publish(
                chat_room_stream(member_id),
                "chatRoomRead",
                {"chat_room_uuid": room.uuid},
            )

    # --- messages --------------------------------------------------------------------------

    def _message(self, room: SimRoom, message_id: int | None) -> SimMessage | None:
        return next((m for m in room.messages if m.id == message_id), None)

    def post_message(
        self,
        room: SimRoom,
        sender_id: int,
        body: str,
        parent_message_id: int | None = None,
    ) -> SimMessage:
        if sender_id not in room.participants:
            raise ValueError("sender is not in the room")
        message = SimMessage(
            next(self._ids), room.id, sender_id, body, parent_message_id
        )
        parent = None
        if parent_message_id is not None:
            parent = self._message(room, parent_message_id)
            if parent is None:
                raise ValueError("no such parent message")
            if parent.chat_thread_id is None:
                parent.chat_thread_id = next(self._ids)
                self.threads[parent.chat_thread_id] = (room.id, parent.id)
            parent.replies_count += 1
            message.chat_thread_id = parent.chat_thread_id
        room.messages.append(message)
        room.last_read[sender_id] = message.id
        data = self.message_json(message, with_kind=True)
        if parent is None and not room.embedded:
            for member_id in room.participants:
                self.publish(chat_room_stream(member_id), "newMessage", data)
        self.publish(room_stream(room.id), "newMessage", data)
        if parent is not None:
            for member_id in self.thread_members(room, parent):
                self.publish(threads_stream(member_id), "newMessage", data)
        return message

    def thread_members(self, room: SimRoom, parent: SimMessage) -> set[int]:
        members = {parent.sender_id}
        members.update(
            m.sender_id for m in room.messages if m.parent_message_id == parent.id
        )
        return members

    def edit_message(self, room: SimRoom, message: SimMessage, body: str) -> None:
        message.body = body
        message.edited_at = now_iso()
        data = self.message_json(message)
        self.publish(room_stream(room.id), "updatedMessage", data)
        if message.parent_message_id is not None:
            parent = self._message(room, message.parent_message_id)
            if parent is not None:
                for member_id in self.thread_members(room, parent):
                    self.publish(threads_stream(member_id), "updatedMessage", data)

    def delete_message(self, room: SimRoom, message: SimMessage) -> None:
        room.messages.remove(message)
        parent = (
            self._message(room, message.parent_message_id)
            if message.parent_message_id
            else None
        )
        data = {
            "id": message.id,
            "parent_message": self.message_json(parent or message),
        }
        self.publish(room_stream(room.id), "deletedMessage", data)
        if parent is not None:
            for member_id in self.thread_members(room, parent):
                self.publish(threads_stream(member_id), "deletedMessage", data)

    def read_thread(self, thread_id: int, member_id: int) -> None:
        self.publish(
            threads_stream(member_id), "chatThreadRead", {"chat_thread_id": thread_id}
        )

    # --- notifications ---------------------------------------------------------------------

    def notify(
        self, member_id: int, actor_name: str = "Ada", title: str = "Welcome post"
    ) -> SimNotification:
        member = self.members[member_id]
        notification = SimNotification(
            next(self._ids), member_id, "comment", actor_name, "Post", title, "General"
        )
        self.notifications.append(notification)
        member.new_notifications_count += 1
        stream = notification_stream(member_id)
        self.publish(stream, "newNotification", self.notification_json(notification))
        self.publish(
            stream,
            "updateNewNotificationCount",
            {"new_notifications_count": member.new_notifications_count},
        )
        return notification

    def reset_notifications(self, member_id: int) -> None:
        self.members[member_id].new_notifications_count = 0
        self.publish(
            notification_stream(member_id),
            "resetNewNotificationCount",
            {"new_notifications_count": 0},
        )

    def mark_all_notifications_read(self, member_id: int) -> None:
        stamp = now_iso()
        for n in self.notifications:
            if n.member_id == member_id and n.read_at is None:
                n.read_at = stamp
        self.reset_notifications(member_id)

    # --- JSON shapes -----------------------------------------------------------------------

    def message_json(
        self, message: SimMessage | None, *, with_kind: bool = False
    ) -> dict[str, Any]:
        if message is None:
            return {}
        room = self.rooms.get(message.room_id)
        sender = self.members.get(message.sender_id)
        participant_id = room.participants.get(message.sender_id, 0) if room else 0
        data: dict[str, Any] = {
            "id": message.id,
            "chat_room_uuid": room.uuid if room else None,
            "chat_room_participant_id": participant_id,
            "body": message.body,
            "rich_text_body": {
                "body": {
                    "type": "doc",
                    "content": [
                        {
                            "type": "paragraph",
                            "content": [{"type": "text", "text": message.body}],
                        }
                    ],
                }
            },
            "sent_at": message.sent_at,
            "created_at": message.sent_at,
            "sender": sender.sender(participant_id) if sender else {},
            "creation_uuid": message.creation_uuid,
            "chat_thread_id": message.chat_thread_id,
            "parent_message_id": message.parent_message_id,
            "lesson_id": None,
            "edited_at": message.edited_at,
            "replies_count": message.replies_count,
            "total_thread_participants_count": 0,
            "thread_participants_preview": [],
        }
        if with_kind and room is not None:
            data["chat_room_kind"] = room.kind
            data["chat_thread_replies_count"] = message.replies_count
        return data

    def room_json(self, room: SimRoom, member_id: int) -> dict[str, Any]:
        others = [
            self.members[m]
            for m in room.participants
            if m != member_id and m in self.members
        ]
        last = room.messages[-1] if room.messages else None
        return {
            "id": room.id,
            "uuid": room.uuid,
            "identifier": f"{room.kind}-"
            + "-".join(str(m) for m in sorted(room.participants)),
            "unread_messages_count": self.unread_count(room, member_id),
            "chat_room_kind": room.kind,
            "chat_room_name": room.name,
            "chat_room_description": room.description,
            "chat_room_show_history": room.show_history,
            "chat_room_participants_count": len(room.participants),
            "other_participants_preview": [
                {"id": m.id, "name": m.name} for m in others[:3]
            ],
            "current_participant": {
                "id": room.participants.get(member_id),
                "community_member_id": member_id,
            },
            "last_message": self.message_json(last) if last else None,
        }

    def notification_json(self, n: SimNotification) -> dict[str, Any]:
        return {
            "id": n.id,
            "created_at": n.created_at,
            "read_at": n.read_at,
            "action": n.action,
            # Circle's display_action is a verb phrase, not a sentence.
            "display_action": "commented on",
            "notification_text_structure": [],
            "actor_name": n.actor_name,
            "actor_image": None,
            "notifiable_type": n.notifiable_type,
            "notifiable_id": n.id + 1,
            "notifiable_title": n.notifiable_title,
            "space_id": 1,
            "space_title": n.space_title,
            "action_web_url": f"https://example.invalid/posts/{n.id}",
        }


def seed(community: Community) -> dict[str, Any]:
    """A small community: the member, two others, a DM, a group chat and an embedded chat space."""
    me = community.add_member("Grace Hopper", "grace@example.com", member_id=42)
    ada = community.add_member("Ada Lovelace", "ada@example.com")
    alan = community.add_member("Alan Turing", "alan@example.com")
    dm = community.create_room(
        "direct", "Ada Lovelace", [me.id, ada.id], announce=False
    )
    group = community.create_room(
        "group_chat", "Analytical Engines", [me.id, ada.id, alan.id], announce=False
    )
    space = community.create_room(
        "group_chat",
        "Chat space",
        [me.id, ada.id, alan.id],
        embedded=True,
        announce=False,
    )
    return {
        "me": me,
        "ada": ada,
        "alan": alan,
        "dm": dm,
        "group": group,
        "space": space,
    }
