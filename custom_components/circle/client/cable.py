"""Circle's ActionCable connection: one socket, every member channel, never silently dead.

Follows the wire facts in actioncable-wire.md: subscribe only after `welcome`, time out
subscriptions nobody answers, route broadcasts by the identifier string exactly as sent, treat
6 s without any frame as a dead socket, and never reconnect-storm after `reconnect: false`.

The cable carries out the supervisor's steps (`supervisor.py`: attempts, backoff, verdicts);
each connection is a `CableSocket` (`cable_socket.py`) read by the frame fast path
(`frames.py`); subscriptions outlive sockets (`subscriptions.py`); listeners live in the hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
import contextlib
from dataclasses import dataclass, fields
import logging
from typing import Final

import aiohttp

from .auth import AccessTokenProvider
from .cable_socket import CableSocket, SocketLimits
from .cable_token import CableToken
from .errors import CircleError
from .frames import read_frames
from .handshake import Outcome, no_redirect_session, open_socket
from .hub import (
    CableHub,
    ConnectionState,
    ConnectionStatus,
    EventListener,
    FallbackListener,
    StateListener,
    SubscriptionListener,
)
from .protocol import command
from .reliable import ReliableStreams
from .subscriptions import (
    MEMBER_CHANNELS,
    ROOM_PARAMS,
    Subscription,
    SubscriptionBook,
    SubscriptionState,
)
from .supervisor import (
    DISCONNECT_REASONS,
    LOCAL_REASONS,
    CableState,
    CableSupervisor,
    Step,
    StepKind,
    Timing,
)
from .tokencheck import TokenCheck

__all__ = [
    "MEMBER_CHANNELS",
    "PUBLIC_STATE",
    "ROOM_PARAMS",
    "CableOptions",
    "CircleCable",
    "ConnectionState",
    "ConnectionStatus",
    "Subscription",
    "SubscriptionState",
]

_LOGGER = logging.getLogger(__name__)

C, P = CableState, ConnectionState
# What the owner sees of the supervisor's state: the one place connection states change.
PUBLIC_STATE: Final[dict[CableState, ConnectionState]] = {
    C.IDLE: P.DISCONNECTED,
    C.CONNECTING: P.CONNECTING,
    C.CONNECTED: P.CONNECTED,
    C.WAITING_TOKEN: P.DISCONNECTED,
    C.BACKING_OFF: P.DISCONNECTED,
    C.CHECKING_403: P.DISCONNECTED,
    C.ORIGIN_REFUSED: P.DISCONNECTED,
    C.AUTH_FAILED: P.AUTH_FAILED,
    C.STOPPED: P.STOPPED,
}


# The supervisor's and one connection's settings have their defaults in one place each.
_TIMING: Final = Timing()
_LIMITS: Final = SocketLimits()


@dataclass(frozen=True, slots=True)
class CableOptions:
    """Timing and size limits; defaults follow Rails (3 s pings, 6 s stale threshold)."""

    stale_after: float = _LIMITS.stale_after
    subscribe_timeout: float = _LIMITS.subscribe_timeout
    connect_timeout: float = 10.0
    close_timeout: float = 1.0
    backoff_initial: float = _TIMING.backoff_initial
    # Transient failures: full jitter up to this; `reconnect: false` waits 1-2x this.
    backoff_max: float = _TIMING.backoff_max
    # A connection that was welcomed and lived past one ping interval or so worked: the next
    # drop starts the backoff again from a second (as Rails' own client does on connect).
    stable_after: float = _TIMING.stable_after
    # Failed token renewals: 1 s doubling up to 15 s (never before a Retry-After).
    renew_initial: float = _TIMING.renew_initial
    renew_max: float = _TIMING.renew_max
    # A refused Origin: retried 5 s doubling up to 5 minutes apart (half to full jitter).
    origin_retry_initial: float = _TIMING.origin_retry_initial
    origin_retry_max: float = _TIMING.origin_retry_max
    max_frame_size: int = _LIMITS.max_frame_size
    hard_frame_limit: int = 16 * 1024 * 1024
    dedupe_size: int = _LIMITS.dedupe_size

    def timing(self) -> Timing:
        """Return the supervisor's share of these settings."""
        return Timing(**{f.name: getattr(self, f.name) for f in fields(Timing)})

    def limits(self) -> SocketLimits:
        """Return one connection's share of these settings."""
        return SocketLimits(
            **{f.name: getattr(self, f.name) for f in fields(SocketLimits)}
        )


