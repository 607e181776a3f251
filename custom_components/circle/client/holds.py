"""The ordering buffer: live messages wait for their room's read-back, within bounds.

After a gap, a room's missed messages are read back over REST and handed over before the
live ones that came meanwhile, so that each room's messages keep their order. Live messages
wait for that read-back, but never without bound:

- a room's hold starts with its first held message and ends at `HOLD_MAX_SECONDS` later;
  retries and reconnects never move that deadline;
- a room holds at most `HOLD_MAX_MESSAGES` messages, all rooms together `HOLD_MAX_TOTAL`.

Past a bound the room's held messages go out in order of arrival, the log says so once per
episode, and the room's live messages pass straight on until its read-back has run (the
episode ends). Order is then lost for that room, nothing else: the watermark stays at the
gap, so the missed messages still follow once Circle's REST API answers again. Rooms past a
bound are remembered one by one up to `EXPIRED_ROOMS_MAX`; beyond (a flood of room uuids),
every hold goes out and every room passes until the episode ends.
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
# Rooms remembered as past a bound; beyond, one state: every room passes.
EXPIRED_ROOMS_MAX: Final = 256

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
        "_warned",
        "all_expired",
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
        # In order of `since` (insertion order): the first hold is the oldest and ends first.
        self.holds: dict[str, RoomHold] = {}
        self.expired: set[str] = (
            set()
        )  # past a bound this episode: pass until read back
        self.all_expired = False  # too many rooms past a bound: every room passes
        self._warned = False  # the log said so this episode
        self._seq = 0
        self._total = 0

    @property
    def held(self) -> int:
        """How many messages are held."""
        return self._total

    def wants(self, room: str) -> bool:
        """Whether a live message of this room must wait."""
        if self.all_expired or room in self.expired:
            return False
        return self.all_rooms or room in self.waiting

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
            oldest = next(iter(self.holds))
            return self._expire([oldest], f"{self.max_total} messages in all")
        return []

    def due(self, now: float) -> list[Held]:
        """Release every hold whose deadline has come (the first ones: oldest first)."""
        rooms: list[str] = []
        for room, hold in self.holds.items():
            if hold.deadline > now:
                break
            rooms.append(room)
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
        if self.all_expired:
            # Which of the kept rooms were past a bound is not known: all of them pass.
            self.expired = kept
        else:
            self.expired &= kept
        self.all_expired = False
        self._warned = False
        return items

    def new_gap(self) -> None:
        """Start a new episode: a new gap's rooms wait again (within the bounds)."""
        self.expired.clear()
        self.all_expired = False
        self._warned = False

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
        self.new_gap()
        return items

    def next_deadline(self) -> float | None:
        """When the first hold ends."""
        first = next(iter(self.holds.values()), None)
        return None if first is None else first.deadline

    def oldest(self) -> float | None:
        """When the oldest hold began."""
        first = next(iter(self.holds.values()), None)
        return None if first is None else first.since

    def _expire(self, rooms: list[str], bound: str) -> list[Held]:
        items: list[Held] = []
        if len(self.expired) + len(rooms) > EXPIRED_ROOMS_MAX:
            # A flood of rooms: one state for all of them instead of an entry each.
            rooms = list(self.holds)
            bound = f"{bound} ({EXPIRED_ROOMS_MAX} rooms past a bound)"
            self.all_expired = True
            self.expired.clear()
        for room in rooms:
            hold = self.holds.pop(room)
            self._total -= len(hold.items)
            items.extend(hold.items)
            if not self.all_expired:
                self.expired.add(room)
        items.sort(key=lambda held: held.seq)
        if self._warned:  # said once this episode
            _LOGGER.debug(
                "Released %s held message(s) of %s room(s) past a bound (%s)",
                len(items),
                len(rooms),
                bound,
            )
            return items
        self._warned = True
        _LOGGER.warning(
            "Circle's messages of %s room(s) waited %s for the read-back of what was "
            "missed; handed over now in order of arrival, the missed ones follow once "
            "Circle's API answers again (said once until the read-back runs)",
            len(rooms),
            bound,
        )
        return items
