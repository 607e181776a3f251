"""The delivery core: every chat message once and in order, counts equal to Circle's.

Sans-IO: inputs are method calls that carry the current (monotonic) time, outputs pile up in
`outbox` for a driver to carry out (REST reads to start, messages to hand over, state to
show, the ledger to save). No sockets, no tasks, no clock of its own, so every order of events
can be tried in a test, with a fake clock.

The promise, and how it is kept:
- A message is handed over at most once: ids handed over recently are remembered, and the
  ledger remembers, per room, the highest id up to which everything was handed over (the
  watermark) plus the ids above it that were handed over already.
- The watermark moves only in the same step that hands the messages up to it over; a resync
  that is abandoned (drop, late confirmation, stop) or fails leaves it where it was.
- After each (re)connect, once every subscription was answered, the counts are read again
  and each room whose last message is newer than its watermark is read back; live messages
  wait (see `holds.py` for the bounds) so that each room's messages are handed over in id
  order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
import logging
from typing import Any, Final

from .holds import (
    HOLD_MAX_MESSAGES,
    HOLD_MAX_SECONDS,
    REST_UNAVAILABLE,
    WAITING_FOR_BACKFILL,
    Held,
    HoldBuffer,
    room_key,
)
from .ledger import Ledger as Ledger  # noqa: PLC0414 (re-exported)
from .models import (
    CableEvent,
    ChatMessage,
    ChatRoom,
    ChatRoomEvent,
    MessageEvent,
    NewNotificationEvent,
    NotificationCountEvent,
    parse_datetime,
)
from .phases import (
    IllegalTransitionError as IllegalTransitionError,  # noqa: PLC0414 (re-exported)
    Input,
    Phase as Phase,  # noqa: PLC0414 (re-exported)
    next_phase,
)

_LOGGER = logging.getLogger(__name__)

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


def _cutoff(
    snapshot: Snapshot,
    results: Mapping[str, list[ChatMessage] | None],
    window: timedelta | None,
) -> datetime | None:
    """Return the oldest send time still fetched (the window counts from Circle's newest)."""
    stamps = [m.sent_at for page in results.values() if page for m in page if m.sent_at]
    stamps.extend(
        stamp for room in snapshot.rooms if (stamp := _last_sent(room)) is not None
    )
    return max(stamps) - (window or timedelta(0)) if stamps else None


def _last_sent(room: ChatRoom) -> datetime | None:
    """When the room's last message was sent, as the room list says."""
    last = room.raw.get("last_message")
    if not isinstance(last, Mapping):
        return None
    return parse_datetime(last.get("sent_at") or last.get("created_at"))


# --- the core -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Resync:
    """One attempt at reading the truth back after a (re)connect."""

    snapshot_id: int
    verify: bool = False  # counts only: no backfill, no phase change
    rereads: int = 0
    pushed: bool = False
    snapshot: Snapshot | None = None
    pages: dict[int, str] = field(default_factory=dict)  # request id -> room uuid
    results: dict[str, list[ChatMessage] | None] = field(default_factory=dict)
    error: str | None = None


class DeliveryCore:
    """The state machine of one member's delivery. Not thread-safe; one driver feeds it."""

    def __init__(
        self,
        member_id: int | None,
        config: DeliveryConfig | None = None,
        *,
        ledger: Ledger | None = None,
        ledger_lost: bool = False,
        state: UnreadState | None = None,
        rooms: Iterable[ChatRoom] = (),
        rooms_complete: bool = False,
    ) -> None:
        """Start disconnected, with the saved ledger (None on a first start)."""
        self.member_id = member_id
        self.config = config or DeliveryConfig()
        self.ledger = ledger if ledger is not None else self._lost_ledger(ledger_lost)
        self.outbox: list[Output] = []
        # Moved by `_move` only, along the table in `phases.py`.
        self.phase = Phase.DISCONNECTED
        self.state = state or UnreadState()
        self.rooms: dict[str, ChatRoom] = {room.uuid: room for room in rooms}
        self.rooms_complete = rooms_complete
        # Complete listings taken since the start (not the one given here): a room the
        # caller keeps something for is gone only once two complete listings lacked it.
        self.complete_listings = 0
        self.status = SyncStatus()
        self.resyncs = 0
        self.failures = 0
        self._counted: dict[str, int] = {
            room.uuid: room.last_message_id or 0 for room in self.rooms.values()
        }
        # Per room, the highest id Circle's REST API confirmed (listing or page): the
        # watermark never goes past it, whatever ids the cable names.
        self._confirmed: dict[str, int] = dict(self._counted)
        # Rooms no listing has: named by messages (at most UNLISTED_ROOMS_MAX), created
        # (at most ANNOUNCED_ROOMS_MAX).
        self._unlisted: dict[str, None] = {}
        self._announced: dict[str, None] = {}
        self._subs: dict[str, str] = {}  # identifier -> pending, confirmed, ...
        self._missing_once: set[str] = set()
        self._deleted: dict[str, None] = {}
        self._room_uuids = {
            r.id: uuid for uuid, r in self.rooms.items() if r.id is not None
        }
        self._resync_wanted = False
        self._synced_rooms: set[str] = set()
        self.holds = HoldBuffer(self.config.hold_max, self.config.hold_max_messages)
        self._recent: dict[Any, None] = {}
        self._resync: _Resync | None = None
        self._next_request = 0
        self._retry_delay = self.config.resync_initial
        self._grace_until: float | None = None
        self._retry_at: float | None = None
        self._retry_floor = float("-inf")  # not before this: Circle's Retry-After
        self._verify_at: float | None = None
        self._last_verify = float("-inf")
        if rooms_complete:
            self._admit_ledger_rooms()

    def _lost_ledger(self, lost: bool) -> Ledger:
        """Return a new ledger; one whose store is gone reads back the window, with a warning."""
        ledger = Ledger()
        if lost:
            # The store was initialised once and is gone now: do not take today's history
            # as already seen; read back what fits in the window instead.
            _LOGGER.warning(
                "The record of delivered Circle messages was lost; messages of the last "
                "%s are fetched again and may repeat",
                self.config.backfill_window,
            )
            ledger.initialized = True
        return ledger

    def _admit_ledger_rooms(self) -> None:
        """Rooms the saved ledger has and the listing lacks count as unlisted (bounded)."""
        for uuid in sorted(self.ledger.rooms() - set(self.rooms)):
            if not self._admit(uuid):
                self.ledger.forget(uuid)

    # --- inputs: connection -------------------------------------------------------------

    def connected(self, now: float, subscriptions: Iterable[str]) -> None:
        """Take a welcome: these subscriptions were (re)sent."""
        if self.phase in (Phase.AUTH_FAILED, Phase.STOPPED):
            return
        self._abandon_resync()
        self._verify_at = None  # the resync that follows reads everything
        self._subs = dict.fromkeys(subscriptions, "pending")
        self._synced_rooms.clear()
        self.holds.all_rooms = True
        self.holds.waiting = set()
        self.holds.new_gap()  # its rooms wait again (within the bounds)
        self._grace_until = None
        self._move(Input.WELCOME)
        self._set_status(
            connected=True, available=True, synced=False, reason=None, sync_error=None
        )
        self._maybe_resync(now)

    def disconnected(self, now: float, reason: str | None) -> None:
        """Take a lost socket: a gap starts here."""
        if self.phase in (Phase.AUTH_FAILED, Phase.STOPPED):
            return
        self._abandon_resync()
        self._synced_rooms.clear()
        self.holds.all_rooms = True
        self.holds.waiting = set()
        self._move(Input.SOCKET_LOST)
        if self._grace_until is None and self.status.available:
            self._grace_until = now + self.config.grace
        self._set_status(connected=False, synced=False, reason=reason)

    def subscription(self, now: float, identifier: str, state: str) -> None:
        """Take what the server said to a subscription: pending, confirmed, rejected, unanswered.

        The resync starts once none is pending (a rejected or unanswered one must not stop
        it); a confirmation that comes later starts it again, since nothing broadcast before
        a confirmation reached us.
        """
        if self.phase not in (Phase.SUBSCRIBING, Phase.SYNCING, Phase.LIVE):
            return
        was = self._subs.get(identifier)
        if was == state:
            return
        self._subs[identifier] = state
        if state == "confirmed" and self.phase is not Phase.SUBSCRIBING:
            self._resync_wanted = True
        if not self._all_answered():
            return
        if self.phase is Phase.SUBSCRIBING:
            self._begin_resync(now)
        elif self._resync_wanted:
            self._merge_resync(now)

    def auth_failed(self, reason: str) -> None:
        """Take a definite authentication verdict: stop everything until reconfigured."""
        if self.phase is Phase.STOPPED:
            return
        self._abandon_resync()
        # What was held came from Circle before the verdict: it goes out, in arrival order.
        for held in self.holds.drop():
            self._hand_over(held.name, held.message, backfilled=False)
        self._move(Input.AUTH_VERDICT)
        self._grace_until = self._retry_at = None
        self._verify_at = None
        self._set_status(
            connected=False,
            available=False,
            synced=False,
            reason=reason,
            auth_failed=True,
        )
        self._show_holds()

    def stop(self) -> None:
        """Stop for good; outputs after this are moot."""
        self._abandon_resync()
        self._move(Input.STOP)
        self.holds.drop()
        self._grace_until = self._retry_at = None
        self._verify_at = None

    # --- inputs: time ---------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When `tick` must be called next (None: nothing timed)."""
        deadlines = [
            t
            for t in (
                self.holds.next_deadline(),
                self._grace_until,
                self._retry_at,
                self._verify_at,
            )
            if t is not None
        ]
        return min(deadlines) if deadlines else None

    def tick(self, now: float) -> None:
        """Let timers fire."""
        if self._grace_until is not None and now >= self._grace_until:
            self._grace_until = None
            if not self.status.connected:
                self._set_status(available=False)
        released = self.holds.due(now)
        if released:
            # These wait no longer; the watermark stays at the gap until the backfill has
            # run, so nothing missed is skipped (it comes late).
            for held in released:
                self._hand_over(held.name, held.message, backfilled=False)
            if self._retry_at is not None:
                # The next hold gets its own last try.
                self._retry_at = self._last_try(now, self._retry_at)
            self._show_holds()
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            if self.phase is Phase.SYNCING and self._resync is None:
                self._move(Input.RETRY)
                self._start_resync()
        if self._verify_at is not None and now >= self._verify_at:
            self._verify_at = None
            if self.phase is Phase.LIVE and self._resync is None:
                self._last_verify = now
                self._resync = _Resync(self._request_id(), verify=True)
                self.outbox.append(FetchSnapshot(self._resync.snapshot_id))
            elif self.phase is Phase.SYNCING:
                self._want_verify(now)  # after the resync under way

    def verify_soon(self, now: float) -> None:
        """Take a request for fresh counts: read them back soon, within the spacing."""
        self._want_verify(now)

    def _want_verify(self, now: float) -> None:
        if self._verify_at is None:
            self._verify_at = max(
                now + self.config.verify_after,
                self._last_verify + self.config.verify_spacing,
            )

    # --- inputs: cable events -------------------------------------------------------------

    def event(self, event: CableEvent, now: float) -> None:
        """Take an event from the cable."""
        if self.phase in (Phase.AUTH_FAILED, Phase.STOPPED):
            return
        if self._resync is not None:
            self._resync.pushed = True
        kind = type(event)
        if kind is MessageEvent:
            assert isinstance(event, MessageEvent)
            if (message := event.message) is not None:
                if message.chat_room_uuid is None and event.room_id is not None:
                    # From a room's own channel, which may not name the room.
                    uuid = self._room_uuids.get(event.room_id)
                    if uuid is not None:
                        message = replace(message, chat_room_uuid=uuid)
                self._on_message(now, event.name, message)
        elif kind is NotificationCountEvent:
            assert isinstance(event, NotificationCountEvent)
            if event.count != self.state.new_notifications_count:
                self._set_state(
                    replace(self.state, new_notifications_count=event.count)
                )
            self._want_verify(now)
        elif kind is NewNotificationEvent:
            assert isinstance(event, NewNotificationEvent)
            notification_id = event.notification.id
            if notification_id is None or self._remember(("n", notification_id)):
                self.outbox.append(DeliverNotification(event))
        elif kind is ChatRoomEvent:
            assert isinstance(event, ChatRoomEvent)
            self._on_room_event(event)
            if event.name == "chatRoomRead":
                self._want_verify(now)

    def rooms_read(self, uuids: Iterable[str]) -> None:
        """Take rooms the member marked read from here (Circle's own event may follow)."""
        state = self.state
        read = set(uuids)
        self._set_state(
            replace(
                state,
                unread_rooms=state.unread_rooms - read,
                unread_counts={
                    uuid: 0 if uuid in read else count
                    for uuid, count in state.unread_counts.items()
                },
            )
        )

    def notifications_read(self) -> None:
        """Take a badge reset made from here."""
        self._set_state(replace(self.state, new_notifications_count=0))

    # --- inputs: REST answers -------------------------------------------------------------

    def snapshot_read(self, now: float, request_id: int, snapshot: Snapshot) -> None:
        """Take the answer to a FetchSnapshot."""
        resync = self._resync
        if resync is None or resync.snapshot_id != request_id:
            return  # moot: an older resync
        if resync.pushed and resync.rereads < self.config.max_rereads:
            # A push landed while the answers were on their way; they may be older than it.
            resync.rereads += 1
            resync.pushed = False
            resync.snapshot_id = self._request_id()
            self.outbox.append(FetchSnapshot(resync.snapshot_id))
            return
        if resync.pushed:
            self._want_verify(now)  # taken as it is, but read again a little later
        if resync.verify:
            self._resync = None
            self._apply_snapshot(snapshot)
            return
        resync.snapshot = snapshot
        self._apply_snapshot(snapshot)
        window = self.config.backfill_window
        backfill = window is not None and window > timedelta(0)
        for room in snapshot.rooms:
            mark = self.ledger.watermarks.get(room.uuid)
            last = room.last_message_id
            if mark is None and not self.ledger.initialized:
                # First start: the history is not news.
                self.ledger.advance(room.uuid, last or 0)
                self._synced_rooms.add(room.uuid)
            elif last is None or (mark is not None and last <= mark):
                self._synced_rooms.add(room.uuid)
            elif not backfill:
                self.ledger.advance(room.uuid, last)
                self._synced_rooms.add(room.uuid)
            else:
                page_id = self._request_id()
                resync.pages[page_id] = room.uuid
                self.outbox.append(
                    FetchMessages(page_id, room.uuid, self.config.per_room)
                )
        if not self.ledger.initialized:
            self.ledger.initialized = True
        self.outbox.append(LedgerChanged())
        self._maybe_finish(now)

    def messages_read(
        self, now: float, request_id: int, messages: list[ChatMessage]
    ) -> None:
        """Take the answer to a FetchMessages (in any order)."""
        resync = self._resync
        if resync is None or request_id not in resync.pages:
            return
        resync.results[resync.pages.pop(request_id)] = messages
        self._maybe_finish(now)

    def read_failed(
        self,
        now: float,
        request_id: int,
        kind: FailureKind,
        reason: str,
        retry_after: float | None = None,
    ) -> None:
        """Take the failure of a FetchSnapshot or FetchMessages."""
        resync = self._resync
        if resync is None:
            return
        if request_id in resync.pages and kind is FailureKind.TEMPORARY:
            # One room could not be read back: the others go ahead, that one waits for
            # the next resync with its watermark where it was.
            resync.results[resync.pages.pop(request_id)] = None
            resync.error = reason
            self._maybe_finish(now)
            return
        if request_id != resync.snapshot_id and request_id not in resync.pages:
            return
        self._abandon_resync()
        if kind is FailureKind.AUTH:
            self.auth_failed(reason)
        elif resync.verify:
            self._want_verify(now)  # no hurry: the counts shown are probably right
        else:
            self._schedule_retry(now, reason, retry_after)

    # --- internals: resync ----------------------------------------------------------------

    def _move(self, event: Input) -> None:
        """Take the one transition the table has for `event` (IllegalTransitionError if none)."""
        self.phase = next_phase(self.phase, event)

    def _request_id(self) -> int:
        self._next_request += 1
        return self._next_request

    def _all_answered(self) -> bool:
        return all(state != "pending" for state in self._subs.values())

    def _maybe_resync(self, now: float) -> None:
        if self.phase is Phase.SUBSCRIBING and self._all_answered():
            self._begin_resync(now)

    def _merge_resync(self, now: float) -> None:
        """Take a late confirmation (or a history fallback): one read-back more, merged.

        A read-back under way is not given up (a flapping epoch would starve it): one more
        is queued behind it. A retry already timed reads everything anyway. Never sooner
        than Circle's Retry-After.
        """
        resync = self._resync
        if resync is not None and not resync.verify:
            return  # queued: `_maybe_finish` starts it
        if resync is None and self._retry_at is not None:
            return  # the timed retry reads everything back
        self._begin_resync(now, wait_floor=True)

    def _begin_resync(self, now: float, *, wait_floor: bool = False) -> None:
        self._abandon_resync()
        # Whatever was broadcast before this answer is read back: live messages wait for
        # it (within the bounds of `holds`), so that each room's messages keep their order.
        self.holds.all_rooms = True
        self._retry_delay = self.config.resync_initial
        self._move(Input.ALL_ANSWERED)
        if wait_floor and now < self._retry_floor:
            self._retry_at = self._retry_floor  # Circle's Retry-After first
            self._show_holds()
            return
        self._start_resync()

    def _start_resync(self) -> None:
        self._resync_wanted = False
        self.resyncs += 1
        self._resync = _Resync(self._request_id())
        self.outbox.append(FetchSnapshot(self._resync.snapshot_id))

    def _abandon_resync(self) -> None:
        if self._resync is not None:
            self._resync = None
            self.outbox.append(CancelFetches())
        self._retry_at = None

    def _schedule_retry(
        self, now: float, reason: str, retry_after: float | None
    ) -> None:
        """Fast at first (1 s, doubling, at most resync_max), never before Retry-After.

        Once more just before the first hold ends, so that a REST API back by then keeps
        the order.
        """
        self._move(Input.READ_FAILED)
        self.failures += 1
        at = now + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self.config.resync_max)
        self._retry_floor = now
        if retry_after is not None:
            self._retry_floor = now + min(max(retry_after, 1.0), 3600.0)
        self._retry_at = self._last_try(now, at)
        _LOGGER.debug(
            "Resync failed (%s); retrying in %.1f s", reason, self._retry_at - now
        )
        self._set_status(synced=False, sync_error=reason)
        self._show_holds()

    def _last_try(self, now: float, at: float) -> float:
        """Return `at`, or sooner: just before the next hold ends (never before the floor)."""
        for hold in self.holds.holds.values():  # in order of their deadlines
            deadline = hold.deadline
            if deadline - LAST_TRY_MARGIN > now:
                at = min(at, deadline - LAST_TRY_MARGIN)
                break
        return max(at, self._retry_floor)

    def _plan_room(
        self,
        uuid: str,
        page: list[ChatMessage],
        cutoff: datetime | None,
        last_id: int | None,
        batch: list[tuple[int, int, str, ChatMessage, bool]],
    ) -> int:
        """Add a room's missed messages to `batch`; return the id everything up to was read."""
        mark = self.ledger.watermarks.get(uuid, 0)
        top = [
            m
            for m in page
            if m.parent_message_id is None and m.chat_room_uuid in (None, uuid)
        ]
        skipped = 0
        for message in sorted((m for m in top if m.id > mark), key=lambda m: m.id):
            if cutoff and message.sent_at and message.sent_at < cutoff:
                skipped += 1
                continue
            filed = message
            if not message.chat_room_uuid:
                filed = replace(message, chat_room_uuid=uuid)
            batch.append((message.id, 0, NEW_MESSAGE, filed, True))
        if skipped:
            _LOGGER.info(
                "Skipped %s missed message(s) older than %s",
                skipped,
                self.config.backfill_window,
            )
        if (
            len(page) >= self.config.per_room
            and top
            and min(m.id for m in top) > mark > 0
        ):
            _LOGGER.info(
                "More than %s messages were missed in a room; the oldest are skipped",
                self.config.per_room,
            )
        # Everything up to here was read: handed over now, skipped, or gone.
        return max(mark, last_id or 0, *(m.id for m in top))

    def _maybe_finish(self, now: float) -> None:
        """Once every room was read back: hand the missed and the held messages over."""
        resync = self._resync
        if resync is None or resync.snapshot is None or resync.pages:
            return
        self._resync = None
        last_ids = {room.uuid: room.last_message_id for room in resync.snapshot.rooms}
        cutoff = _cutoff(resync.snapshot, resync.results, self.config.backfill_window)
        batch: list[tuple[int, int, str, ChatMessage, bool]] = []
        marks: list[tuple[str, int]] = []
        for uuid, page in resync.results.items():
            if page is None:
                continue
            read = self._plan_room(uuid, page, cutoff, last_ids.get(uuid), batch)
            self._confirmed[uuid] = max(self._confirmed.get(uuid, 0), read)
            marks.append((uuid, read))
            self._synced_rooms.add(uuid)
        failed = {uuid for uuid, page in resync.results.items() if page is None}
        queued = self._resync_wanted  # a confirmation came while this one ran
        self._move(Input.READ_BACK)
        # Live messages of a room not read back yet keep waiting (within the hold's bounds,
        # which the retries do not move).
        self.holds.all_rooms = queued
        self.holds.waiting = failed
        # With one queued, what this one read goes out with the held messages up to it;
        # later ones wait for the queued read-back (it may find older ones missed).
        self._release(batch, marks, upto=dict(marks) if queued else None)
        if failed:
            # The rooms that could not be read back are tried again, the others are live.
            self._move(Input.ROOMS_FAILED)
            self._schedule_retry(now, resync.error or "backfill", None)
        elif queued:
            self._set_status(sync_error=None)
            self._begin_resync(now, wait_floor=True)
        else:
            self._retry_delay = self.config.resync_initial
            self._set_status(synced=True, sync_error=None)
            self._show_holds()

    # --- internals: messages --------------------------------------------------------------

    def _remember(self, key: Any) -> bool:
        """Remember `key`; False when it was known already."""
        recent = self._recent
        if key in recent:
            return False
        recent[key] = None
        if len(recent) > RECENT_KEYS:
            self._recent = dict.fromkeys(list(recent)[len(recent) // 2 :])
        return True

    def _on_message(self, now: float, name: str, message: ChatMessage) -> None:
        if name == NEW_MESSAGE:
            self._count(message)
            if message.id in self._recent:
                return
            uuid = message.chat_room_uuid
            if (
                uuid
                and message.parent_message_id is None
                and self.ledger.handed_over(uuid, message.id)
            ):
                return
        elif not self._remember((name, message.id, message.edited_at)):
            return
        if self.holds.wants(room_key(message)):
            if name == NEW_MESSAGE:
                self._recent[message.id] = None  # held: a second copy is a duplicate
            released = self.holds.hold(now, name, message)
            for held in released:
                self._hand_over(held.name, held.message, backfilled=False)
            self._show_holds()
            return
        self._hand_over(name, message, backfilled=False)

    def _hand_over(self, name: str, message: ChatMessage, *, backfilled: bool) -> None:
        """Deliver, then move the ledger: a message handed over is never handed again."""
        self.outbox.append(Deliver(name, message, backfilled))
        if name != NEW_MESSAGE:
            return
        self._remember(message.id)
        uuid = message.chat_room_uuid
        if not uuid or message.parent_message_id is not None:
            return
        if uuid not in self.rooms and uuid not in self._unlisted:
            return  # dropped as one unlisted room too many: nothing kept for it
        if (
            self.phase is Phase.LIVE
            and uuid in self._synced_rooms
            and message.id <= self._confirmed.get(uuid, 0)
        ):
            self.ledger.advance(uuid, message.id)
        else:
            # Beyond what REST confirmed: remembered by id, folded into the watermark once
            # a listing confirms it.
            self.ledger.record_above(uuid, message.id)
        self.outbox.append(LedgerChanged())

    def _release(
        self,
        batch: list[tuple[int, int, str, ChatMessage, bool]],
        marks: Iterable[tuple[str, int]] = (),
        upto: Mapping[str, int] | None = None,
    ) -> None:
        """Hand over the backfilled and the held messages, in id order (then arrival).

        `upto`: only the held messages up to the id each room was read back to (a room
        not read: its watermark); the episode goes on.
        """
        held: list[Held]
        if upto is None:
            held = self.holds.take(self.holds.waiting)
        else:
            marks_now = self.ledger.watermarks
            held = self.holds.take_upto(
                lambda room: upto.get(room, marks_now.get(room, 0)), self.holds.waiting
            )
        held_ids = {h.message.id for h in held if h.name == NEW_MESSAGE}
        items = [item for item in batch if item[0] not in held_ids]
        items.extend((h.message.id, h.seq, h.name, h.message, False) for h in held)
        items.sort(key=lambda item: (item[0], item[1]))
        ledger = self.ledger
        for message_id, _seq, name, message, backfilled in items:
            if (
                backfilled
                and message.chat_room_uuid
                and ledger.handed_over(message.chat_room_uuid, message_id)
            ) or (backfilled and message_id in self._recent):
                continue
            self._hand_over(name, message, backfilled=backfilled)
        advanced = False
        for uuid, mark in marks:
            ledger.advance(uuid, mark)
            advanced = True
        if advanced:
            self.outbox.append(LedgerChanged())

    # --- internals: unread state ----------------------------------------------------------

    def _is_own(self, message: ChatMessage) -> bool:
        sender = message.sender
        return (
            self.member_id is not None
            and sender is not None
            and sender.community_member_id == self.member_id
        )

    def _count(self, message: ChatMessage) -> None:
        uuid = message.chat_room_uuid
        if not uuid or uuid in self._deleted:
            return
        if not self._admit(uuid):
            return
        state = self.state
        if self._is_own(message):
            # Writing in a room means having read it.
            self._counted[uuid] = max(self._counted.get(uuid, 0), message.id)
            if uuid in state.unread_rooms or state.unread_counts.get(uuid):
                counts = dict(state.unread_counts)
                if uuid in counts:
                    counts[uuid] = 0
                self._set_state(
                    replace(
                        state,
                        unread_rooms=state.unread_rooms - {uuid},
                        unread_counts=counts,
                    )
                )
            return
        if message.parent_message_id is not None:
            return  # replies do not make a room unread
        if message.id <= self._counted.get(uuid, 0):
            return  # already in the counts read over REST
        self._counted[uuid] = message.id
        counts = dict(state.unread_counts)
        if uuid in self.rooms:
            counts[uuid] = counts.get(uuid, 0) + 1
        self._set_state(
            replace(
                state, unread_rooms=state.unread_rooms | {uuid}, unread_counts=counts
            )
        )

    def _on_room_event(self, event: ChatRoomEvent) -> None:
        uuid = event.chat_room_uuid or (event.room.uuid if event.room else None)
        if uuid is None:
            return
        state = self.state
        unread, names = set(state.unread_rooms), dict(state.room_names)
        counts = dict(state.unread_counts)
        name = event.name
        if name in ("chatRoomRead", "chatRoomDeleted"):
            unread.discard(uuid)
            if uuid in counts:
                counts[uuid] = 0
            if name == "chatRoomDeleted":
                self._deleted[uuid] = None
                if len(self._deleted) > 256:
                    del self._deleted[next(iter(self._deleted))]
                names.pop(uuid, None)
                counts.pop(uuid, None)
                self.rooms.pop(uuid, None)
                self._counted.pop(uuid, None)
                self._synced_rooms.discard(uuid)
                self.ledger.forget(uuid)
                self.outbox.append(LedgerChanged())
        elif (room := event.room) is not None:
            if name == "chatRoomCreated" and uuid not in self.rooms:
                if len(self._announced) >= ANNOUNCED_ROOMS_MAX:
                    return  # until listings free a place
                self._announced[uuid] = None
            if room.name and (uuid in self.rooms or name == "chatRoomCreated"):
                names[uuid] = room.name
            if name == "chatRoomCreated" and uuid not in self.rooms:
                self.rooms[uuid] = room
                if room.id is not None:
                    self._room_uuids[room.id] = uuid
                self._counted[uuid] = max(
                    self._counted.get(uuid, 0), room.last_message_id or 0
                )
                counts[uuid] = room.unread_messages_count
                if room.unread_messages_count > 0:
                    unread.add(uuid)
                if self.phase is Phase.LIVE and uuid not in self.ledger.watermarks:
                    # Created while we listen: every message of it comes live. Its last
                    # id is the cable's word: at most the newest id REST confirmed.
                    newest = max(self._confirmed.values(), default=0)
                    self.ledger.advance(uuid, min(room.last_message_id or 0, newest))
                    self._synced_rooms.add(uuid)
                    self.outbox.append(LedgerChanged())
            elif uuid in self.rooms and room.name:
                self.rooms[uuid] = replace(self.rooms[uuid], name=room.name)
        self._set_state(
            replace(
                state,
                unread_rooms=frozenset(unread),
                room_names=names,
                unread_counts=counts,
            )
        )

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        self.rooms_complete = snapshot.complete
        self.complete_listings += snapshot.complete
        listed = {room.uuid: room for room in snapshot.rooms}
        rooms = dict(self.rooms)
        if snapshot.complete:
            # A room is gone when two complete listings in a row lack it: one listing can
            # miss a room that moved between its pages. Rooms only the ledger or a message
            # named go the same way.
            known = set(self.rooms) | self.ledger.rooms() | set(self._unlisted)
            missing = known - set(listed)
            for uuid in missing & self._missing_once:
                rooms.pop(uuid, None)
                self._forget_room(uuid)
            self._missing_once = missing - self._missing_once
        for uuid in listed:
            self._unlisted.pop(uuid, None)
            self._announced.pop(uuid, None)
        rooms.update(listed)
        self.rooms = rooms
        self._room_uuids = {r.id: uuid for uuid, r in rooms.items() if r.id is not None}
        names = {
            uuid: room.name or self.state.room_names.get(uuid) or ""
            for uuid, room in rooms.items()
        }
        counts = {
            uuid: (
                room.unread_messages_count
                if uuid in listed
                else self.state.unread_counts.get(uuid, 0)
            )
            for uuid, room in rooms.items()
        }
        for uuid, room in listed.items():
            # Live messages up to this id are already in the counts just read.
            last = self._counted[uuid] = room.last_message_id or 0
            self._confirm(uuid, last)
        self._set_state(
            UnreadState(
                new_notifications_count=snapshot.new_notifications_count,
                unread_rooms=frozenset(snapshot.unread_room_uuids),
                room_names=names,
                unread_counts=counts,
            )
        )

    def _confirm(self, uuid: str, last: int) -> None:
        """Take a room's latest id from a listing: it bounds and moves the watermark."""
        ledger = self.ledger
        # Above both the listing and what REST confirmed before: an id nobody confirmed
        # (an older version's ledger, a hostile cable) that would silence the room.
        changed = ledger.clamp(uuid, max(last, self._confirmed.get(uuid, 0)))
        self._confirmed[uuid] = max(self._confirmed.get(uuid, 0), last)
        if uuid in self._synced_rooms and uuid not in self.holds.waiting:
            changed = ledger.fold(uuid, self._confirmed[uuid]) or changed
        if changed:
            self.outbox.append(LedgerChanged())

    def _admit(self, uuid: str) -> bool:
        """Whether state is kept for a room: listed, announced, or one of few unlisted.

        Beyond the cap new rooms are ignored rather than old ones dropped, so that a flood
        cannot make the core forget what it handed over in a real room.
        """
        if uuid in self.rooms or uuid in self._unlisted:
            return True
        if len(self._unlisted) >= UNLISTED_ROOMS_MAX:
            return False
        self._unlisted[uuid] = None
        return True

    def _forget_room(self, uuid: str) -> None:
        """Drop what is kept for a room that is gone (or one unlisted room too many)."""
        self._unlisted.pop(uuid, None)
        self._announced.pop(uuid, None)
        self._counted.pop(uuid, None)
        self._confirmed.pop(uuid, None)
        self._synced_rooms.discard(uuid)
        if uuid in self.ledger.rooms():
            self.ledger.forget(uuid)
            self.outbox.append(LedgerChanged())

    # --- internals: outputs ---------------------------------------------------------------

    def _set_state(self, state: UnreadState) -> None:
        if state != self.state:
            self.state = state
            self.outbox.append(StateChanged(state))

    def _show_holds(self) -> None:
        """Put what is held, and why, into the status."""
        holds = self.holds
        reason = None
        if holds.holds:
            failing = self._retry_at is not None or self.status.sync_error is not None
            reason = REST_UNAVAILABLE if failing else WAITING_FOR_BACKFILL
        self._set_status(
            hold_reason=reason,
            held_rooms=len(holds.holds),
            held_messages=holds.held,
            held_since=holds.oldest(),
        )

    def _set_status(self, **changes: Any) -> None:
        status = replace(self.status, **changes)
        if status != self.status:
            self.status = status
            self.outbox.append(StatusChanged(status))

    def drain(self) -> list[Output]:
        """Take the outputs so far."""
        out, self.outbox = self.outbox, []
        return out
