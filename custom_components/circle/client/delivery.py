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

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
import logging
from typing import Any

from .delivery_io import (
    ANNOUNCED_ROOMS_MAX,
    LAST_TRY_MARGIN,
    NEW_MESSAGE,
    RECENT_KEYS,
    RESYNC_MAX_SECONDS,
    UNLISTED_ROOMS_MAX,
    CancelFetches,
    Deliver,
    DeliverNotification,
    DeliveryConfig,
    FailureKind,
    FetchMessages,
    FetchSnapshot,
    LedgerChanged,
    Output,
    Snapshot,
    StateChanged,
    StatusChanged,
    SyncStatus,
    UnreadState,
)
from .handover import Handover
from .holds import REST_UNAVAILABLE, WAITING_FOR_BACKFILL, HoldBuffer
from .ledger import Ledger
from .models import (
    CableEvent,
    ChatMessage,
    ChatRoom,
    ChatRoomEvent,
    MessageEvent,
    NewNotificationEvent,
    NotificationCountEvent,
)
from .phases import IllegalTransitionError, Input, Phase, next_phase
from .resync import ResyncPlanner
from .unread import UnreadBook

__all__ = [
    "ANNOUNCED_ROOMS_MAX",
    "LAST_TRY_MARGIN",
    "NEW_MESSAGE",
    "RECENT_KEYS",
    "RESYNC_MAX_SECONDS",
    "UNLISTED_ROOMS_MAX",
    "CancelFetches",
    "Deliver",
    "DeliverNotification",
    "DeliveryConfig",
    "DeliveryCore",
    "FailureKind",
    "FetchMessages",
    "FetchSnapshot",
    "IllegalTransitionError",
    "Ledger",
    "LedgerChanged",
    "Output",
    "Phase",
    "Snapshot",
    "StateChanged",
    "StatusChanged",
    "SyncStatus",
    "UnreadState",
]

_LOGGER = logging.getLogger(__name__)


