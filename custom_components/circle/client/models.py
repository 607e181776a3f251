"""Typed views of Circle's REST records and cable events.

Circle's payloads are documented loosely (see circle-websockets.md); every parser here accepts
missing and unknown fields and keeps the raw mapping for callers that need more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
import re
from typing import Any, Final


class Channel(StrEnum):
    """ActionCable channel classes Circle exposes to members."""

    NOTIFICATION = "NotificationChannel"
    CHAT_ROOM = "ChatRoomChannel"
    ROOM = "Chats::RoomChannel"
    THREADS = "Chats::CommunityMemberThreadsChannel"


class EventName(StrEnum):
    """Event names documented by Circle, in Circle's spelling."""

    NEW_NOTIFICATION = "newNotification"
    UPDATE_NEW_NOTIFICATION_COUNT = "updateNewNotificationCount"
    RESET_NEW_NOTIFICATION_COUNT = "resetNewNotificationCount"
    CHAT_ROOM_CREATED = "chatRoomCreated"
    CHAT_ROOM_UPDATED = "chatRoomUpdated"
    CHAT_ROOM_DELETED = "chatRoomDeleted"
    CHAT_ROOM_READ = "chatRoomRead"
    CHAT_ROOM_PINNED = "chatRoomPinned"
    CHAT_ROOM_UNPINNED = "chatRoomUnPinned"
    NEW_MESSAGE = "newMessage"
    UPDATED_MESSAGE = "updatedMessage"
    DELETED_MESSAGE = "deletedMessage"
    CHAT_THREAD_READ = "chatThreadRead"


MAX_RICH_TEXT_DEPTH = 32
INT_LIMIT: Final = 2**63
MAX_KEY_LENGTH: Final = 64
# Dates outside this window are junk (or would overflow date arithmetic): treated as missing.
MIN_DATETIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DATETIME: Final = datetime(2200, 1, 1, tzinfo=UTC)
_ROOM_KEY: Final = re.compile(r"[A-Za-z0-9-]{1,64}")


def _as_int(value: Any) -> int | None:
    """Parse a positive id: 0 < n < 2**63, from an int or a string of ASCII digits; never a bool."""
    if type(value) is int:
        return value if 0 < value < INT_LIMIT else None
    if type(value) is str and 0 < len(value) < 24:
        value = value.strip()
        if value.isascii() and value.isdigit() and len(value) < 20:
            number = int(value)
            return number if 0 < number < INT_LIMIT else None
    return None


def as_id(value: Any) -> int | None:
    """Public name of the id parser: 0 < n < 2**63, never a bool, never raises."""
    return _as_int(value)


def as_count(value: Any) -> int | None:
    """Parse a count: 0 <= n < 2**63 (never a bool); None otherwise."""
    if type(value) is int and 0 <= value < INT_LIMIT:
        return value
    if type(value) is str and value.strip() == "0":
        return 0
    return _as_int(value)


def valid_room_key(value: Any) -> bool:
    """Tell whether a room id or uuid may go into a URL path: ^[A-Za-z0-9-]{1,64}$.

    A positive int (0 < n < 2**63) is also valid.
    """
    if type(value) is str:
        return _ROOM_KEY.fullmatch(value) is not None
    return type(value) is int and 0 < value < INT_LIMIT


def _as_room_key(value: Any) -> str | None:
    return value if type(value) is str and _ROOM_KEY.fullmatch(value) else None


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _cut(value: str | None, limit: int = 255) -> str | None:
    return value[:limit] if value is not None else None


def _as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_datetime(value: Any) -> datetime | None:
    """Parse Circle's ISO-8601 timestamps ("2024-03-20T16:54:47.274Z") or epoch seconds.

    Never raises: junk, and dates outside 1970..2200 (or that cannot be represented), give None.
    """
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parsed = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str) and 0 < len(value) <= 64:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
        else:
            return None
        if not MIN_DATETIME <= parsed < MAX_DATETIME:
            return None
    except (OverflowError, OSError, ValueError, TypeError):
        return None
    return parsed


