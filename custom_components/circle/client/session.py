"""The asyncio driver of the delivery core: runs the cable, the REST reads and the timers.

It stays thin on purpose: every decision is the core's (`delivery.py`); this only feeds it
inputs and carries its outputs out. It also supervises the cable: nothing but `stop()` or a
definite authentication verdict ends `run()`, whatever the cable or a listener raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
import contextlib
import logging
import random
from typing import Any, Protocol

from .api import CircleMemberApi
from .cable import CircleCable, ConnectionState, ConnectionStatus, Subscription
from .delivery import (
    CancelFetches,
    Deliver,
    DeliverNotification,
    DeliveryCore,
    FailureKind,
    FetchMessages,
    FetchSnapshot,
    LedgerChanged,
    Phase,
    Snapshot,
    StateChanged,
    StatusChanged,
    SyncStatus,
    UnreadState,
)
from .errors import CircleError, CircleRateLimitError, log_bug, verdict_reason
from .models import CableEvent, ChatMessage, NewNotificationEvent
from .reliable import Fallback

_LOGGER = logging.getLogger(__name__)

RESTART_BACKOFF_MAX = 15.0  # after a bug in the cable: as its own backoff


class SessionListener(Protocol):
    """What the owner (the Home Assistant coordinator) is told."""

    def on_message(self, name: str, message: ChatMessage, backfilled: bool) -> None:
        """Handle a chat message event, once, in order."""

    def on_notification(self, event: NewNotificationEvent) -> None:
        """Handle a new notification."""

    def on_state(self, state: UnreadState) -> None:
        """Show new unread counts."""

    def on_status(self, status: SyncStatus, connection: ConnectionStatus) -> None:
        """Show connection and sync health."""

    def on_ledger_changed(self) -> None:
        """Save the core's ledger (soon)."""


async def read_snapshot(api: CircleMemberApi) -> Snapshot:
    """Read the badge, the unread rooms and every room over the member API."""
    count = await api.async_get_new_notifications_count()
    unread = await api.async_get_unread_chat_room_uuids()
    rooms, complete = await api.async_list_chat_rooms()
    return Snapshot(count, frozenset(unread), tuple(rooms), complete)


