"""The delivery core's vocabulary: its configuration, what it shows, and its outputs.

Kept apart from the core so that its parts (`resync.py`, `unread.py`) can name them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Final

from .holds import HOLD_MAX_MESSAGES, HOLD_MAX_SECONDS
from .models import ChatMessage, ChatRoom, NewNotificationEvent

RECENT_KEYS: Final = 4096
# Rooms that messages name but no listing has: state is kept for at most this many, and for
# at most ANNOUNCED_ROOMS_MAX rooms announced (chatRoomCreated) and not listed yet; rooms
# beyond are ignored (their messages still go out) until listings free the places.
UNLISTED_ROOMS_MAX: Final = 32
ANNOUNCED_ROOMS_MAX: Final = 64
NEW_MESSAGE: Final = "newMessage"
# Read-back retries back off to at most this, so that once Circle's REST API answers again a
# room's missed messages follow within a minute.
RESYNC_MAX_SECONDS: Final = 30.0
# A failing read-back is tried once more this long before the first hold ends.
LAST_TRY_MARGIN: Final = 5.0


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """Timing and bounds of the core; seconds unless said otherwise."""

    backfill_window: timedelta | None = timedelta(hours=24)  # None or 0: no backfill
    per_room: int = 100
    hold_max: float = HOLD_MAX_SECONDS
    hold_max_messages: int = HOLD_MAX_MESSAGES
    grace: float = 60.0
    resync_initial: float = 1.0
    resync_max: float = RESYNC_MAX_SECONDS
    max_rereads: int = 3
    # Counts pushed without an order (a read, a badge value) may be older than the last REST
    # read: read the counts again a little later, at most once per `verify_spacing`.
    verify_after: float = 5.0
    verify_spacing: float = 30.0


@dataclass(frozen=True, slots=True)
class UnreadState:
    """What the badges show."""

    new_notifications_count: int = 0
    unread_rooms: frozenset[str] = frozenset()
    room_names: Mapping[str, str] = field(default_factory=dict)
    unread_counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def unread_messages(self) -> int:
        """Unread messages across all rooms."""
        return sum(self.unread_counts.values())

    def room_name(self, uuid: str | None) -> str | None:
        """Name of a room, if known."""
        return self.room_names.get(uuid) if uuid else None

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> UnreadState:
        """Build the state a REST read shows."""
        return cls(
            new_notifications_count=snapshot.new_notifications_count,
            unread_rooms=snapshot.unread_room_uuids,
            room_names={room.uuid: room.name or "" for room in snapshot.rooms},
            unread_counts={
                room.uuid: room.unread_messages_count for room in snapshot.rooms
            },
        )


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """Connection and sync health, for availability and the connection sensor."""

    connected: bool = False
    available: bool = True
    synced: bool = False
    reason: str | None = "not_started"
    sync_error: str | None = None
    auth_failed: bool = False
    # Live messages waiting for their room's read-back: why, how many, since when (core clock).
    hold_reason: str | None = None
    held_rooms: int = 0
    held_messages: int = 0
    held_since: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The REST read of the counts and rooms; `complete` when every page was read."""

    new_notifications_count: int
    unread_room_uuids: frozenset[str]
    rooms: tuple[ChatRoom, ...]
    complete: bool = True


class FailureKind(StrEnum):
    """How a REST read failed, as far as the core cares."""

    TEMPORARY = "temporary"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"


# --- outputs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchSnapshot:
    """Read the counts, the unread rooms and the room list; answer with `snapshot_read`."""

    request_id: int


@dataclass(frozen=True, slots=True)
class FetchMessages:
    """Read the latest `count` messages of a room; answer with `messages_read`."""

    request_id: int
    room_uuid: str
    count: int


@dataclass(frozen=True, slots=True)
class CancelFetches:
    """Every read in flight is moot: cancel them."""


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand a message event over (`name`: newMessage, updatedMessage, deletedMessage)."""

    name: str
    message: ChatMessage
    backfilled: bool


@dataclass(frozen=True, slots=True)
class DeliverNotification:
    """Hand a new notification over."""

    event: NewNotificationEvent


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The unread state changed."""

    state: UnreadState


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """Connection or sync health changed."""

    status: SyncStatus


@dataclass(frozen=True, slots=True)
class LedgerChanged:
    """The ledger changed: save `ledger.as_dict()` (now or a little later)."""


type Output = (
    FetchSnapshot
    | FetchMessages
    | CancelFetches
    | Deliver
    | DeliverNotification
    | StateChanged
    | StatusChanged
    | LedgerChanged
)
