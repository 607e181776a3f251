"""Nothing lost: remember the last message seen per room and fetch what the cable missed.

The cable has no replay. After every (re)connect, and so after a restart too, the rooms whose
last message is newer than what we saw are read over REST and their missed messages are fired
as normal events, marked `backfilled`, once each and oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .client import ChatMessage, ChatRoom, CircleError, CircleMemberApi
from .const import DOMAIN, LOGGER

STORAGE_VERSION = 1
MAX_PER_ROOM = 100
RECENT_IDS = 4096
SAVE_DELAY = 1.0


class MessageLedger:
    """Last message id per room (persisted) and the ids fired lately (in memory)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Use one store per config entry."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.last_seen"
        )
        self.last_seen: dict[str, int] = {}
        self._recent: dict[int, None] = {}
        self.loaded_empty = True
        # Between a disconnect and the backfill that follows, live messages must not move
        # last_seen past the gap; they are held aside and merged once the backfill is done.
        self._frozen = True
        self._held: dict[str, int] = {}

    async def async_load(self) -> None:
        """Read what was seen before the restart."""
        stored = await self._store.async_load()
        rooms = stored.get("rooms") if isinstance(stored, dict) else None
        if isinstance(rooms, dict):
            self.last_seen = {k: v for k, v in rooms.items() if isinstance(v, int)}
            self.loaded_empty = False

    async def async_save(self) -> None:
        """Write now (unload, stop)."""
        await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        return {"rooms": self.last_seen}

    def is_new(self, message: ChatMessage) -> bool:
        """Whether this message was not fired yet."""
        return message.id not in self._recent

    def record(self, message: ChatMessage) -> None:
        """Remember a fired message."""
        self._recent[message.id] = None
        if len(self._recent) > RECENT_IDS:
            del self._recent[next(iter(self._recent))]
        room = message.chat_room_uuid
        if not room or message.parent_message_id is not None:
            return
        if self._frozen:
            self._held[room] = max(self._held.get(room, 0), message.id)
        elif message.id > self.last_seen.get(room, 0):
            self.last_seen[room] = message.id
            self._store.async_delay_save(self._data, SAVE_DELAY)

    @property
    def frozen(self) -> bool:
        """Whether a backfill is due before last_seen may move."""
        return self._frozen

    def freeze(self) -> None:
        """Hold last_seen where the gap starts (the connection dropped)."""
        self._frozen = True

    def thaw(self) -> None:
        """Let last_seen move on (the gap was backfilled)."""
        self._frozen = False
        for room, message_id in self._held.items():
            if message_id > self.last_seen.get(room, 0):
                self.last_seen[room] = message_id
        self._held.clear()
        self._store.async_delay_save(self._data, SAVE_DELAY)

    def adopt(self, rooms: Iterable[ChatRoom]) -> None:
        """Start tracking rooms never seen: their history is not ours to replay."""
        changed = False
        for room in rooms:
            if room.uuid not in self.last_seen:
                self.last_seen[room.uuid] = room.last_message_id or 0
                changed = True
        if changed:
            self._store.async_delay_save(self._data, SAVE_DELAY)

    async def async_missed(
        self, api: CircleMemberApi, rooms: Iterable[ChatRoom], max_age: timedelta
    ) -> list[ChatMessage]:
        """Messages newer than the last seen, per changed room, bounded; oldest first."""
        oldest = datetime.now(UTC) - max_age
        missed: list[ChatMessage] = []
        for room in rooms:
            seen = self.last_seen.get(room.uuid)
            if (
                seen is None
                or room.last_message_id is None
                or room.last_message_id <= seen
            ):
                continue
            try:
                # The latest window: when more were missed, the newest matter most.
                page = await api.async_get_messages(
                    room.uuid, previous=MAX_PER_ROOM - 1, following=0
                )
            except CircleError as err:
                LOGGER.warning("Could not fetch missed messages of a room: %s", err)
                continue
            newer = [
                m for m in page.messages if m.id > seen and m.parent_message_id is None
            ]
            fresh = [m for m in newer if m.sent_at is None or m.sent_at >= oldest]
            more = page.has_previous_page and all(m.id > seen for m in page.messages)
            if more or len(fresh) < len(newer):
                LOGGER.info(
                    "Skipped %s%s missed message(s): older than %s or beyond %s per room",
                    len(newer) - len(fresh),
                    " and more" if more else "",
                    max_age,
                    MAX_PER_ROOM,
                )
            missed.extend(m for m in fresh if self.is_new(m))
            if newer:
                # Skipped ones count as seen too: never replay them later.
                self.last_seen[room.uuid] = max(
                    room.last_message_id, *(m.id for m in newer)
                )
                self._store.async_delay_save(self._data, SAVE_DELAY)
        missed.sort(key=lambda m: (m.sent_at or oldest, m.id))
        return missed