def rich_text_to_plain(rich: Any) -> str:
    """Flatten a TipTap rich-text body into plain text (paragraphs and hard breaks become newlines)."""
    doc = _as_map(rich)
    if "body" in doc and isinstance(doc["body"], Mapping):
        doc = doc["body"]
    parts: list[str] = []

    def walk(node: Any, depth: int = 0) -> None:
        if not isinstance(node, Mapping) or depth > MAX_RICH_TEXT_DEPTH:
            return
        kind = node.get("type")
        if kind == "text" and isinstance(node.get("text"), str):
            parts.append(node["text"])
        elif kind == "hardBreak":
            parts.append("\n")
        content = node.get("content")
        for child in content if isinstance(content, list) else ():
            walk(child, depth + 1)
        if kind == "paragraph":
            parts.append("\n")

    walk(doc)
    return "".join(parts).strip("\n")


def plain_to_rich_text(text: str) -> dict[str, Any]:
    """Build Circle's rich_text_body for plain text: one paragraph, newlines as hard breaks."""
    content: list[dict[str, Any]] = []
    for index, line in enumerate(text.split("\n")):
        if index:
            content.append({"type": "hardBreak"})
        if line:
            content.append({"type": "text", "text": line})
    return {
        "body": {"type": "doc", "content": [{"type": "paragraph", "content": content}]}
    }


