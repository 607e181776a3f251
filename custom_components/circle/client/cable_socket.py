"""One cable connection, from the upgrade to its end: control frames, subscribes, staleness.

The cable (`cable.py`) opens one `CableSocket` per attempt and gives the supervisor its
`Outcome`; the frame fast path (`frames.py`) reads the socket and hands anything but a plain
broadcast to `on_frame`. Subscriptions outlive the socket (`subscriptions.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
import contextlib
from dataclasses import dataclass
import logging
from typing import Any

import aiohttp

from .handshake import Outcome
from .hub import CableHub
from .models import CableEvent
from .protocol import (
    command,
    describe_frame,
    parse_payload,
    sanitize_reason,
    split_broadcast,
)
from .reliable import Fallback, ReliableStreams
from .subscriptions import Subscription, SubscriptionBook, SubscriptionState, answer_due
from .supervisor import CableState, CableSupervisor
from .waiting import wait_first

_LOGGER = logging.getLogger(__name__)


class ServerDisconnect(Exception):  # noqa: N818 - control flow, not an error
    """The server sent a `disconnect` frame."""


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """The share of the cable's options one connection needs."""

    stale_after: float = 6.0
    subscribe_timeout: float = 5.0
    max_frame_size: int = 1024 * 1024
    dedupe_size: int = 4096


