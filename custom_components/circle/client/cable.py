"""Circle's ActionCable connection: one socket, every member channel, never silently dead.

Follows the wire facts in actioncable-wire.md: subscribe only after `welcome`, time out
subscriptions nobody answers, route broadcasts by the identifier string exactly as sent, treat
6 s without any frame as a dead socket, and never reconnect-storm after `reconnect: false`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
import contextlib
from dataclasses import dataclass
from enum import StrEnum
import json
import logging
from typing import Any, Final

import aiohttp

from .auth import AccessTokenProvider, CircleAuth
from .errors import (
    CircleAuthenticationError,
    CircleError,
    CircleMemberNotFoundError,
    CircleNotEligibleError,
    CircleRateLimitError,
    log_bug,
    verdict_reason,
)
from .handshake import HandshakeRedirect, no_redirect_session
from .http import retry_after_seconds
from .models import CableEvent, Channel, EventName, MessageEvent
from .protocol import (
    EVENT_CLASSES,
    canonical_identifier,
    command,
    describe_frame,
    identifier,
    parse_payload,
    sanitize_reason,
    split_broadcast,
)
from .reliable import OFFERED_PROTOCOLS, Fallback, ReliableStreams
from .supervisor import (
    DISCONNECT_REASONS,
    LOCAL_REASONS,
    CableState,
    CableSupervisor,
    Refusal,
    Step,
    StepKind,
    Timing,
    TokenVerdict,
)
from .tokencheck import TokenCheck

_LOGGER = logging.getLogger(__name__)

MEMBER_CHANNELS: Final = (Channel.NOTIFICATION, Channel.CHAT_ROOM, Channel.THREADS)
# The parameter naming the room of a `Chats::RoomChannel` is undocumented: try each in turn.
ROOM_PARAMS: Final = ("chat_room_id", "id", "chat_room_uuid")
MAX_KEY_LENGTH: Final = 64
NEW_MESSAGE: Final = EventName.NEW_MESSAGE.value


def _stdlib_loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse with the standard library (which takes no memoryview)."""
    return json.loads(bytes(data) if isinstance(data, memoryview) else data)


_json_loads: Callable[[bytes | bytearray | memoryview | str], Any]
try:  # orjson parses frames faster; it ships with Home Assistant but is not required.
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover
    _json_loads = _stdlib_loads


class ConnectionState(StrEnum):
    """Where the cable is."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """A state change; `reason` says why (disconnect reason, error kind), `retry_in` when."""

    state: ConnectionState
    reason: str | None = None
    retry_in: float | None = None
    error: CircleError | None = None


class SubscriptionState(StrEnum):
    """What the server said to a subscribe command."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    UNANSWERED = "unanswered"


@dataclass(slots=True)
class Subscription:
    """One channel subscription, kept across reconnects."""

    identifier: str
    channel: str
    room_id: int | None = None
    state: SubscriptionState = SubscriptionState.PENDING
    sent_at: float = 0.0
    attempts: int = 0
    # Room channels: the parameter tried (see ROOM_PARAMS).
    param: str | None = None


@dataclass(frozen=True, slots=True)
class CableOptions:
    """Timing and size limits; defaults follow Rails (3 s pings, 6 s stale threshold)."""

    stale_after: float = 6.0
    subscribe_timeout: float = 5.0
    connect_timeout: float = 10.0
    close_timeout: float = 1.0
    backoff_initial: float = 1.0
    # Transient failures: full jitter up to this; `reconnect: false` waits 1-2x this.
    backoff_max: float = 15.0
    # A connection that was welcomed and lived past one ping interval or so worked: the next
    # drop starts the backoff again from a second (as Rails' own client does on connect).
    stable_after: float = 5.0
    # Failed token renewals: 1 s doubling up to 15 s (never before a Retry-After).
    renew_initial: float = 1.0
    renew_max: float = 15.0
    # A refused Origin: retried 5 s doubling up to 5 minutes apart (half to full jitter).
    origin_retry_initial: float = 5.0
    origin_retry_max: float = 300.0
    max_frame_size: int = 1024 * 1024
    hard_frame_limit: int = 16 * 1024 * 1024
    dedupe_size: int = 4096

    def timing(self) -> Timing:
        """Return the supervisor's share of these settings."""
        return Timing(
            backoff_initial=self.backoff_initial,
            backoff_max=self.backoff_max,
            renew_initial=self.renew_initial,
            renew_max=self.renew_max,
            origin_retry_initial=self.origin_retry_initial,
            origin_retry_max=self.origin_retry_max,
            stable_after=self.stable_after,
        )


