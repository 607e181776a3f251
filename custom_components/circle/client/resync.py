"""The resync planner: what to read back after a (re)connect, when to retry, what to merge.

Part of the delivery core (`delivery.py`), which owns the phase, the ledger and the outputs;
the planner moves the phase only through the core's `_move` (the table in `phases.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
import logging
from typing import TYPE_CHECKING

from .delivery_io import (
    LAST_TRY_MARGIN,
    NEW_MESSAGE,
    CancelFetches,
    DeliveryConfig,
    FailureKind,
    FetchMessages,
    FetchSnapshot,
    LedgerChanged,
    Snapshot,
)
from .models import ChatMessage, ChatRoom, parse_datetime
from .phases import Input, Phase
from .retry_after import retry_after_floor

if TYPE_CHECKING:
    from .delivery import DeliveryCore

_LOGGER = logging.getLogger(__name__)

type Batch = list[tuple[int, int, str, ChatMessage, bool]]


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


def _plan_room(
    config: DeliveryConfig,
    mark: int,
    uuid: str,
    page: list[ChatMessage],
    cutoff: datetime | None,
    last_id: int | None,
    batch: Batch,
) -> int:
    """Add a room's missed messages to `batch`; return the id everything up to was read."""
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
            config.backfill_window,
        )
    if len(page) >= config.per_room and top and min(m.id for m in top) > mark > 0:
        _LOGGER.info(
            "More than %s messages were missed in a room; the oldest are skipped",
            config.per_room,
        )
    # Everything up to here was read: handed over now, skipped, or gone.
    return max(mark, last_id or 0, *(m.id for m in top))


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

    def plan(
        self, watermarks: Mapping[str, int], config: DeliveryConfig
    ) -> tuple[Batch, list[tuple[str, int]]]:
        """Return the missed messages to hand over, and each room's id read up to."""
        assert self.snapshot is not None
        last_ids = {room.uuid: room.last_message_id for room in self.snapshot.rooms}
        cutoff = _cutoff(self.snapshot, self.results, config.backfill_window)
        batch: Batch = []
        marks: list[tuple[str, int]] = []
        for uuid, page in self.results.items():
            if page is None:
                continue
            mark = watermarks.get(uuid, 0)
            read = _plan_room(
                config, mark, uuid, page, cutoff, last_ids.get(uuid), batch
            )
            marks.append((uuid, read))
        return batch, marks


