"""The ordering buffer: live messages wait for their room's read-back, within bounds.

After a gap, a room's missed messages are read back over REST and handed over before the
live ones that came meanwhile, so that each room's messages keep their order. Live messages
wait for that read-back, but never without bound:

- a room's hold starts with its first held message and ends at `HOLD_MAX_SECONDS` later;
  retries and reconnects never move that deadline;
- a room holds at most `HOLD_MAX_MESSAGES` messages, all rooms together `HOLD_MAX_TOTAL`.

Past a bound the room's held messages go out in order of arrival, the log says so once, and
the room's live messages pass straight on until its read-back has run (the episode ends).
Order is then lost for that room, nothing else: the watermark stays at the gap, so the
missed messages still follow once Circle's REST API answers again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
import logging
from typing import Final

from .models import ChatMessage

_LOGGER = logging.getLogger(__name__)

# Two minutes covers a bad minute of Circle's REST API plus a read-back retry (at most 30 s
# apart); 500 messages is more than a busy room sees in that time, and a few MiB at most.
HOLD_MAX_SECONDS: Final = 125.0  # the last read-back try (5 s before) is at 120 s
HOLD_MAX_MESSAGES: Final = 500
HOLD_MAX_TOTAL: Final = 2000

WAITING_FOR_BACKFILL: Final = "waiting_for_backfill"
REST_UNAVAILABLE: Final = "rest_unavailable"


@dataclass(slots=True)
class Held:
    """One held message: `seq` is its place in the order of arrival."""

    seq: int
    name: str
    message: ChatMessage


@dataclass(slots=True)
class RoomHold:
    """The messages of one room waiting for its read-back, and when they go out anyway."""

    since: float
    deadline: float
    items: list[Held] = field(default_factory=list)


def room_key(message: ChatMessage) -> str:
    """Return the room a message is held under ("" when it names none)."""
    return message.chat_room_uuid or ""


class HoldBuffer:
    """Which rooms wait, what they hold, and when each hold ends."""

    __slots__ = (
        "_seq",
        "_total",
        "all_rooms",
        "expired",
        "holds",
        "max_messages",
        "max_seconds",
        "max_total",
        "waiting",
    )

    def __init__(
        self,
        max_seconds: float = HOLD_MAX_SECONDS,
        max_messages: int = HOLD_MAX_MESSAGES,
        max_total: int = HOLD_MAX_TOTAL,
    ) -> None:
        """Start with every room waiting: nothing was read back yet."""
        self.max_seconds = max_seconds
        self.max_messages = max_messages
        self.max_total = max_total
        self.all_rooms = True  # every room waits (no read-back of this connection yet)
        self.waiting: set[str] = (
            set()
        )  # rooms whose read-back failed: wait for the retry
        self.holds: dict[str, RoomHold] = {}
        self.expired: set[str] = (
            set()
        )  # past a bound this episode: pass until read back
        self._seq = 0
        self._total = 0

    @property
    def held(self) -> int:
        """How many messages are held."""
        return self._total

    def wants(self, room: str) -> bool:
        """Whether a live message of this room must wait."""
        return room not in self.expired and (self.all_rooms or room in self.waiting)

    def hold(self, now: float, name: str, message: ChatMessage) -> list[Held]:
        """Hold a message; returns what a bound released (in order of arrival)."""
        room = room_key(message)
        hold = self.holds.get(room)
        if hold is None:
            hold = self.holds[room] = RoomHold(now, now + self.max_seconds)
        self._seq += 1
        hold.items.append(Held(self._seq, name, message))
        self._total += 1
        if len(hold.items) >= self.max_messages:
            return self._expire([room], f"{self.max_messages} messages")
        if self._total > self.max_total:
            oldest = min(self.holds, key=lambda key: self.holds[key].since)
            return self._expire([oldest], f"{self.max_total} messages in all")
        return []

    def due(self, now: float) -> list[Held]:
        """Release every hold whose deadline has come."""
        rooms = [room for room, hold in self.holds.items() if hold.deadline <= now]
        if not rooms:
            return []
        return self._expire(rooms, f"{self.max_seconds:.0f} s")

    def take(self, keep: Iterable[str] = ()) -> list[Held]:
        """Take the holds of every room except `keep` (their read-back ran); episode over."""
        kept = set(keep)
        items: list[Held] = []
        for room in [room for room in self.holds if room not in kept]:
            hold = self.holds.pop(room)
            self._total -= len(hold.items)
            items.extend(hold.items)
        self.expired &= kept
        return items

    def take_upto(self, limit: Callable[[str], int], keep: Iterable[str]) -> list[Held]:
        """Take, from every room except `keep`, the messages up to `limit(room)`.

        For a read-back that ends while another is queued: the episode goes on.
        """
        kept = set(keep)
        items: list[Held] = []
        for room, hold in list(self.holds.items()):
            if room in kept:
                continue
            top = limit(room)
            out = [held for held in hold.items if held.message.id <= top]
            if not out:
                continue
            hold.items = [held for held in hold.items if held.message.id > top]
            self._total -= len(out)
            items.extend(out)
            if not hold.items:
                del self.holds[room]
        return items

    def drop(self) -> list[Held]:
        """Give every hold up (the core stops); returns them in order of arrival."""
        items = sorted(self.take(), key=lambda held: held.seq)
        self.expired.clear()
        return items

    def next_deadline(self) -> float | None:
        """When the first hold ends."""
        return min((hold.deadline for hold in self.holds.values()), default=None)

    def oldest(self) -> float | None:
        """When the oldest hold began."""
        return min((hold.since for hold in self.holds.values()), default=None)

    def _expire(self, rooms: list[str], bound: str) -> list[Held]:
        items: list[Held] = []
        for room in rooms:
            hold = self.holds.pop(room)
            self._total -= len(hold.items)
            items.extend(hold.items)
            self.expired.add(room)
        items.sort(key=lambda held: held.seq)
        _LOGGER.warning(
            "Circle's messages of %s room(s) waited %s for the read-back of what was "
            "missed; handed over now in order of arrival, the missed ones follow once "
            "Circle's API answers again",
            len(rooms),
            bound,
        )
        return items