def _lost_ledger(lost: bool, window: timedelta | None) -> Ledger:
    """Return a new ledger; one whose store is gone reads back the window, with a warning."""
    ledger = Ledger()
    if lost:
        # The store was initialised once and is gone now: do not take today's history
        # as already seen; read back what fits in the window instead.
        _LOGGER.warning(
            "The record of delivered Circle messages was lost; messages of the last "
            "%s are fetched again and may repeat",
            window,
        )
        ledger.initialized = True
    return ledger


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
        if ledger is None:
            ledger = _lost_ledger(ledger_lost, self.config.backfill_window)
        self.ledger = ledger
        self.outbox: list[Output] = []
        # Moved by `_move` only, along the table in `phases.py`.
        self.phase = Phase.DISCONNECTED
        self.state = state or UnreadState()
        self.status = SyncStatus()
        self.unread = UnreadBook(self, rooms, rooms_complete)
        self.planner = ResyncPlanner(self)
        self.synced_rooms: set[str] = set()
        self.holds = HoldBuffer(self.config.hold_max, self.config.hold_max_messages)
        self.handover = Handover(self)
        self._grace_until: float | None = None
        if rooms_complete:
            self.unread.admit_ledger_rooms()

    # --- what the parts keep, under the names the callers (and tests) read ---------------

    @property
    def rooms(self) -> dict[str, ChatRoom]:
        """The rooms known, by uuid."""
        return self.unread.rooms

    @property
    def rooms_complete(self) -> bool:
        """Whether the last listing was complete."""
        return self.unread.rooms_complete

    @property
    def complete_listings(self) -> int:
        """Complete listings taken since the start."""
        return self.unread.complete_listings

    @property
    def resyncs(self) -> int:
        """Read-backs started."""
        return self.planner.resyncs

    @property
    def failures(self) -> int:
        """Read-backs that failed."""
        return self.planner.failures

    # --- inputs: connection -------------------------------------------------------------

    def connected(self, now: float, subscriptions: Iterable[str]) -> None:
        """Take a welcome: these subscriptions were (re)sent."""
        if self.phase in (Phase.AUTH_FAILED, Phase.STOPPED):
            return
        self.planner.abandon()
        self.planner.connected(now, subscriptions)
        self.synced_rooms.clear()
        self.holds.all_rooms = True
        self.holds.waiting = set()
        self.holds.new_gap()  # its rooms wait again (within the bounds)
        self._grace_until = None
        self._move(Input.WELCOME)
        self.set_status(
            connected=True, available=True, synced=False, reason=None, sync_error=None
        )
        self.planner.maybe_begin(now)

    def disconnected(self, now: float, reason: str | None) -> None:
        """Take a lost socket: a gap starts here."""
        if self.phase in (Phase.AUTH_FAILED, Phase.STOPPED):
            return
        self.planner.abandon()
        self.synced_rooms.clear()
        self.holds.all_rooms = True
        self.holds.waiting = set()
        self._move(Input.SOCKET_LOST)
        if self._grace_until is None and self.status.available:
            self._grace_until = now + self.config.grace
        self.set_status(connected=False, synced=False, reason=reason)

    def subscription(self, now: float, identifier: str, state: str) -> None:
        """Take what the server said to a subscription: pending, confirmed, rejected, unanswered.

        The resync starts once none is pending (a rejected or unanswered one must not stop
        it); a confirmation that comes later starts it again, since nothing broadcast before
        a confirmation reached us.
        """
        if self.phase not in (Phase.SUBSCRIBING, Phase.SYNCING, Phase.LIVE):
            return
        self.planner.subscription(now, identifier, state)

    def auth_failed(self, reason: str) -> None:
        """Take a definite authentication verdict: stop everything until reconfigured."""
        if self.phase is Phase.STOPPED:
            return
        self.planner.abandon()
        # What was held came from Circle before the verdict: it goes out, in arrival order.
        for held in self.holds.drop():
            self.handover.hand_over(held.name, held.message, backfilled=False)
        self._move(Input.AUTH_VERDICT)
        self._grace_until = None
        self.planner.stop()
        self.set_status(
            connected=False,
            available=False,
            synced=False,
            reason=reason,
            auth_failed=True,
        )
        self.show_holds()

    def stop(self) -> None:
        """Stop for good; outputs after this are moot."""
        self.planner.abandon()
        self._move(Input.STOP)
        self.holds.drop()
        self._grace_until = None
        self.planner.stop()

    # --- inputs: time ---------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When `tick` must be called next (None: nothing timed)."""
        deadlines = [
            t
            for t in (
                self.holds.next_deadline(),
                self._grace_until,
                self.planner.retry_at,
                self.planner.verify_at,
            )
            if t is not None
        ]
        return min(deadlines) if deadlines else None

    def tick(self, now: float) -> None:
        """Let timers fire."""
        if self._grace_until is not None and now >= self._grace_until:
            self._grace_until = None
            if not self.status.connected:
                self.set_status(available=False)
        released = self.holds.due(now)
        if released:
            # These wait no longer; the watermark stays at the gap until the backfill has
            # run, so nothing missed is skipped (it comes late).
            for held in released:
                self.handover.hand_over(held.name, held.message, backfilled=False)
            self.planner.holds_released(now)
            self.show_holds()
        self.planner.tick(now)

    def verify_soon(self, now: float) -> None:
        """Take a request for fresh counts: read them back soon, within the spacing."""
        self.planner.want_verify(now)

    # --- inputs: cable events -------------------------------------------------------------

    def event(self, event: CableEvent, now: float) -> None:
        """Take an event from the cable."""
        if self.phase in (Phase.AUTH_FAILED, Phase.STOPPED):
            return
        if self.planner.resync is not None:
            self.planner.resync.pushed = True
        kind = type(event)
        if kind is MessageEvent:
            assert isinstance(event, MessageEvent)
            if (message := event.message) is not None:
                if message.chat_room_uuid is None and event.room_id is not None:
                    # From a room's own channel, which may not name the room.
                    uuid = self.unread.room_uuids.get(event.room_id)
                    if uuid is not None:
                        message = replace(message, chat_room_uuid=uuid)
                self.handover.on_message(now, event.name, message)
        elif kind is NotificationCountEvent:
            assert isinstance(event, NotificationCountEvent)
            if event.count != self.state.new_notifications_count:
                self.set_state(replace(self.state, new_notifications_count=event.count))
            self.planner.want_verify(now)
        elif kind is NewNotificationEvent:
            assert isinstance(event, NewNotificationEvent)
            notification_id = event.notification.id
            if notification_id is None or self.handover.remember(
                ("n", notification_id)
            ):
                self.outbox.append(DeliverNotification(event))
        elif kind is ChatRoomEvent:
            assert isinstance(event, ChatRoomEvent)
            self.unread.on_room_event(event)
            if event.name == "chatRoomRead":
                self.planner.want_verify(now)

    def rooms_read(self, uuids: Iterable[str]) -> None:
        """Take rooms the member marked read from here (Circle's own event may follow)."""
        self.unread.rooms_read(uuids)

    def notifications_read(self) -> None:
        """Take a badge reset made from here."""
        self.set_state(replace(self.state, new_notifications_count=0))

    # --- inputs: REST answers (the planner's) ---------------------------------------------

    def snapshot_read(self, now: float, request_id: int, snapshot: Snapshot) -> None:
        """Take the answer to a FetchSnapshot."""
        self.planner.snapshot_read(now, request_id, snapshot)

    def messages_read(
        self, now: float, request_id: int, messages: list[ChatMessage]
    ) -> None:
        """Take the answer to a FetchMessages (in any order)."""
        self.planner.messages_read(now, request_id, messages)

    def read_failed(
        self,
        now: float,
        request_id: int,
        kind: FailureKind,
        reason: str,
        retry_after: float | None = None,
    ) -> None:
        """Take the failure of a FetchSnapshot or FetchMessages."""
        self.planner.read_failed(now, request_id, kind, reason, retry_after)

    # --- internals ------------------------------------------------------------------------

    def _move(self, event: Input) -> None:
        """Take the one transition the table has for `event` (IllegalTransitionError if none)."""
        self.phase = next_phase(self.phase, event)

    def move(self, event: Input) -> None:
        """Take the table's transition for `event`: the parts move the phase through here."""
        self._move(event)

    # --- outputs (the parts' too) ---------------------------------------------------------------

    def set_state(self, state: UnreadState) -> None:
        """Show `state` (an output only when it changed)."""
        if state != self.state:
            self.state = state
            self.outbox.append(StateChanged(state))

    def show_holds(self) -> None:
        """Put what is held, and why, into the status."""
        holds = self.holds
        reason = None
        if holds.holds:
            failing = (
                self.planner.retry_at is not None or self.status.sync_error is not None
            )
            reason = REST_UNAVAILABLE if failing else WAITING_FOR_BACKFILL
        self.set_status(
            hold_reason=reason,
            held_rooms=len(holds.holds),
            held_messages=holds.held,
            held_since=holds.oldest(),
        )

    def set_status(self, **changes: Any) -> None:
        """Change the status (an output only when it changed)."""
        status = replace(self.status, **changes)
        if status != self.status:
            self.status = status
            self.outbox.append(StatusChanged(status))

    def drain(self) -> list[Output]:
        """Take the outputs so far."""
        out, self.outbox = self.outbox, []
        return out