class ResyncPlanner:
    """Reads back after each (re)connect: subscriptions, retries, verifies, merging."""

    def __init__(self, core: DeliveryCore) -> None:
        """Plan for `core`; nothing is read yet."""
        self.core = core
        self.config = config = core.config
        self.resyncs = 0
        self.failures = 0
        self.subs: dict[str, str] = {}  # identifier -> pending, confirmed, ...
        self.wanted = False  # a confirmation came while a read-back ran
        self.resync: _Resync | None = None
        self._next_request = 0
        self._retry_delay = config.resync_initial
        self.retry_at: float | None = None
        self._retry_floor = float("-inf")  # not before this: Circle's Retry-After
        self.verify_at: float | None = None
        self._last_verify = float("-inf")

    # --- subscriptions ------------------------------------------------------------------

    def connected(self, now: float, subscriptions: Iterable[str]) -> None:
        """Take a welcome: wait for these subscriptions' answers, then read back."""
        self.verify_at = None  # the resync that follows reads everything
        self.subs = dict.fromkeys(subscriptions, "pending")

    def subscription(self, now: float, identifier: str, state: str) -> None:
        """Take a subscription's answer; see `DeliveryCore.subscription`."""
        phase = self.core.phase
        if self.subs.get(identifier) == state:
            return
        self.subs[identifier] = state
        if state == "confirmed" and phase is not Phase.SUBSCRIBING:
            self.wanted = True
        if not self._all_answered():
            return
        if phase is Phase.SUBSCRIBING:
            self.begin(now)
        elif self.wanted:
            self.merge(now)

    def _all_answered(self) -> bool:
        return all(state != "pending" for state in self.subs.values())

    def maybe_begin(self, now: float) -> None:
        """Read back now if no subscription is pending."""
        if self.core.phase is Phase.SUBSCRIBING and self._all_answered():
            self.begin(now)

    # --- time ---------------------------------------------------------------------------

    def holds_released(self, now: float) -> None:
        """Give the next hold its own last try (some holds ended)."""
        if self.retry_at is not None:
            self.retry_at = self._last_try(now, self.retry_at)

    def tick(self, now: float) -> None:
        """Let the retry and the verify timers fire."""
        core = self.core
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            if core.phase is Phase.SYNCING and self.resync is None:
                core.move(Input.RETRY)
                self._start()
        if self.verify_at is not None and now >= self.verify_at:
            self.verify_at = None
            if core.phase is Phase.LIVE and self.resync is None:
                self._last_verify = now
                self.resync = _Resync(self._request_id(), verify=True)
                core.outbox.append(FetchSnapshot(self.resync.snapshot_id))
            elif core.phase is Phase.SYNCING:
                self.want_verify(now)  # after the resync under way

    def want_verify(self, now: float) -> None:
        """Read the counts again soon, within the spacing."""
        if self.verify_at is None:
            self.verify_at = max(
                now + self.config.verify_after,
                self._last_verify + self.config.verify_spacing,
            )

    def stop(self) -> None:
        """No timer fires any more."""
        self.retry_at = None
        self.verify_at = None

    # --- REST answers ---------------------------------------------------------------------

    def snapshot_read(self, now: float, request_id: int, snapshot: Snapshot) -> None:
        """Take the answer to a FetchSnapshot."""
        resync = self.resync
        if resync is None or resync.snapshot_id != request_id:
            return  # moot: an older resync
        if resync.pushed and resync.rereads < self.config.max_rereads:
            # A push landed while the answers were on their way; they may be older than it.
            resync.rereads += 1
            resync.pushed = False
            resync.snapshot_id = self._request_id()
            self.core.outbox.append(FetchSnapshot(resync.snapshot_id))
            return
        if resync.pushed:
            self.want_verify(now)  # taken as it is, but read again a little later
        if resync.verify:
            self.resync = None
            self.core.unread.apply_snapshot(snapshot)
            return
        resync.snapshot = snapshot
        self.core.unread.apply_snapshot(snapshot)
        self._plan_pages(resync, snapshot)
        self.maybe_finish(now)

    def _plan_pages(self, resync: _Resync, snapshot: Snapshot) -> None:
        """Ask for the rooms whose last message is past their watermark."""
        core, ledger = self.core, self.core.ledger
        window = self.config.backfill_window
        backfill = window is not None and window > timedelta(0)
        for room in snapshot.rooms:
            mark = ledger.watermarks.get(room.uuid)
            last = room.last_message_id
            if mark is None and not ledger.initialized:
                # First start: the history is not news.
                ledger.advance(room.uuid, last or 0)
                core.synced_rooms.add(room.uuid)
            elif last is None or (mark is not None and last <= mark):
                core.synced_rooms.add(room.uuid)
            elif not backfill:
                ledger.advance(room.uuid, last)
                core.synced_rooms.add(room.uuid)
            else:
                page_id = self._request_id()
                resync.pages[page_id] = room.uuid
                core.outbox.append(
                    FetchMessages(page_id, room.uuid, self.config.per_room)
                )
        if not ledger.initialized:
            ledger.initialized = True
        core.outbox.append(LedgerChanged())

    def messages_read(
        self, now: float, request_id: int, messages: list[ChatMessage]
    ) -> None:
        """Take the answer to a FetchMessages (in any order)."""
        resync = self.resync
        if resync is None or request_id not in resync.pages:
            return
        resync.results[resync.pages.pop(request_id)] = messages
        self.maybe_finish(now)

    def read_failed(
        self,
        now: float,
        request_id: int,
        kind: FailureKind,
        reason: str,
        retry_after: float | None = None,
    ) -> None:
        """Take the failure of a FetchSnapshot or FetchMessages."""
        resync = self.resync
        if resync is None:
            return
        if request_id in resync.pages and kind is FailureKind.TEMPORARY:
            # One room could not be read back: the others go ahead, that one waits for
            # the next resync with its watermark where it was.
            resync.results[resync.pages.pop(request_id)] = None
            resync.error = reason
            self.maybe_finish(now)
            return
        if request_id != resync.snapshot_id and request_id not in resync.pages:
            return
        self.abandon()
        if kind is FailureKind.AUTH:
            self.core.auth_failed(reason)
        elif resync.verify:
            self.want_verify(now)  # no hurry: the counts shown are probably right
        else:
            self._schedule_retry(now, reason, retry_after)

    # --- planning -------------------------------------------------------------------------

    def _request_id(self) -> int:
        self._next_request += 1
        return self._next_request

    def merge(self, now: float) -> None:
        """Take a late confirmation (or a history fallback): one read-back more, merged.

        A read-back under way is not given up (a flapping epoch would starve it): one more
        is queued behind it. A retry already timed reads everything anyway. Never sooner
        than Circle's Retry-After.
        """
        resync = self.resync
        if resync is not None and not resync.verify:
            return  # queued: `maybe_finish` starts it
        if resync is None and self.retry_at is not None:
            return  # the timed retry reads everything back
        self.begin(now, wait_floor=True)

    def begin(self, now: float, *, wait_floor: bool = False) -> None:
        """Read everything back (after Circle's Retry-After with `wait_floor`)."""
        core = self.core
        self.abandon()
        # Whatever was broadcast before this answer is read back: live messages wait for
        # it (within the bounds of `holds`), so that each room's messages keep their order.
        core.holds.all_rooms = True
        self._retry_delay = self.config.resync_initial
        core.move(Input.ALL_ANSWERED)
        if wait_floor and now < self._retry_floor:
            self.retry_at = self._retry_floor  # Circle's Retry-After first
            core.show_holds()
            return
        self._start()

    def _start(self) -> None:
        self.wanted = False
        self.resyncs += 1
        self.resync = _Resync(self._request_id())
        self.core.outbox.append(FetchSnapshot(self.resync.snapshot_id))

    def abandon(self) -> None:
        """Give the read-back under way up (its answers are moot) and the timed retry."""
        if self.resync is not None:
            self.resync = None
            self.core.outbox.append(CancelFetches())
        self.retry_at = None

    def _schedule_retry(
        self, now: float, reason: str, retry_after: float | None
    ) -> None:
        """Fast at first (1 s, doubling, at most resync_max), never before Retry-After.

        Once more just before the first hold ends, so that a REST API back by then keeps
        the order.
        """
        core = self.core
        core.move(Input.READ_FAILED)
        self.failures += 1
        at = now + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self.config.resync_max)
        self._retry_floor = now + retry_after_floor(retry_after)
        self.retry_at = self._last_try(now, at)
        _LOGGER.debug(
            "Resync failed (%s); retrying in %.1f s", reason, self.retry_at - now
        )
        core.set_status(synced=False, sync_error=reason)
        core.show_holds()

    def _last_try(self, now: float, at: float) -> float:
        """Return `at`, or sooner: just before the next hold ends (never before the floor)."""
        for hold in self.core.holds.holds.values():  # in order of their deadlines
            deadline = hold.deadline
            if deadline - LAST_TRY_MARGIN > now:
                at = min(at, deadline - LAST_TRY_MARGIN)
                break
        return max(at, self._retry_floor)

    def maybe_finish(self, now: float) -> None:
        """Once every room was read back: hand the missed and the held messages over."""
        core = self.core
        resync = self.resync
        if resync is None or resync.snapshot is None or resync.pages:
            return
        self.resync = None
        batch, marks = resync.plan(core.ledger.watermarks, self.config)
        confirmed = core.unread.confirmed
        for uuid, read in marks:
            confirmed[uuid] = max(confirmed.get(uuid, 0), read)
            core.synced_rooms.add(uuid)
        failed = {uuid for uuid, page in resync.results.items() if page is None}
        queued = self.wanted  # a confirmation came while this one ran
        core.move(Input.READ_BACK)
        # Live messages of a room not read back yet keep waiting (within the hold's bounds,
        # which the retries do not move).
        core.holds.all_rooms = queued
        core.holds.waiting = failed
        # With one queued, what this one read goes out with the held messages up to it;
        # later ones wait for the queued read-back (it may find older ones missed).
        core.handover.release(batch, marks, upto=dict(marks) if queued else None)
        if failed:
            # The rooms that could not be read back are tried again, the others are live.
            core.move(Input.ROOMS_FAILED)
            self._schedule_retry(now, resync.error or "backfill", None)
        elif queued:
            core.set_status(sync_error=None)
            self.begin(now, wait_floor=True)
        else:
            self._retry_delay = self.config.resync_initial
            core.set_status(synced=True, sync_error=None)
            core.show_holds()