class CircleCable:
    """Holds the member's cable connection until `stop()`, reconnecting with backoff."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        cable_url: str,
        auth: AccessTokenProvider,
        member_id: int,
        *,
        origin: str | None = None,
        room_ids: Iterable[int] = (),
        room_uuids: Mapping[int, str] | None = None,
        room_param: str | None = None,
        on_room_param: Callable[[str], None] | None = None,
        options: CableOptions | None = None,
        token_check: TokenCheck | None = None,
    ) -> None:
        """Prepare the member channels plus a `Chats::RoomChannel` per room id.

        `room_param` is the room parameter that worked before (see ROOM_PARAMS); the one
        that works is reported to `on_room_param` so the owner can persist it.
        `token_check` asks the member API about a token the cable refused; without it a
        refusal never becomes an authentication verdict.
        """
        self._session = session
        self._url = cable_url
        self._origin = origin
        self.options = options or CableOptions()
        self.book = SubscriptionBook(
            member_id, room_ids, room_uuids, room_param, on_room_param
        )
        self.hub = CableHub()
        # AnyCable's extended protocol, when the server picks it (reliable.py).
        self.reliable = ReliableStreams()
        self._sup = CableSupervisor(self.options.timing())
        self._status = ConnectionStatus(ConnectionState.DISCONNECTED, "not_started")
        self._socket: CableSocket | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stop = asyncio.Event()
        self._token = CableToken(auth, token_check, self.hub, self._stop)
        self.reconnects = 0

    def __repr__(self) -> str:
        """No token is ever held here; show where and how it is."""
        state = self._status.state
        return f"CircleCable({self._url}, {state}, subscriptions={len(self.book)})"

    # --- owner API -------------------------------------------------------------------------

    @property
    def status(self) -> ConnectionStatus:
        """The latest connection status."""
        return self._status

    @property
    def subscriptions(self) -> list[Subscription]:
        """Every subscription and what the server said to it."""
        return list(self.book.subs.values())

    @property
    def room_param(self) -> str | None:
        """The room channel parameter that worked (see ROOM_PARAMS)."""
        return self.book.room_param

    @room_param.setter
    def room_param(self, value: str | None) -> None:
        self.book.room_param = value

    @property
    def errors(self) -> int:
        """Bugs caught and survived (each logged)."""
        return self.hub.errors

    @property
    def frames_received(self) -> int:
        """Frames received over every connection."""
        return self.hub.frames

    @property
    def protocol(self) -> str | None:
        """The subprotocol the server picked on the latest connection."""
        return self.reliable.protocol

    @property
    def sid(self) -> str | None:
        """AnyCable's session id of the latest connection (extended protocol only)."""
        return self.reliable.sid

    @property
    def server_version(self) -> str | None:
        """The 101's X-AnyCable-Version, if the server sent one."""
        return self.reliable.server_version

    @property
    def server_flavour(self) -> str | None:
        """Name the server: `anycable`, `actioncable` (stock Rails) or None (not yet)."""
        return self.reliable.flavour

    @property
    def verdict(self) -> str | None:
        """The supervisor's state while not connected (e.g. "origin_refused"), else None."""
        state = self._sup.state
        return None if state in (C.CONNECTED, C.IDLE) else state.value

    @property
    def origin_refused(self) -> bool:
        """The cable refuses our Origin: a 404 (Rails' answer), or a 403 with a token REST accepts."""
        return self._sup.state is CableState.ORIGIN_REFUSED

    def add_event_listener(self, listener: EventListener) -> Callable[[], None]:
        """Call `listener` for every event (each chat message once); returns an unsubscribe."""
        return self.hub.add_listener(listener)

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call `listener` on each connection state change."""
        self.hub.state_listeners.append(listener)
        return lambda: self.hub.state_listeners.remove(listener)

    def add_fallback_listener(self, listener: FallbackListener) -> Callable[[], None]:
        """Call `listener` when the server cannot replay a subscription's history."""
        self.hub.fallback_listeners.append(listener)
        return lambda: self.hub.fallback_listeners.remove(listener)

    def add_subscription_listener(
        self, listener: SubscriptionListener
    ) -> Callable[[], None]:
        """Call `listener` when a subscription is confirmed, rejected or goes unanswered."""
        self.hub.sub_listeners.append(listener)
        return lambda: self.hub.sub_listeners.remove(listener)

    async def async_follow_room(self, room_id: int, uuid: str | None = None) -> None:
        """Also receive every event of this room (embedded rooms, replies)."""
        if uuid:
            self.book.room_uuids[room_id] = uuid
        if self.book.find_room(room_id) is not None:
            return
        sub = self.book.room_sub(room_id)
        self.book.add(sub)
        if (sock := self._socket) is not None and sock.welcomed:
            await sock.send_subscribe(sub)

    async def async_unfollow_room(self, room_id: int) -> None:
        """Stop receiving this room's events."""
        sub = self.book.find_room(room_id)
        if sub is None:
            return
        self.book.remove(sub)
        self.reliable.forget(sub.identifier)
        set_aside = self.book.drop_superseded(room_id)
        if (sock := self._socket) is not None and sock.welcomed:
            for gone in (sub, *set_aside):
                await sock.send(command("unsubscribe", gone.identifier))

    async def stop(self) -> None:
        """End `run()`: close the socket and stop reconnecting."""
        self._stop.set()
        if (sock := self._socket) is not None and not sock.ws.closed:
            await sock.ws.close()

    async def run(self) -> None:
        """Connect and reconnect until `stop()` or a certain authentication verdict.

        Every timing and verdict decision is the supervisor's (`supervisor.py`); this
        carries its steps out.
        """
        self._stop.clear()
        sup = self._sup = CableSupervisor(self.options.timing())
        refresher = self._token.start_refresher()
        self._token.fatal = None
        try:
            step = sup.start()
            while not self._stop.is_set() and step.kind is not StepKind.DONE:
                step = await self._carry_out(sup, step)
            if sup.state is CableState.AUTH_FAILED:
                self._publish(step.reason or "auth_failed", error=self._token.fatal)
        finally:
            sup.stop()
            if self._http is not None:
                await self._http.close()
                self._http = None
            if refresher is not None:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
            if sup.state is CableState.STOPPED:
                self._publish("stopped")

    # --- the supervisor's steps ------------------------------------------------------------

    async def _carry_out(self, sup: CableSupervisor, step: Step) -> Step:
        """Do one step; return the supervisor's next."""
        if step.kind is StepKind.CONNECT:
            return await self._attempt(sup, renew=step.renew)
        if step.kind is StepKind.CHECK_TOKEN:
            return await self._check_refused_token(sup)
        self._publish(step.reason, retry_in=step.delay)
        self.reconnects += 1
        await self._token.wait(
            step.delay, for_token=sup.state is CableState.WAITING_TOKEN
        )
        return (
            Step(StepKind.DONE, reason="stopped") if self._stop.is_set() else sup.wake()
        )

    def _publish(
        self,
        reason: str | None = None,
        *,
        retry_in: float | None = None,
        error: CircleError | None = None,
    ) -> None:
        """Tell the listeners where the supervisor is (mapped by PUBLIC_STATE)."""
        state = PUBLIC_STATE[self._sup.state]
        self._status = ConnectionStatus(state, reason, retry_in, error)
        self.hub.publish(self._status)

    async def _attempt(self, sup: CableSupervisor, *, renew: bool) -> Step:
        """Get (or renew) a token, then hold one connection; tell the supervisor how it went."""
        token = await self._token.fetch(sup, renew=renew)
        if isinstance(token, Step):
            return token
        try:
            outcome = await self._connect_once(token)
        except Exception:  # noqa: BLE001 - a bug must not end the connection
            self.hub.unexpected("connecting")
            outcome = Outcome("error")
        if self._stop.is_set():
            return Step(StepKind.DONE, reason="stopped")
        if outcome.refusal is not None:
            return sup.handshake_failed(
                outcome.refusal, outcome.reason, outcome.retry_after
            )
        if outcome.reason not in DISCONNECT_REASONS | LOCAL_REASONS:
            self.hub.warn_once(
                "disconnect_reason",
                f"Circle ended the connection for an unknown reason ({outcome.reason})",
            )
        return sup.closed(
            outcome.reason,
            reconnect=outcome.reconnect,
            connected_for=outcome.connected_for,
        )

    async def _check_refused_token(self, sup: CableSupervisor) -> Step:
        """Ask the member API about the token the cable refused: the verdict needs its word."""
        self._publish("checking_token")
        return await self._token.check_refused(sup, self._origin)

    # --- connection ------------------------------------------------------------------------

    def _socket_for(self, ws: aiohttp.ClientWebSocketResponse) -> CableSocket:
        """Open the session of one connection on `ws`."""
        return CableSocket(
            ws,
            book=self.book,
            reliable=self.reliable,
            hub=self.hub,
            supervisor=self._sup,
            limits=self.options.limits(),
            on_welcome=self._on_welcome,
        )

    def _on_welcome(self) -> None:
        self._sup.welcomed()
        self._publish()

    async def _connect_once(self, token: str) -> Outcome:
        """One handshake and, if it works, one connection until it ends."""
        self._publish()
        headers = {"Authorization": f"Bearer {token}"}
        if self._origin:
            headers["Origin"] = self._origin
        headers.update(self.reliable.restore_headers())
        if self._http is None or self._http.closed:
            self._http = no_redirect_session(self._session)
        opts = self.options
        ws = await open_socket(
            self._http,
            self._url,
            headers,
            connect_timeout=opts.connect_timeout,
            close_timeout=opts.close_timeout,
            max_msg_size=opts.hard_frame_limit,
            warn=self.hub.warn_once,
        )
        if isinstance(ws, Outcome):
            return ws
        if self._stop.is_set():  # stop() came while connecting
            await ws.close()
            return Outcome("stopped")
        response = getattr(ws, "_response", None)
        self.reliable.connected(ws.protocol, getattr(response, "headers", None))
        self._socket = self._socket_for(ws)
        try:
            return await self._socket.hold(read_frames)
        finally:
            self._socket = None
            if not ws.closed:
                await ws.close()