class _ServerDisconnect(Exception):  # noqa: N818 - control flow, not an error
    """The server sent a `disconnect` frame."""


@dataclass(slots=True)
class _Outcome:
    reason: str
    reconnect: bool = True
    connected_for: float | None = None
    retry_after: float | None = None
    refusal: Refusal | None = None  # set when the handshake itself failed


EventListener = Callable[[CableEvent], None]
StateListener = Callable[[ConnectionStatus], None]
SubscriptionListener = Callable[[Subscription], None]
FallbackListener = Callable[[Fallback], None]


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
        self._token_check = token_check
        self._sup: CableSupervisor | None = None
        self._http: aiohttp.ClientSession | None = None
        self._last_token: str | None = None
        self._fatal: CircleError | None = None
        self._last_frame = 0.0
        self._kick = asyncio.Event()
        self._stale = asyncio.Event()
        self._deadline: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self._session = session
        self.room_param = room_param if room_param in ROOM_PARAMS else None
        self._room_uuids = dict(room_uuids or {})
        self._on_room_param = on_room_param
        self._url = cable_url
        self._auth = auth
        self._origin = origin
        self.options = options or CableOptions()
        self._max_frame = self.options.max_frame_size
        self._dedupe_size = self.options.dedupe_size
        self._subs: dict[str, Subscription] = {}
        self._canonical: dict[str, Subscription] = {}
        for channel in MEMBER_CHANNELS:
            self._add_sub(
                Subscription(
                    identifier(channel, community_member_id=member_id), channel
                )
            )
        for room_id in room_ids:
            self._add_sub(self._room_sub(room_id))
        self._listeners: tuple[EventListener, ...] = ()
        self._state_listeners: list[StateListener] = []
        self._sub_listeners: list[SubscriptionListener] = []
        self._status = ConnectionStatus(ConnectionState.DISCONNECTED, "not_started")
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._welcomed = False
        self._connected_at = 0.0
        self._rx = 0  # frames received, for the staleness watchdog
        self._disconnect: tuple[str, bool] | None = None
        # Recently delivered message keys, oldest first; between dedupe_size/2 and dedupe_size.
        self._seen: dict[Any, None] = {}
        self._warned: set[str] = set()
        self._stop = asyncio.Event()
        self._subscriber: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._superseded: dict[str, Subscription] = {}
        self.reconnects = 0
        self.errors = 0
        # AnyCable's extended protocol, when the server picks it (reliable.py).
        self.reliable = ReliableStreams()
        self._fallback_listeners: list[FallbackListener] = []

    def __repr__(self) -> str:
        """No token is ever held here; show where and how it is."""
        return f"CircleCable({self._url}, {self._status.state}, subscriptions={len(self._subs)})"

    # --- owner API -------------------------------------------------------------------------

    @property
    def status(self) -> ConnectionStatus:
        """The latest connection status."""
        return self._status

    @property
    def subscriptions(self) -> list[Subscription]:
        """Every subscription and what the server said to it."""
        return list(self._subs.values())

    def add_event_listener(self, listener: EventListener) -> Callable[[], None]:
        """Call `listener` for every event (each chat message once); returns an unsubscribe."""
        self._listeners = (*self._listeners, listener)

        def remove() -> None:
            listeners = list(self._listeners)
            listeners.remove(listener)
            self._listeners = tuple(listeners)

        return remove

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call `listener` on each connection state change."""
        self._state_listeners.append(listener)
        return lambda: self._state_listeners.remove(listener)

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

    def add_fallback_listener(self, listener: FallbackListener) -> Callable[[], None]:
        """Call `listener` when the server cannot replay a subscription's history."""
        self._fallback_listeners.append(listener)
        return lambda: self._fallback_listeners.remove(listener)

    def add_subscription_listener(
        self, listener: SubscriptionListener
    ) -> Callable[[], None]:
        """Call `listener` when a subscription is confirmed, rejected or goes unanswered."""
        self._sub_listeners.append(listener)
        return lambda: self._sub_listeners.remove(listener)

    async def async_follow_room(self, room_id: int, uuid: str | None = None) -> None:
        """Also receive every event of this room (embedded rooms, replies)."""
        if uuid:
            self._room_uuids[room_id] = uuid
        if self._find_room_sub(room_id) is not None:
            return
        sub = self._room_sub(room_id)
        self._add_sub(sub)
        if self._welcomed:
            await self._send_subscribe(sub)

    async def async_unfollow_room(self, room_id: int) -> None:
        """Stop receiving this room's events."""
        sub = self._find_room_sub(room_id)
        if sub is None:
            return
        self._remove_sub(sub)
        self.reliable.forget(sub.identifier)
        if self._welcomed and self._ws is not None and not self._ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._ws.send_str(command("unsubscribe", sub.identifier))

    async def stop(self) -> None:
        """End `run()`: close the socket and stop reconnecting."""
        self._stop.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()

    async def run(self) -> None:
        """Connect and reconnect until `stop()` or a certain authentication verdict.

        Every timing and verdict decision is the supervisor's (`supervisor.py`); this
        carries its steps out.
        """
        self._stop.clear()
        sup = self._sup = CableSupervisor(self.options.timing())
        refresher = (
            asyncio.create_task(self._run_refresher(self._auth))
            if isinstance(self._auth, CircleAuth)
            else None
        )
        self._fatal = None
        try:
            step = sup.start()
            while not self._stop.is_set():
                if step.kind is StepKind.CONNECT:
                    step = await self._attempt(sup, renew=step.renew)
                elif step.kind is StepKind.CHECK_TOKEN:
                    step = await self._check_refused_token(sup)
                elif step.kind is StepKind.WAIT:
                    self._set_status(
                        ConnectionState.DISCONNECTED, step.reason, retry_in=step.delay
                    )
                    self.reconnects += 1
                    await self._wait(
                        step.delay, for_token=sup.state is CableState.WAITING_TOKEN
                    )
                    if self._stop.is_set():
                        break
                    step = sup.wake()
                else:
                    self._set_status(
                        ConnectionState.AUTH_FAILED,
                        step.reason or "auth_failed",
                        error=self._fatal,
                    )
                    return
        finally:
            sup.stop()
            if self._http is not None:
                await self._http.close()
                self._http = None
            if refresher is not None:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
            if self._status.state is not ConnectionState.AUTH_FAILED:
                self._set_status(ConnectionState.STOPPED, "stopped")

    @property
    def verdict(self) -> str | None:
        """The supervisor's state while not connected (e.g. "origin_refused"), else None."""
        sup = self._sup
        return (
            None
            if sup is None or sup.state is CableState.CONNECTED
            else sup.state.value
        )

    @property
    def origin_refused(self) -> bool:
        """The member API vouched for the token while the cable refused the handshake."""
        return self._sup is not None and self._sup.state is CableState.ORIGIN_REFUSED

    async def _wait(self, delay: float, *, for_token: bool) -> None:
        """Sleep `delay`, or less: until stop(), or (waiting for a token) until one comes."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stop.wait())]
        if for_token and isinstance(self._auth, CircleAuth):
            waits.append(asyncio.ensure_future(self._auth.async_wait_renewed()))
        try:
            await asyncio.wait(
                waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waits:
                waiter.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _attempt(self, sup: CableSupervisor, *, renew: bool) -> Step:
        """Get (or renew) a token, then hold one connection; tell the supervisor how it went."""
        try:
            if renew and self._last_token is not None:
                token = await self._auth.async_invalidate(self._last_token)
            else:
                token = await self._auth.async_get_access_token()
        except (
            CircleAuthenticationError,
            CircleNotEligibleError,
            CircleMemberNotFoundError,
        ) as err:
            self._fatal = err
            return sup.token_failed(fatal=verdict_reason(err) or "auth_failed")
        except CircleRateLimitError as err:
            return sup.token_failed(retry_after=err.retry_after, reason="rate_limited")
        except Exception as err:  # noqa: BLE001 - no verdict: retry soon
            if isinstance(err, CircleError):
                _LOGGER.debug("No access token for the cable: %s", err)
            else:
                self._unexpected("renewing the token")
            return sup.token_failed(retry_after=getattr(err, "retry_after", None))
        sup.token_ready(renewed=renew)
        self._last_token = token
        try:
            outcome = await self._connect_once(token)
        except Exception:  # noqa: BLE001 - a bug must not end the connection
            self._unexpected("connecting")
            outcome = _Outcome("error")
        if self._stop.is_set():
            return Step(StepKind.DONE, reason="stopped")
        if outcome.refusal is not None:
            return sup.handshake_failed(
                outcome.refusal, outcome.reason, outcome.retry_after
            )
        if outcome.reason not in DISCONNECT_REASONS | LOCAL_REASONS:
            self._warn_once(
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
        self._set_status(ConnectionState.DISCONNECTED, "checking_token")
        verdict, retry_after = TokenVerdict.UNKNOWN, None
        token = self._last_token
        if self._token_check is not None and token is not None:
            try:
                verdict, retry_after = await self._token_check(token)
            except Exception:  # noqa: BLE001 - no verdict on a bug
                self._unexpected("checking the token")
        step = sup.token_checked(verdict, retry_after)
        if step.kind is StepKind.DONE:
            self._fatal = CircleAuthenticationError(
                "Circle refused the member's access token on the cable and the member API"
            )
        elif sup.state is CableState.ORIGIN_REFUSED:
            self._warn_once(
                "origin_refused",
                f"Circle's cable refused the Origin {self._origin or '(none)'} although "
                "the member API accepts the token: allow that Origin in the community, "
                "or reconfigure the integration with another Origin",
            )
        return step

    async def _run_refresher(self, auth: CircleAuth) -> None:
        """Keep the token fresh ahead of expiry; a bug in there is logged and retried."""
        while not self._stop.is_set():
            try:
                await auth.async_run_refresher(self._stop)
            except Exception:  # noqa: BLE001 - a bug must not stop the refreshes
                self._unexpected("refreshing the token")
            else:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 60.0)

    def _unexpected(self, doing: str) -> None:
        self.errors += 1
        log_bug(_LOGGER, doing, self.errors)

    # --- connection ------------------------------------------------------------------------

    async def _connect_once(self, token: str) -> _Outcome:
        """One handshake and, if it works, one connection until it ends."""
        self._set_status(ConnectionState.CONNECTING)
        headers = {"Authorization": f"Bearer {token}"}
        if self._origin:
            headers["Origin"] = self._origin
        headers.update(self.reliable.restore_headers())
        if self._http is None or self._http.closed:
            self._http = no_redirect_session(self._session)
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                ws = await self._http.ws_connect(
                    self._url,
                    protocols=OFFERED_PROTOCOLS,
                    headers=headers,
                    autoclose=True,
                    autoping=True,
                    max_msg_size=self.options.hard_frame_limit,
                    timeout=aiohttp.ClientWSTimeout(
                        ws_close=self.options.close_timeout
                    ),
                )
        except HandshakeRedirect as err:
            self._warn_once(
                "redirect",
                f"Circle's cable answered {err.status} with a redirect to {err.where}, "
                "which is not followed: check the Circle server address",
            )
            return _Outcome("redirected", refusal=Refusal.TRANSIENT)
        except aiohttp.WSServerHandshakeError as err:
            return self._handshake_refused(err)
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            _LOGGER.debug("Cable connect failed: %s", type(err).__name__)
            return _Outcome("cannot_connect", refusal=Refusal.TRANSIENT)
        if self._stop.is_set():  # stop() came while connecting
            await ws.close()
            return _Outcome("stopped")
        response = getattr(ws, "_response", None)
        self.reliable.connected(ws.protocol, getattr(response, "headers", None))
        try:
            outcome = await self._session_loop(ws)
        finally:
            self._ws = None
            self._welcomed = False
            if not ws.closed:
                await ws.close()
        return outcome

    def _handshake_refused(self, err: aiohttp.WSServerHandshakeError) -> _Outcome:
        """Name a refused upgrade; only the supervisor (with REST's word) gives a verdict."""
        if err.status == 404:
            self._warn_once(
                "origin",
                f"Circle refused the cable handshake (404): is the Origin "
                f"{self._origin or '(none)'} whitelisted?",
            )
            return _Outcome("origin_rejected", refusal=Refusal.ORIGIN_404)
        if err.status in (401, 403):
            return _Outcome(f"handshake_{err.status}", refusal=Refusal.HANDSHAKE)
        if err.status == 429:
            retry = err.headers.get("Retry-After") if err.headers else None
            return _Outcome(
                "rate_limited",
                refusal=Refusal.RATE_LIMITED,
                retry_after=retry_after_seconds(retry),
            )
        retry = err.headers.get("Retry-After") if err.headers else None
        return _Outcome(
            f"handshake_{err.status}",
            refusal=Refusal.TRANSIENT,
            retry_after=retry_after_seconds(retry) if retry else None,
        )

    async def _session_loop(self, ws: aiohttp.ClientWebSocketResponse) -> _Outcome:
        loop = asyncio.get_running_loop()
        self._ws = ws
        self._disconnect = None
        self._connected_at = 0.0
        reader = asyncio.create_task(self._read_loop(ws))
        watchdog = asyncio.create_task(self._watchdog(ws))
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
        connected_for = loop.time() - self._connected_at if self._connected_at else None
        if (
            watchdog in done
            and not watchdog.cancelled()
            and watchdog.exception() is None
        ):
            return _Outcome(watchdog.result(), connected_for=connected_for)
        if (disconnect := self._server_disconnect()) is not None:
            reason, reconnect = disconnect
            return _Outcome(reason, reconnect=reconnect, connected_for=connected_for)
        if (
            reader in done
            and not reader.cancelled()
            and (exc := reader.exception()) is not None
        ):
            _LOGGER.debug("Cable reader failed: %s", type(exc).__name__)
            return _Outcome("error", connected_for=connected_for)
        code = ws.close_code
        return _Outcome(
            "closed"
            if code and code != aiohttp.WSCloseCode.ABNORMAL_CLOSURE
            else "dropped",
            connected_for=connected_for,
        )

    def _server_disconnect(self) -> tuple[str, bool] | None:
        return self._disconnect

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Receive, decode, route, deduplicate and dispatch every frame.

        Every frame passes here, so the common broadcast is handled inline with locals and
        plain indexing; control frames and unusual shapes raise and go to `_on_frame`.
        """
        text = aiohttp.WSMsgType.TEXT
        binary = aiohttp.WSMsgType.BINARY
        receive = ws.receive
        loads = _json_loads
        subs = self._subs
        classes = EVENT_CLASSES
        on_frame = self._on_frame
        max_frame = self._max_frame
        tracking = self.reliable.active  # broadcasts carry stream positions
        clock = asyncio.get_running_loop().time
        rearm_every = self.options.stale_after / 8
        while True:
            msg = await receive()
            now = self._last_frame = clock()
            if now - self._armed_at >= rearm_every:
                self._arm(now)  # push the staleness deadline (a few times per period)
            if msg.type is text:
                data = msg.data
            elif msg.type is binary:
                try:
                    data = msg.data.decode()
                except UnicodeDecodeError:
                    self._rx += 1
                    self._warn_once(
                        "binary", "Dropped a binary cable frame that is not UTF-8"
                    )
                    continue
            else:
                if msg.type is aiohttp.WSMsgType.ERROR:
                    _LOGGER.debug("Cable socket error: %s", type(msg.data).__name__)
                return
            self._rx += 1
            if len(data) > max_frame:
                self._warn_once(
                    "oversized", f"Dropped an oversized cable frame ({len(data)} bytes)"
                )
                continue
            try:
                frame = loads(data)
            except ValueError:
                self._warn_once("not_json", "Dropped a cable frame that is not JSON")
                continue
            if tracking and type(frame) is dict and "stream_id" in frame:
                self._track(frame)
            event: CableEvent | None
            try:
                # {"identifier": <ours>, "message": {"event": <known>, "data": {...}}}
                payload = frame["message"]
                sub = subs[frame["identifier"]]
                name = payload["event"]
                fields = payload["data"]
                if type(fields) is not dict:
                    raise TypeError  # noqa: TRY301 - to the tolerant path
                event = classes[name](sub.channel, name, fields, sub.room_id)
            except (KeyError, TypeError, IndexError):
                try:
                    event = on_frame(frame)
                except _ServerDisconnect:
                    return
                if event is None:
                    continue
            if type(event) is MessageEvent:
                # Circle sends one message on several channels: deliver it once. A new
                # message is keyed by its id alone (the common case, kept cheap); edits and
                # deletions by (name, id, edited_at).
                fields = event.data
                message_id = fields.get("id")
                if type(message_id) is int or (
                    type(message_id) is str and len(message_id) <= MAX_KEY_LENGTH
                ):
                    edited = fields.get("edited_at")
                    key: Any = (
                        message_id
                        if edited is None and event.name == NEW_MESSAGE
                        else (
                            event.name,
                            message_id,
                            edited[:MAX_KEY_LENGTH] if type(edited) is str else None,
                        )
                    )
                    seen = self._seen
                    if key in seen:
                        continue
                    seen[key] = None
                    if len(seen) > self._dedupe_size:
                        # Trim in bulk to the newest half: amortised O(1).
                        self._seen = dict.fromkeys(list(seen)[len(seen) // 2 :])
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # noqa: BLE001 - a listener's bug must not end the cable
                    self._unexpected(f"in an event listener ({event.name})")

    async def _watchdog(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Return "stale" when no frame came for `stale_after`; retry unanswered subscribes.

        No ticking: a deadline timer (`_arm`) is pushed forward by the frames themselves
        (at most every eighth of `stale_after`), so with pings every 3 s it never fires and
        an idle cable wakes only for its pings. A dead socket is noticed between
        `stale_after` and `stale_after * 9 / 8` after its last frame.
        """
        loop = asyncio.get_running_loop()
        stale = self._stale = asyncio.Event()
        self._arm(loop.time())
        kick = self._kick
        while not stale.is_set():
            wake = float("inf")
            if self._welcomed:
                wake = await self._retry_subscriptions(loop.time())
            kick.clear()
            waiters = [
                asyncio.ensure_future(stale.wait()),
                asyncio.ensure_future(kick.wait()),  # a subscribe sent: time it out
            ]
            timeout = None if wake == float("inf") else max(0.01, wake - loop.time())
            try:
                await asyncio.wait(
                    waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()
        _LOGGER.debug(
            "No cable frame for %.1f s: reconnecting", loop.time() - self._last_frame
        )
        return "stale"

    def _arm(self, now: float) -> None:
        """(Re)arm the staleness deadline from a frame seen at `now`."""
        if self._deadline is not None:
            self._deadline.cancel()
        self._armed_at = now
        opts = self.options
        self._deadline = asyncio.get_running_loop().call_at(
            now + opts.stale_after * 9 / 8, self._on_deadline
        )

    def _on_deadline(self) -> None:
        self._deadline = None
        if (
            asyncio.get_running_loop().time() - self._last_frame
            >= self.options.stale_after
        ):
            self._stale.set()
        else:  # frames came after the arming: the deadline moves to the newest one
            self._arm(self._last_frame)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    async def _retry_subscriptions(self, now: float) -> float:
        """Resend subscribes nobody answered; return when the next one is due (or inf)."""
        opts = self.options
        wake = float("inf")
        for sub in list(self._subs.values()):
            if sub.attempts == 0 or sub.state not in (
                SubscriptionState.PENDING,
                SubscriptionState.UNANSWERED,
            ):
                continue  # not sent on this connection yet, or answered
            deadline = sub.sent_at + opts.subscribe_timeout * 2 ** min(
                sub.attempts - 1, 4
            )
            if now >= deadline:
                if await self._try_next_room_param(sub, timed_out=True):
                    continue
                if sub.state is SubscriptionState.PENDING:
                    self._set_sub_state(sub, SubscriptionState.UNANSWERED)
                await self._send_subscribe(sub, keep_state=True)
                deadline = sub.sent_at + opts.subscribe_timeout * 2 ** min(
                    sub.attempts - 1, 4
                )
            wake = min(wake, deadline)
        return wake

    # --- frames (hot path: every frame passes here) ----------------------------------------

    def _on_frame(self, frame: Any) -> CableEvent | None:
        """Handle a control frame, or parse a broadcast of an unusual shape."""
        if type(frame) is not dict:
            self._warn_once(
                "not_object", "Dropped a cable frame that is not a JSON object"
            )
            return None
        kind = frame.get("type")
        if kind is None and "message" in frame:
            return self._route_broadcast(frame.get("identifier"), frame["message"])
        if kind == "ping":
            if (pong := self.reliable.on_ping(frame)) is not None:
                self._spawn(self._send(pong))
            return None
        if kind == "welcome":
            self._on_welcome(frame)
        elif kind in ("confirm_history", "reject_history"):
            self._on_history(kind, frame.get("identifier"))
        # A tuple, not a set: `kind` may be any JSON value, lists included.
        elif kind in ("confirm_subscription", "reject_subscription"):
            ident = frame.get("identifier")
            sub = self._lookup(ident)
            if sub is None and kind == "confirm_subscription":
                sub = self._adopt_superseded(ident)
            if sub is None:
                pass
            elif kind == "confirm_subscription":
                self._set_sub_state(sub, SubscriptionState.CONFIRMED)
                if sub.param is not None and sub.param != self.room_param:
                    self.room_param = sub.param
                    if self._on_room_param is not None:
                        self._on_room_param(sub.param)
            elif self._next_room_param(sub) is not None:
                self._spawn(self._try_next_room_param(sub))
            else:
                self._set_sub_state(sub, SubscriptionState.REJECTED)
        elif kind == "disconnect":
            self.reliable.on_disconnect()
            reason = sanitize_reason(frame.get("reason"))
            self._disconnect = (
                reason or "disconnect",
                frame.get("reconnect") is not False,
            )
            raise _ServerDisconnect
        elif (broadcast := split_broadcast(frame)) is not None:
            return self._route_broadcast(broadcast.route, broadcast.payload)
        else:
            self._warn_once(
                "unknown_shape",
                f"Ignored a cable frame of an unknown shape ({describe_frame(frame)})",
            )
        return None

    def _route_broadcast(self, route: Any, payload: Any) -> CableEvent | None:
        """Route a broadcast in another envelope: by identifier, or by a channel's name."""
        sub = self._lookup(route)
        if sub is None:
            sub = next(
                (
                    s
                    for s in self._subs.values()
                    if s.channel == route and s.room_id is None
                ),
                None,
            )
        if sub is None:
            self._warn_once(
                "unknown_identifier", "Dropped a broadcast for an unknown subscription"
            )
            return None
        try:
            return parse_payload(sub.channel, payload, sub.room_id)
        except Exception:  # noqa: BLE001 - a bad payload must never end the connection
            self._warn_once(
                "unparsable", "Dropped a broadcast that could not be parsed"
            )
            return None

    # --- helpers ---------------------------------------------------------------------------

    def _room_candidates(self, room_id: int) -> list[str]:
        """List the room parameters to try, the one that worked before first."""
        order = [
            p
            for p in ROOM_PARAMS
            if p != "chat_room_uuid" or room_id in self._room_uuids
        ]
        if self.room_param in order:
            order.remove(self.room_param)
            order.insert(0, self.room_param)
        return order

    def _room_sub(self, room_id: int, param: str | None = None) -> Subscription:
        param = param or self._room_candidates(room_id)[0]
        uuid = self._room_uuids.get(room_id)
        value: int | str = uuid if param == "chat_room_uuid" and uuid else room_id
        ident = identifier(Channel.ROOM, **{param: value})
        return Subscription(ident, Channel.ROOM, room_id, param=param)

    def _find_room_sub(self, room_id: int) -> Subscription | None:
        return next(
            (
                s
                for s in self._subs.values()
                if s.room_id == room_id and s.channel == Channel.ROOM
            ),
            None,
        )

    def _remove_sub(self, sub: Subscription) -> None:
        self._subs.pop(sub.identifier, None)
        self._canonical.pop(canonical_identifier(sub.identifier) or "", None)

    def _next_room_param(self, sub: Subscription) -> str | None:
        """Name the parameter to try after `sub`'s was refused or went unanswered."""
        if sub.room_id is None or sub.param is None:
            return None
        order = self._room_candidates(sub.room_id)
        index = order.index(sub.param) if sub.param in order else -1
        return order[index + 1] if index + 1 < len(order) else None

    async def _try_next_room_param(
        self, sub: Subscription, *, timed_out: bool = False
    ) -> bool:
        """Replace a refused room subscription by the next candidate; False when none is left.

        One that only timed out is kept aside: if its confirmation comes late after all,
        it is taken back (see `_adopt_superseded`).
        """
        param = self._next_room_param(sub)
        if param is None or sub.room_id is None:
            return False
        if timed_out:
            self._superseded[sub.identifier] = sub
        _LOGGER.debug("Room channel refused with %s; trying %s", sub.param, param)
        self._remove_sub(sub)
        replacement = self._room_sub(sub.room_id, param)
        self._add_sub(replacement)
        # Announce the replacement (pending) before the refused one counts as answered.
        sub.state = SubscriptionState.REJECTED
        self._notify_sub(replacement)
        self._notify_sub(sub)
        await self._send_subscribe(replacement)
        return True

    def _add_sub(self, sub: Subscription) -> None:
        self._subs[sub.identifier] = sub
        if (canonical := canonical_identifier(sub.identifier)) is not None:
            self._canonical[canonical] = sub

    def _lookup(self, ident: Any) -> Subscription | None:
        if type(ident) is not str:
            return None
        return self._subs.get(ident) or self._lookup_canonical(ident)

    def _lookup_canonical(self, ident: Any) -> Subscription | None:
        if type(ident) is not str:
            return None
        canonical = canonical_identifier(ident)
        return self._canonical.get(canonical) if canonical else None

    def _adopt_superseded(self, ident: Any) -> Subscription | None:
        """Take back a room subscription given up on that was confirmed late after all."""
        if type(ident) is not str:
            return None
        old = self._superseded.pop(ident, None)
        if old is None:
            canonical = canonical_identifier(ident)
            old = next(
                (
                    self._superseded.pop(key)
                    for key in list(self._superseded)
                    if canonical_identifier(key) == canonical
                ),
                None,
            )
        if old is None or old.room_id is None:
            return None
        current = self._find_room_sub(old.room_id)
        self._add_sub(old)
        if current is not None and current is not old:
            self._remove_sub(current)
            current.state = (
                SubscriptionState.REJECTED
            )  # answered, as far as anyone cares
            self._notify_sub(current)
            ws = self._ws
            if ws is not None and not ws.closed:
                self._spawn(ws.send_str(command("unsubscribe", current.identifier)))
        return old

    def _on_welcome(self, frame: dict[str, Any]) -> None:
        if self._welcomed:
            return
        restored = self.reliable.on_welcome(frame)
        self._welcomed = True
        self._superseded.clear()  # a new connection: the server holds none of them
        self._connected_at = asyncio.get_running_loop().time()
        if self._sup is not None and self._sup.state is CableState.CONNECTING:
            self._sup.welcomed()
        self._set_status(ConnectionState.CONNECTED)
        for sub in self._subs.values():
            sub.state = SubscriptionState.PENDING
            sub.attempts = 0
        self._subscriber = asyncio.get_running_loop().create_task(
            self._subscribe_all(restored)
        )

    async def _subscribe_all(self, restored: tuple[str, ...] = ()) -> None:
        for sub in list(self._subs.values()):
            if sub.identifier in restored:
                await self._resume(sub)
            else:
                await self._send_subscribe(sub)

    async def _resume(self, sub: Subscription) -> None:
        """Take a subscription the server restored as confirmed; ask what was missed."""
        sub.sent_at = asyncio.get_running_loop().time()
        sub.attempts = 1
        self._set_sub_state(sub, SubscriptionState.CONFIRMED)
        history = self.reliable.history_command(sub.identifier)
        if isinstance(history, Fallback):
            self._notify_fallback(history)
        else:
            await self._send(history)

    async def _send(self, text: str) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(text)

    def _track(self, frame: dict[str, Any]) -> None:
        sub = self._lookup(frame.get("identifier"))
        if sub is not None and (fb := self.reliable.track(sub.identifier, frame)):
            self._notify_fallback(fb)

    def _on_history(self, kind: str, ident: Any) -> None:
        sub = self._lookup(ident)
        if sub is not None and (fb := self.reliable.on_history(kind, sub.identifier)):
            _LOGGER.debug("No history from the server (%s): reading back", fb.reason)
            self._notify_fallback(fb)

    def _notify_fallback(self, fallback: Fallback) -> None:
        for listener in tuple(self._fallback_listeners):
            try:
                listener(fallback)
            except Exception:  # noqa: BLE001 - a listener's bug must not end the cable
                self._unexpected("in a history fallback listener")

    async def _send_subscribe(
        self, sub: Subscription, *, keep_state: bool = False
    ) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return
        sub.sent_at = asyncio.get_running_loop().time()
        sub.attempts += 1
        self._kick.set()
        if not keep_state:
            sub.state = SubscriptionState.PENDING
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(self.reliable.subscribe_command(sub.identifier))

    def _set_sub_state(self, sub: Subscription, state: SubscriptionState) -> None:
        if sub.state is state:
            return
        sub.state = state
        if state is SubscriptionState.REJECTED:
            # Once per channel: it comes back at every reconnect, and a repair says it.
            self._warn_once(
                f"rejected:{sub.channel}",
                f"Circle rejected the subscription to {sub.channel}",
            )
        self._notify_sub(sub)

    def _notify_sub(self, sub: Subscription) -> None:
        for listener in tuple(self._sub_listeners):
            try:
                listener(sub)
            except Exception:  # noqa: BLE001 - a listener's bug must not end the cable
                self._unexpected("in a subscription listener")

    def _set_status(
        self,
        state: ConnectionState,
        reason: str | None = None,
        *,
        retry_in: float | None = None,
        error: CircleError | None = None,
    ) -> None:
        status = ConnectionStatus(state, reason, retry_in, error)
        self._status = status
        _LOGGER.debug("Cable %s (%s)", state, reason or "-")
        for listener in tuple(self._state_listeners):
            try:
                listener(status)
            except Exception:  # noqa: BLE001 - a listener's bug must not end the cable
                self._unexpected("in a state listener")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _warn_once(self, kind: str, message: str) -> None:
        if kind in self._warned:
            _LOGGER.debug(message)
            return
        self._warned.add(kind)
        _LOGGER.warning("%s (further ones are logged at debug level)", message)