class CircleSession:
    """One member's live session: cable + core + REST reads, until `stop()`."""

    def __init__(
        self,
        api: CircleMemberApi,
        cable: CircleCable,
        core: DeliveryCore,
        listener: SessionListener,
    ) -> None:
        """Wire the cable's callbacks into the core."""
        self.api = api
        self.cable = cable
        self.core = core
        self._listener = listener
        self._loop = asyncio.get_running_loop()
        self._fetches: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._stopping = asyncio.Event()
        self._stopper: asyncio.Task[None] | None = None
        self._connection = cable.status
        self.crashes = 0
        self.bugs = 0
        cable.add_event_listener(self._on_event)
        cable.add_state_listener(self._on_connection)
        cable.add_subscription_listener(self._on_subscription)
        cable.add_fallback_listener(self._on_history_fallback)

    def __repr__(self) -> str:
        """Where it is; never a secret."""
        return f"CircleSession({self.core.phase}, {self._connection.state})"

    @property
    def connection(self) -> ConnectionStatus:
        """The cable's latest status."""
        return self._connection

    async def run(self) -> None:
        """Hold the cable until `stop()` or an authentication verdict; survive any bug."""
        attempt = 0
        try:
            while not self._stopping.is_set():
                try:
                    await self.cable.run()
                except Exception:  # noqa: BLE001 - a bug must not end the connection
                    self.crashes += 1
                    self._bug("in the connection")
                    self._on_connection(
                        ConnectionStatus(ConnectionState.DISCONNECTED, "error")
                    )
                if self._stopping.is_set() or self.core.phase is Phase.AUTH_FAILED:
                    return
                delay = random.uniform(0, min(RESTART_BACKOFF_MAX, 2.0**attempt))  # noqa: S311
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            self._teardown()

    def _bug(self, where: str) -> None:
        self.bugs += 1
        log_bug(_LOGGER, where, self.bugs)

    async def stop(self) -> None:
        """Close the cable, cancel the reads, stop the timers."""
        self._stopping.set()
        self.core.stop()
        self._teardown()
        await self.cable.stop()

    def _teardown(self) -> None:
        for task in self._fetches:
            task.cancel()
        self._fetches.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None

    def rooms_read(self, uuids: list[str]) -> None:
        """Tell the core the member read these rooms from here."""
        self.core.rooms_read(uuids)
        self._pump()

    def verify_soon(self) -> None:
        """Have the core read the counts back soon (someone asked for fresh values)."""
        self.core.verify_soon(self._loop.time())
        self._pump()

    def notifications_read(self) -> None:
        """Tell the core the badge was reset from here."""
        self.core.notifications_read()
        self._pump()

    # --- cable callbacks ------------------------------------------------------------------

    def _on_event(self, event: CableEvent) -> None:
        self.core.event(event, self._loop.time())
        if self.core.outbox:
            self._pump()

    def _on_connection(self, status: ConnectionStatus) -> None:
        self._connection = status
        now = self._loop.time()
        core = self.core
        if status.state is ConnectionState.CONNECTED:
            core.connected(now, [sub.identifier for sub in self.cable.subscriptions])
        elif status.state is ConnectionState.AUTH_FAILED:
            core.auth_failed(status.reason or "auth_failed")
        elif status.state in (ConnectionState.DISCONNECTED, ConnectionState.STOPPED):
            core.disconnected(now, status.reason)
        self._pump(status_changed=True)

    def _on_subscription(self, sub: Subscription) -> None:
        self.core.subscription(self._loop.time(), sub.identifier, sub.state.value)
        self._pump(status_changed=True)

    def _on_history_fallback(self, fallback: Fallback) -> None:
        """Read a subscription's room back over REST: the server cannot replay it.

        Told to the core as a fresh confirmation, the signal for which it reads every room
        back (nothing broadcast before a confirmation reached us).
        """
        now = self._loop.time()
        self.core.subscription(now, fallback.identifier, "pending")
        self.core.subscription(now, fallback.identifier, "confirmed")
        self._pump(status_changed=True)

    # --- outputs --------------------------------------------------------------------------

    def _pump(self, *, status_changed: bool = False) -> None:
        """Carry out what the core decided, in order."""
        state_changed = ledger_changed = False
        listener = self._listener
        for output in self.core.drain():
            try:
                if type(output) is Deliver:
                    listener.on_message(output.name, output.message, output.backfilled)
                elif type(output) is StateChanged:
                    state_changed = True
                elif type(output) is LedgerChanged:
                    ledger_changed = True
                elif type(output) is StatusChanged:
                    status_changed = True
                elif type(output) is DeliverNotification:
                    listener.on_notification(output.event)
                elif type(output) is FetchSnapshot:
                    self._start(self._read_snapshot(output))
                elif type(output) is FetchMessages:
                    self._start(self._read_messages(output))
                elif type(output) is CancelFetches:
                    for task in self._fetches:
                        task.cancel()
                    self._fetches.clear()
            except Exception:  # noqa: BLE001 - a listener's bug must not end the session
                self._bug("in a session listener")
        try:
            if state_changed:
                listener.on_state(self.core.state)
            if ledger_changed:
                listener.on_ledger_changed()
            if status_changed:
                listener.on_status(self.core.status, self._connection)
        except Exception:  # noqa: BLE001 - a listener's bug must not end the session
            self._bug("in a session listener")
        self._arm_timer()

    def _arm_timer(self) -> None:
        deadline = self.core.next_deadline()
        if deadline == self._timer_at or self._stopping.is_set():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = (
            self._loop.call_at(deadline, self._on_timer)
            if deadline is not None
            else None
        )

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.core.tick(self._loop.time())
        self._pump()

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    # --- REST reads -----------------------------------------------------------------------

    async def _read_snapshot(self, fetch: FetchSnapshot) -> None:
        try:
            snapshot = await read_snapshot(self.api)
        except Exception as err:  # noqa: BLE001 - every failure is told to the core
            self._failed(fetch.request_id, err)
            return
        self.core.snapshot_read(self._loop.time(), fetch.request_id, snapshot)
        self._pump()

    async def _read_messages(self, fetch: FetchMessages) -> None:
        try:
            page = await self.api.async_get_messages(
                fetch.room_uuid, previous=fetch.count - 1, following=0
            )
        except Exception as err:  # noqa: BLE001 - every failure is told to the core
            self._failed(fetch.request_id, err)
            return
        self.core.messages_read(self._loop.time(), fetch.request_id, page.messages)
        self._pump()

    def _failed(self, request_id: int, err: BaseException) -> None:
        if isinstance(err, CircleError):
            reason = verdict_reason(err)
            if reason is not None:
                kind = FailureKind.AUTH
            elif isinstance(err, CircleRateLimitError):
                kind, reason = FailureKind.RATE_LIMITED, "rate_limited"
            else:
                kind, reason = FailureKind.TEMPORARY, type(err).__name__
            _LOGGER.debug("Circle read failed: %s", err)
        else:
            kind, reason = FailureKind.TEMPORARY, "error"
            self._bug("reading from Circle")
        retry_after = err.retry_after if isinstance(err, CircleRateLimitError) else None
        self.core.read_failed(self._loop.time(), request_id, kind, reason, retry_after)
        self._pump()
        if kind is FailureKind.AUTH:
            # A verdict: the session ends (run() returns once the cable has stopped).
            self._stopper = self._loop.create_task(self.cable.stop())
