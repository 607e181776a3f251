"""The unread book: the rooms known, what is unread in them, and how many rooms are kept.

Part of the delivery core (`delivery.py`), which owns the shown `UnreadState`, the ledger
and the outputs; the book keeps the rooms and their counts consistent with Circle's listings
and bounds what is kept for rooms no listing has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from .delivery_io import (
    ANNOUNCED_ROOMS_MAX,
    UNLISTED_ROOMS_MAX,
    LedgerChanged,
    Snapshot,
    UnreadState,
)
from .models import ChatMessage, ChatRoom, ChatRoomEvent
from .phases import Phase

if TYPE_CHECKING:
    from .delivery import DeliveryCore


class UnreadBook:
    """Rooms, counts and names, from listings, messages and room events."""

    def __init__(
        self, core: DeliveryCore, rooms: Iterable[ChatRoom], complete: bool
    ) -> None:
        """Start from the rooms saved last time (`complete`: from a complete listing)."""
        self.core = core
        self.rooms: dict[str, ChatRoom] = {room.uuid: room for room in rooms}
        self.rooms_complete = complete
        # Complete listings taken since the start (not the one given here): a room the
        # caller keeps something for is gone only once two complete listings lacked it.
        self.complete_listings = 0
        self.counted: dict[str, int] = {
            room.uuid: room.last_message_id or 0 for room in self.rooms.values()
        }
        # Per room, the highest id Circle's REST API confirmed (listing or page): the
        # watermark never goes past it, whatever ids the cable names.
        self.confirmed: dict[str, int] = dict(self.counted)
        # Rooms no listing has: named by messages (at most UNLISTED_ROOMS_MAX), created
        # (at most ANNOUNCED_ROOMS_MAX).
        self.unlisted: dict[str, None] = {}
        self.announced: dict[str, None] = {}
        self._missing_once: set[str] = set()
        self.deleted: dict[str, None] = {}
        self.room_uuids = {
            r.id: uuid for uuid, r in self.rooms.items() if r.id is not None
        }

    def admit_ledger_rooms(self) -> None:
        """Rooms the saved ledger has and the listing lacks count as unlisted (bounded)."""
        ledger = self.core.ledger
        for uuid in sorted(ledger.rooms() - set(self.rooms)):
            if not self.admit(uuid):
                ledger.forget(uuid)

    def rooms_read(self, uuids: Iterable[str]) -> None:
        """Take rooms the member marked read from here (Circle's own event may follow)."""
        state = self.core.state
        read = set(uuids)
        self.core.set_state(
            replace(
                state,
                unread_rooms=state.unread_rooms - read,
                unread_counts={
                    uuid: 0 if uuid in read else count
                    for uuid, count in state.unread_counts.items()
                },
            )
        )

    def _is_own(self, message: ChatMessage) -> bool:
        sender = message.sender
        member_id = self.core.member_id
        return (
            member_id is not None
            and sender is not None
            and sender.community_member_id == member_id
        )

    def count(self, message: ChatMessage) -> None:
        """Count a new message as unread (or its room as read, when it is the member's)."""
        uuid = message.chat_room_uuid
        if not uuid or uuid in self.deleted:
            return
        if not self.admit(uuid):
            return
        core = self.core
        state = core.state
        if self._is_own(message):
            # Writing in a room means having read it.
            self.counted[uuid] = max(self.counted.get(uuid, 0), message.id)
            self.rooms_read((uuid,))
            return
        if message.parent_message_id is not None:
            return  # replies do not make a room unread
        if message.id <= self.counted.get(uuid, 0):
            return  # already in the counts read over REST
        self.counted[uuid] = message.id
        counts = dict(state.unread_counts)
        if uuid in self.rooms:
            counts[uuid] = counts.get(uuid, 0) + 1
        core.set_state(
            replace(
                state, unread_rooms=state.unread_rooms | {uuid}, unread_counts=counts
            )
        )

    def on_room_event(self, event: ChatRoomEvent) -> None:
        """Take a room read, deleted, created or renamed."""
        uuid = event.chat_room_uuid or (event.room.uuid if event.room else None)
        if uuid is None:
            return
        state = self.core.state
        unread, names = set(state.unread_rooms), dict(state.room_names)
        counts = dict(state.unread_counts)
        name = event.name
        if name in ("chatRoomRead", "chatRoomDeleted"):
            unread.discard(uuid)
            if uuid in counts:
                counts[uuid] = 0
            if name == "chatRoomDeleted":
                self._deleted_room(uuid)
                names.pop(uuid, None)
                counts.pop(uuid, None)
        elif (room := event.room) is not None:
            if name == "chatRoomCreated" and uuid not in self.rooms:
                if len(self.announced) >= ANNOUNCED_ROOMS_MAX:
                    return  # until listings free a place
                self.announced[uuid] = None
            if room.name and (uuid in self.rooms or name == "chatRoomCreated"):
                names[uuid] = room.name
            if name == "chatRoomCreated" and uuid not in self.rooms:
                counts[uuid] = room.unread_messages_count
                if room.unread_messages_count > 0:
                    unread.add(uuid)
                self._created(uuid, room)
            elif uuid in self.rooms and room.name:
                self.rooms[uuid] = replace(self.rooms[uuid], name=room.name)
        self.core.set_state(
            replace(
                state,
                unread_rooms=frozenset(unread),
                room_names=names,
                unread_counts=counts,
            )
        )

    def _deleted_room(self, uuid: str) -> None:
        core = self.core
        self.deleted[uuid] = None
        if len(self.deleted) > 256:
            del self.deleted[next(iter(self.deleted))]
        self.rooms.pop(uuid, None)
        self.counted.pop(uuid, None)
        core.synced_rooms.discard(uuid)
        core.ledger.forget(uuid)
        core.outbox.append(LedgerChanged())

    def _created(self, uuid: str, room: ChatRoom) -> None:
        core = self.core
        self.rooms[uuid] = room
        if room.id is not None:
            self.room_uuids[room.id] = uuid
        self.counted[uuid] = max(self.counted.get(uuid, 0), room.last_message_id or 0)
        if core.phase is Phase.LIVE and uuid not in core.ledger.watermarks:
            # Created while we listen: every message of it comes live. Its last
            # id is the cable's word: at most the newest id REST confirmed.
            newest = max(self.confirmed.values(), default=0)
            core.ledger.advance(uuid, min(room.last_message_id or 0, newest))
            core.synced_rooms.add(uuid)
            core.outbox.append(LedgerChanged())

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Take a REST read of the counts and rooms as the truth."""
        self.rooms_complete = snapshot.complete
        self.complete_listings += snapshot.complete
        listed = {room.uuid: room for room in snapshot.rooms}
        rooms = dict(self.rooms)
        if snapshot.complete:
            # A room is gone when two complete listings in a row lack it: one listing can
            # miss a room that moved between its pages. Rooms only the ledger or a message
            # named go the same way.
            known = set(self.rooms) | self.core.ledger.rooms() | set(self.unlisted)
            missing = known - set(listed)
            for uuid in missing & self._missing_once:
                rooms.pop(uuid, None)
                self._forget_room(uuid)
            self._missing_once = missing - self._missing_once
        for uuid in listed:
            self.unlisted.pop(uuid, None)
            self.announced.pop(uuid, None)
        rooms.update(listed)
        self.rooms = rooms
        self.room_uuids = {r.id: uuid for uuid, r in rooms.items() if r.id is not None}
        self._show_snapshot(snapshot, listed)

    def _show_snapshot(self, snapshot: Snapshot, listed: dict[str, ChatRoom]) -> None:
        shown = self.core.state
        names = {
            uuid: room.name or shown.room_names.get(uuid) or ""
            for uuid, room in self.rooms.items()
        }
        counts = {
            uuid: (
                room.unread_messages_count
                if uuid in listed
                else shown.unread_counts.get(uuid, 0)
            )
            for uuid, room in self.rooms.items()
        }
        for uuid, room in listed.items():
            # Live messages up to this id are already in the counts just read.
            last = self.counted[uuid] = room.last_message_id or 0
            self._confirm(uuid, last)
        self.core.set_state(
            UnreadState(
                new_notifications_count=snapshot.new_notifications_count,
                unread_rooms=frozenset(snapshot.unread_room_uuids),
                room_names=names,
                unread_counts=counts,
            )
        )

    def _confirm(self, uuid: str, last: int) -> None:
        """Take a room's latest id from a listing: it bounds and moves the watermark."""
        core = self.core
        ledger = core.ledger
        # Above both the listing and what REST confirmed before: an id nobody confirmed
        # (an older version's ledger, a hostile cable) that would silence the room.
        changed = ledger.clamp(uuid, max(last, self.confirmed.get(uuid, 0)))
        self.confirmed[uuid] = max(self.confirmed.get(uuid, 0), last)
        if uuid in core.synced_rooms and uuid not in core.holds.waiting:
            changed = ledger.fold(uuid, self.confirmed[uuid]) or changed
        if changed:
            core.outbox.append(LedgerChanged())

    def admit(self, uuid: str) -> bool:
        """Whether state is kept for a room: listed, announced, or one of few unlisted.

        Beyond the cap new rooms are ignored rather than old ones dropped, so that a flood
        cannot make the core forget what it handed over in a real room.
        """
        if uuid in self.rooms or uuid in self.unlisted:
            return True
        if len(self.unlisted) >= UNLISTED_ROOMS_MAX:
            return False
        self.unlisted[uuid] = None
        return True

    def _forget_room(self, uuid: str) -> None:
        """Drop what is kept for a room that is gone (or one unlisted room too many)."""
        core = self.core
        self.unlisted.pop(uuid, None)
        self.announced.pop(uuid, None)
        self.counted.pop(uuid, None)
        self.confirmed.pop(uuid, None)
        core.synced_rooms.discard(uuid)
        if uuid in core.ledger.rooms():
            core.ledger.forget(uuid)
            core.outbox.append(LedgerChanged())