@dataclass(frozen=True, slots=True)
class Sender:
    """Author of a chat message."""

    id: int | None
    community_member_id: int | None
    name: str | None

    @classmethod
    def from_json(cls, data: Any) -> Sender | None:
        """Parse `sender`; None when absent."""
        if not isinstance(data, Mapping):
            return None
        return cls(
            id=_as_int(data.get("id")),
            community_member_id=_as_int(data.get("community_member_id")),
            name=_as_str(data.get("name")),
        )


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A chat room message, from the cable (JSONMessage) or REST (chat_room_message)."""

    id: int
    chat_room_uuid: str | None
    chat_room_kind: str | None
    body: str
    sender: Sender | None
    sent_at: datetime | None
    edited_at: datetime | None
    creation_uuid: str | None
    chat_thread_id: int | None
    parent_message_id: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChatMessage | None:
        """Parse a message; None without a usable id."""
        message_id = _as_int(data.get("id"))
        if message_id is None:
            return None
        body = data.get("body")
        if not isinstance(body, str):
            body = rich_text_to_plain(data.get("rich_text_body"))
        return cls(
            id=message_id,
            chat_room_uuid=_as_room_key(data.get("chat_room_uuid")),
            chat_room_kind=_as_str(data.get("chat_room_kind")),
            body=body,
            sender=Sender.from_json(data.get("sender")),
            sent_at=parse_datetime(data.get("sent_at") or data.get("created_at")),
            edited_at=parse_datetime(data.get("edited_at")),
            creation_uuid=_as_str(data.get("creation_uuid")),
            chat_thread_id=_as_int(data.get("chat_thread_id")),
            parent_message_id=_as_int(data.get("parent_message_id")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class ChatRoom:
    """A chat room as listed by `GET /messages` or pushed by `chatRoomCreated`."""

    id: int | None
    uuid: str
    name: str | None
    kind: str | None
    unread_messages_count: int
    last_message_id: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> ChatRoom | None:
        """Parse a room, flat or wrapped as {"chat_room": {...}}; None without a uuid."""
        record = _as_map(data)
        if isinstance(record.get("chat_room"), Mapping):
            record = record["chat_room"]
        uuid = _as_room_key(_as_str(record.get("uuid") or record.get("chat_room_uuid")))
        if uuid is None:
            return None  # missing, or not safe to put into a URL path
        last = _as_map(record.get("last_message"))
        return cls(
            id=_as_int(record.get("id")),
            uuid=uuid,
            name=_cut(_as_str(record.get("chat_room_name") or record.get("name"))),
            kind=_as_str(record.get("chat_room_kind") or record.get("kind")),
            unread_messages_count=as_count(record.get("unread_messages_count")) or 0,
            last_message_id=_as_int(last.get("id")),
            raw=record,
        )


@dataclass(frozen=True, slots=True)
class Notification:
    """An in-app notification (fields as in `GET /notifications`)."""

    id: int | None
    action: str | None
    actor_name: str | None
    text: str | None
    notifiable_type: str | None
    notifiable_title: str | None
    space_title: str | None
    url: str | None
    created_at: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notification:
        """Parse a notification; every field is optional on the cable."""
        record = data
        if isinstance(record.get("notification"), Mapping):
            record = record["notification"]
        return cls(
            id=_as_int(record.get("id")),
            action=_as_str(record.get("action")),
            actor_name=_as_str(record.get("actor_name")),
            text=_as_str(
                record.get("display_action") or record.get("notification_text")
            ),
            notifiable_type=_as_str(record.get("notifiable_type")),
            notifiable_title=_as_str(record.get("notifiable_title")),
            space_title=_as_str(record.get("space_title")),
            url=_as_str(record.get("action_web_url")),
            created_at=parse_datetime(record.get("created_at")),
            raw=record,
        )

    @property
    def summary(self) -> str:
        """A human line from actor, action and title, e.g. "Ada commented on Welcome post".

        Circle's `display_action` is only a verb ("commented on"): the actor and the title are
        added around it, unless it already reads as a whole sentence.
        """
        actor = _clean(self.actor_name)
        title = _clean(self.notifiable_title)
        verb = _clean(self.text) or _verb(self.action)
        if actor and verb.startswith(actor):
            actor = ""  # display_action is already a sentence
        if title and title in verb:
            title = ""
        line = " ".join(part for part in (actor, verb, title) if part)
        return line[:255] or "New notification"


_VERBS: Final = {
    "comment": "commented on",
    "reply": "replied to",
    "like": "liked",
    "mention": "mentioned you in",
    "post": "posted",
    "new_post": "posted",
    "follow": "followed",
    "event": "posted an event",
    "rsvp": "RSVPed to",
}


def _clean(value: str | None) -> str:
    return " ".join(value.split())[:200] if value else ""


def _verb(action: str | None) -> str:
    if not action:
        return ""
    key = action.strip().lower()
    return _VERBS.get(key) or _clean(key.replace("_", " "))


@dataclass(frozen=True, slots=True)
class Member:
    """The member whose token the client holds."""

    id: int
    name: str | None
    email: str | None = field(repr=False)
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> Member | None:
        """Parse `GET /community_member`; None without an id."""
        record = _as_map(data)
        if isinstance(record.get("community_member"), Mapping):
            record = record["community_member"]
        member_id = _as_int(record.get("id"))
        if member_id is None:
            return None
        return cls(
            id=member_id,
            name=_as_str(record.get("name")),
            email=_as_str(record.get("email")),
            raw=record,
        )


@dataclass(frozen=True, slots=True)
class MessagePage:
    """A window of messages around a cursor, oldest first."""

    messages: list[ChatMessage]
    has_previous_page: bool
    has_next_page: bool
    first_id: int | None
    last_id: int | None


@dataclass(frozen=True, slots=True)
class SentMessage:
    """Circle accepts a message asynchronously: only the creation uuid comes back."""

    chat_room_uuid: str
    creation_uuid: str | None
    parent_message_id: int | None
    sent_at: datetime | None


# --- Cable events -------------------------------------------------------------------------
#
# Every cable frame becomes one of these, so they are built cheaply: four attributes, and the
# typed views (message, count, room, ...) are parsed from `data` on first access only.


class CableEvent:
    """Any event received on a subscribed channel.

    `name` is Circle's event name (canonical spelling when known); `data` the event's fields
    after the envelope was removed; `room_id` is set for `Chats::RoomChannel` subscriptions.
    """

    __slots__ = ("channel", "data", "name", "room_id")

    def __init__(
        self,
        channel: str,
        name: str,
        data: Mapping[str, Any],
        room_id: int | None = None,
    ) -> None:
        """Keep the raw fields; nothing else is parsed here."""
        self.channel = channel
        self.name = name
        self.data = data
        self.room_id = room_id

    def __repr__(self) -> str:
        """Names only: data may hold message bodies."""
        return f"{type(self).__name__}(channel={self.channel!r}, name={self.name!r}, room_id={self.room_id!r})"

    def __eq__(self, other: object) -> bool:
        """Equal when of the same kind with the same fields."""
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, CableEvent)
        return (self.channel, self.name, self.data, self.room_id) == (
            other.channel,
            other.name,
            other.data,
            other.room_id,
        )

    __hash__ = None  # type: ignore[assignment]


class MessageEvent(CableEvent):
    """newMessage, updatedMessage or deletedMessage."""

    __slots__ = ("_message",)
    _message: ChatMessage | None

    @property
    def message(self) -> ChatMessage | None:
        """The message; for deletedMessage ({id, parent_message}) see `_deleted`."""
        try:
            return self._message
        except AttributeError:
            pass
        data = self.data
        message = ChatMessage.from_json(data)
        parent = data.get("parent_message")
        if (
            message is not None
            and message.chat_room_uuid is None
            and isinstance(parent, Mapping)
        ):
            message = ChatMessage.from_json(_deleted(data, parent))
        self._message = message
        return message


def _deleted(data: Mapping[str, Any], parent: Mapping[str, Any]) -> dict[str, Any]:
    """Describe a deleted message from `{id, parent_message}`: its own fields, never the parent's.

    The parent gives the room (and the thread of a deleted reply); when it is the deleted
    message itself (a top-level one), it describes that message.
    """
    if _as_int(parent.get("id")) == _as_int(data.get("id")):
        return {**parent, **data, "chat_room_uuid": parent.get("chat_room_uuid")}
    record = {
        "chat_room_uuid": parent.get("chat_room_uuid"),
        "chat_room_kind": parent.get("chat_room_kind"),
        "chat_thread_id": parent.get("chat_thread_id"),
        "parent_message_id": parent.get("id"),
        "body": "",
    }
    record.update(data)
    return record


class NotificationCountEvent(CableEvent):
    """updateNewNotificationCount or resetNewNotificationCount."""

    __slots__ = ()

    @property
    def count(self) -> int:
        """The new badge count; 0 when missing or invalid."""
        return as_count(self.data.get("new_notifications_count")) or 0


class NewNotificationEvent(CableEvent):
    """newNotification."""

    __slots__ = ()

    @property
    def notification(self) -> Notification:
        """The notification (every field optional)."""
        return Notification.from_json(self.data)


class ChatRoomEvent(CableEvent):
    """chatRoom* events; `room` is set for chatRoomCreated and chatRoomUpdated."""

    __slots__ = ()

    @property
    def room(self) -> ChatRoom | None:
        """The room record, when the event carries one."""
        return ChatRoom.from_json(self.data)

    @property
    def chat_room_uuid(self) -> str | None:
        """The room's uuid (chatRoomRead, chatRoomDeleted, chatRoomUpdated, chatRoomCreated)."""
        return _as_room_key(self.data.get("chat_room_uuid") or self.data.get("uuid"))

    @property
    def chat_room_id(self) -> int | None:
        """The room's numeric id (chatRoomPinned, chatRoomUnPinned, chatRoomCreated)."""
        room_id = _as_int(self.data.get("chat_room_id"))
        if room_id is None:
            room_id = _as_int(self.data.get("id"))
        return room_id


class ChatThreadReadEvent(CableEvent):
    """chatThreadRead."""

    __slots__ = ()

    @property
    def chat_thread_id(self) -> int | None:
        """The thread that was read."""
        return _as_int(self.data.get("chat_thread_id"))