class CableSocket:
    """One connection: welcome, subscribe and confirm, history, the staleness deadline."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        book: SubscriptionBook,
        reliable: ReliableStreams,
        hub: CableHub,
        supervisor: CableSupervisor,
        limits: SocketLimits,
        on_welcome: Callable[[], None],
    ) -> None:
        """Hold `ws` for one connection; `on_welcome` tells the cable the server said hello."""
        self.ws = ws
        self.book = book
        self.reliable = reliable
        self.hub = hub
        self.limits = limits
        self._sup = supervisor
        self._on_welcomed = on_welcome
        self.connected_at = 0.0
        self.disconnect: tuple[str, bool] | None = None
        self.last_frame = 0.0
        self.armed_at = 0.0
        self._deadline: asyncio.TimerHandle | None = None
        self._stale = asyncio.Event()
        self._kick = asyncio.Event()
        self._subscriber: asyncio.Task[None] | None = None

    @property
    def welcomed(self) -> bool:
        """The server welcomed this connection (the supervisor's word)."""
        return self._sup.state is CableState.CONNECTED

    async def hold(
        self, read: Callable[[CableSocket], Coroutine[Any, Any, None]]
    ) -> Outcome:
        """Read (with `frames.read_frames`) until the connection ends: stale, closed, dropped."""
        loop = asyncio.get_running_loop()
        reader = asyncio.create_task(read(self))
        watchdog = asyncio.create_task(self._watchdog())
        try:
            done, _ = await asyncio.wait(
                (reader, watchdog), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._disarm()
            for task in (reader, watchdog):
                task.cancel()
            try:
                await asyncio.gather(reader, watchdog, return_exceptions=True)
            finally:
                self._disarm()  # even when cancelled again while waiting
        lived = loop.time() - self.connected_at if self.connected_at else None
        if watchdog in done and not watchdog.cancelled() and not watchdog.exception():
            return Outcome(watchdog.result(), connected_for=lived)
        if self.disconnect is not None:
            reason, reconnect = self.disconnect
            return Outcome(reason, reconnect=reconnect, connected_for=lived)
        if reader in done and not reader.cancelled() and reader.exception():
            _LOGGER.debug("Cable reader failed: %s", type(reader.exception()).__name__)
            return Outcome("error", connected_for=lived)
        code = self.ws.close_code
        dropped = not code or code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE
        return Outcome("dropped" if dropped else "closed", connected_for=lived)

    # --- staleness ---------------------------------------------------------------------------

    async def _watchdog(self) -> str:
        """Return "stale" when no frame came for `stale_after`; retry unanswered subscribes.

        No ticking: a deadline timer (`arm`) is pushed forward by the frames themselves (at
        most every eighth of `stale_after`), so with pings every 3 s it never fires and an idle
        cable wakes only for its pings. A dead socket is noticed between `stale_after` and
        `stale_after * 9 / 8` after its last frame.
        """
        loop = asyncio.get_running_loop()
        stale, kick = self._stale, self._kick
        self.arm(loop.time())
        while not stale.is_set():
            wake = float("inf")
            if self.welcomed:
                wake = await self._retry_subscriptions(loop.time())
            kick.clear()
            timeout = None if wake == float("inf") else max(0.01, wake - loop.time())
            # a subscribe sent (kick) is timed out by the next turn
            await wait_first((stale.wait(), kick.wait()), timeout)
        idle = loop.time() - self.last_frame
        _LOGGER.debug("No cable frame for %.1f s: reconnecting", idle)
        return "stale"

    def arm(self, now: float) -> None:
        """(Re)arm the staleness deadline from a frame seen at `now`."""
        if self._deadline is not None:
            self._deadline.cancel()
        self.armed_at = now
        self._deadline = asyncio.get_running_loop().call_at(
            now + self.limits.stale_after * 9 / 8, self._on_deadline
        )

    def _on_deadline(self) -> None:
        self._deadline = None
        now = asyncio.get_running_loop().time()
        if now - self.last_frame >= self.limits.stale_after:
            self._stale.set()
        else:  # frames came after the arming: the deadline moves to the newest one
            self.arm(self.last_frame)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    async def _retry_subscriptions(self, now: float) -> float:
        """Resend subscribes nobody answered; return when the next one is due (or inf)."""
        timeout = self.limits.subscribe_timeout
        wake = float("inf")
        for sub in list(self.book.subs.values()):
            if (deadline := answer_due(sub, timeout)) is None:
                continue  # not sent on this connection yet, or answered
            if now >= deadline:
                if await self.try_next_room_param(sub, timed_out=True):
                    continue
                if sub.state is SubscriptionState.PENDING:
                    self.hub.set_state(sub, SubscriptionState.UNANSWERED)
                await self.send_subscribe(sub, keep_state=True)
                deadline = answer_due(sub, timeout) or now
            wake = min(wake, deadline)
        return wake

    # --- control frames (anything the fast path does not take) -------------------------------

    def on_frame(self, frame: Any) -> CableEvent | None:
        """Handle a control frame, or parse a broadcast of an unusual shape."""
        if type(frame) is not dict:
            self.hub.warn_once(
                "not_object", "Dropped a cable frame that is not a JSON object"
            )
            return None
        kind = frame.get("type")
        if kind is None and "message" in frame:
            return self._route_broadcast(frame.get("identifier"), frame["message"])
        if kind == "ping":
            if (pong := self.reliable.on_ping(frame)) is not None:
                self.hub.spawn(self.send(pong))
        elif kind == "welcome":
            self._on_welcome(frame)
        # A tuple, not a set: `kind` may be any JSON value, lists included.
        elif kind in ("confirm_history", "reject_history"):
            self._on_history(kind, frame.get("identifier"))
        elif kind in ("confirm_subscription", "reject_subscription"):
            self._on_answer(kind == "confirm_subscription", frame.get("identifier"))
        elif kind == "disconnect":
            self.reliable.on_disconnect()
            reason = sanitize_reason(frame.get("reason")) or "disconnect"
            self.disconnect = (reason, frame.get("reconnect") is not False)
            raise ServerDisconnect
        elif (broadcast := split_broadcast(frame)) is not None:
            return self._route_broadcast(broadcast.route, broadcast.payload)
        else:
            self._unknown(frame)
        return None

    def _unknown(self, frame: dict[str, Any]) -> None:
        shape = describe_frame(frame)
        self.hub.warn_once(
            "unknown_shape", f"Ignored a cable frame of an unknown shape ({shape})"
        )

    def _on_answer(self, confirmed: bool, ident: Any) -> None:
        book = self.book
        sub = book.lookup(ident)
        if sub is None and confirmed:
            sub, displaced = book.adopt_superseded(ident)
            if displaced is not None:
                self.hub.subscription(displaced)
                self.hub.spawn(self.send(command("unsubscribe", displaced.identifier)))
        if sub is None:
            return
        if confirmed:
            self.hub.set_state(sub, SubscriptionState.CONFIRMED)
            book.confirmed(sub)
        elif (replacement := self._replace_room(sub)) is not None:
            # Replaced now, not in a task: answers that come meanwhile see the new one.
            self.hub.spawn(self.send_subscribe(replacement))
        else:
            self.hub.set_state(sub, SubscriptionState.REJECTED)

    def _route_broadcast(self, route: Any, payload: Any) -> CableEvent | None:
        """Route a broadcast in another envelope: by identifier, or by a channel's name."""
        sub = self.book.by_route(route)
        if sub is None:
            self.hub.warn_once(
                "unknown_identifier", "Dropped a broadcast for an unknown subscription"
            )
            return None
        try:
            return parse_payload(sub.channel, payload, sub.room_id)
        except Exception:  # noqa: BLE001 - a bad payload must never end the connection
            self.hub.warn_once(
                "unparsable", "Dropped a broadcast that could not be parsed"
            )
            return None

    def _on_welcome(self, frame: dict[str, Any]) -> None:
        if self._sup.state is not CableState.CONNECTING:
            return  # a second welcome (or none expected) changes nothing
        restored = self.reliable.on_welcome(frame)
        self.connected_at = asyncio.get_running_loop().time()
        self._on_welcomed()
        self.book.new_connection()
        self._subscriber = asyncio.get_running_loop().create_task(
            self._subscribe_all(restored)
        )

    async def _subscribe_all(self, restored: tuple[str, ...] = ()) -> None:
        for sub in list(self.book.subs.values()):
            if sub.identifier in restored:
                await self._resume(sub)
            else:
                await self.send_subscribe(sub)

    async def _resume(self, sub: Subscription) -> None:
        """Take a subscription the server restored as confirmed; ask what was missed."""
        sub.sent_at = asyncio.get_running_loop().time()
        sub.attempts = 1
        self.hub.set_state(sub, SubscriptionState.CONFIRMED)
        history = self.reliable.history_command(sub.identifier)
        if isinstance(history, Fallback):
            self.hub.fallback(history)
        else:
            await self.send(history)

    def track(self, frame: dict[str, Any]) -> None:
        """Note a broadcast's stream position (extended protocol)."""
        sub = self.book.lookup(frame.get("identifier"))
        if sub is not None and (fb := self.reliable.track(sub.identifier, frame)):
            self.hub.fallback(fb)

    def _on_history(self, kind: str, ident: Any) -> None:
        sub = self.book.lookup(ident)
        if sub is not None and (fb := self.reliable.on_history(kind, sub.identifier)):
            _LOGGER.debug("No history from the server (%s): reading back", fb.reason)
            self.hub.fallback(fb)

    # --- commands --------------------------------------------------------------------------

    async def send(self, text: str) -> None:
        """Send a command unless the socket is gone."""
        ws = self.ws
        if not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(text)

    async def send_subscribe(
        self, sub: Subscription, *, keep_state: bool = False
    ) -> None:
        """Subscribe (again), and time the answer out; not one unfollowed or replaced meanwhile."""
        if self.ws.closed or self.book.subs.get(sub.identifier) is not sub:
            return
        sub.sent_at = asyncio.get_running_loop().time()
        sub.attempts += 1
        self._kick.set()
        if not keep_state:
            sub.state = SubscriptionState.PENDING
        await self.send(self.reliable.subscribe_command(sub.identifier))

    async def try_next_room_param(
        self, sub: Subscription, *, timed_out: bool = False
    ) -> bool:
        """Replace an unanswered room subscription by the next candidate; False when none is left."""
        replacement = self._replace_room(sub, timed_out=timed_out)
        if replacement is None:
            return False
        await self.send_subscribe(replacement)
        return True

    def _replace_room(
        self, sub: Subscription, *, timed_out: bool = False
    ) -> Subscription | None:
        replacement = self.book.replace_room(sub, timed_out=timed_out)
        if replacement is not None:
            _LOGGER.debug(
                "Room channel refused with %s; trying %s", sub.param, replacement.param
            )
            # Announce the replacement (pending) before the refused one counts as answered.
            self.hub.subscription(replacement)
            self.hub.subscription(sub)
        return replacement
