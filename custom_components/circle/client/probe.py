"""Connection test for users (Circle's websocket guide, in Python): prints JSON lines.

    CIRCLE_APP_TOKEN=... python -m custom_components.circle.client.probe --member-id N
        [--community https://my.community]
    CIRCLE_ACCESS_TOKEN=... python -m custom_components.circle.client.probe --member-id N

Tokens are read from the environment (`CIRCLE_APP_TOKEN`, `CIRCLE_ACCESS_TOKEN`), which wins over
`--app-token` and `--access-token` (command-line arguments show in `ps` and in shell history).
The auth API, the member API and the cable are on the Circle server (`--server`, default
https://app.circle.so); the community address is only the default Origin. `--server` follows the
config flow's address rules (`urls.normalise_url`), `--cable-url` the same with ws:// and wss://;
every address printed is scheme, host and path only (`urls.printable_url`).

Besides the cable's states and events (`"kind": "state" | "subscription" | "event"`), a second
socket checks what works (`"kind": "check"`): the cable URL, the Origin, the room channel's
parameter (for each `--room`) and the shape of each broadcast envelope seen. The last line is a
`"kind": "summary"` to paste into a bug report; it holds no token and no message content.

Exit 0 after --seconds or Ctrl-C; 2 when authentication fails; 3 when the cable cannot connect;
64 for a usage error or a refused address.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Mapping
import contextlib
import dataclasses
from datetime import datetime
import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from yarl import URL

from .api import CircleMemberApi
from .auth import AccessTokenProvider, CircleAuth, StaticAccessToken, decode_jwt_claims
from .cable import (
    CableOptions,
    CircleCable,
    ConnectionState,
    ConnectionStatus,
    Subscription,
)
from .errors import CircleError
from .models import Channel, as_id
from .probe_ext import check_server
from .protocol import (
    SUBPROTOCOLS,
    cable_url_for,
    command,
    identifier,
    sanitize_reason,
    split_broadcast,
)
from .subscriptions import MEMBER_CHANNELS
from .urls import (
    CREDENTIALS,
    INSECURE,
    AddressError,
    check_cable_url,
    normalise_url,
    printable_url,
)

if TYPE_CHECKING:
    from .models import CableEvent

EXIT_AUTH = 2
EXIT_CONNECT = 3
EXIT_USAGE = 64
ENV_APP_TOKEN: Final = "CIRCLE_APP_TOKEN"  # noqa: S105 - a variable name
ENV_ACCESS_TOKEN: Final = "CIRCLE_ACCESS_TOKEN"  # noqa: S105 - a variable name
DEFAULT_SERVER: Final = "https://app.circle.so"
# Candidates for Chats::RoomChannel's parameter, in the order the integration tries them.
ROOM_PARAMS: Final = ("chat_room_id", "id", "chat_room_uuid")
CHECK_TIMEOUT = 3.0
CONNECT_TIMEOUT = 10.0
_ENVELOPE_KEYS: Final = frozenset(
    {"identifier", "channel", "message", "data", "payload", "json"}
    | {"event", "type", "event_type", "action", "event_name", "name"}
)
# Inside `message` or `data`: `action` and `name` are too often plain fields to count.
_INNER_ENVELOPE_KEYS: Final = frozenset(
    {"message", "data", "payload", "json", "event", "type", "event_type", "event_name"}
)

Emit = Callable[[dict[str, Any]], None]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "raw"
        }
    return value


def _print(obj: dict[str, Any]) -> None:
    try:
        text = json.dumps(_jsonable(obj))
    except (ValueError, TypeError, RecursionError):
        text = json.dumps({"kind": obj.get("kind"), "error": "unprintable"})
    print(text, flush=True)  # noqa: T201 - the probe's output


def build_parser() -> argparse.ArgumentParser:
    """Arguments as documented in the README."""
    parser = argparse.ArgumentParser(
        prog="circle-probe",
        description="Test a Circle cable connection.",
        epilog=f"Tokens: prefer the environment variables {ENV_APP_TOKEN} and "
        f"{ENV_ACCESS_TOKEN} (they win over the flags).",
    )
    parser.add_argument(
        "--server",
        help=f"Circle server for auth, member API and cable (default {DEFAULT_SERVER})",
    )
    parser.add_argument("--community", help="community address: the default Origin")
    parser.add_argument(
        "--app-token", help=f"Headless Auth app token (better: ${ENV_APP_TOKEN})"
    )
    parser.add_argument("--member-id", type=int)
    parser.add_argument("--email")
    parser.add_argument(
        "--cable-url", help="cable URL (default: wss://<server host>/cable)"
    )
    parser.add_argument(
        "--access-token", help=f"a member access token (better: ${ENV_ACCESS_TOKEN})"
    )
    parser.add_argument(
        "--origin", help="Origin header (default: the community, then the server)"
    )
    parser.add_argument(
        "--room", type=int, action="append", default=[], help="also follow this room id"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after this many seconds"
    )
    return parser


def envelope_shape(frame: Any) -> str:
    """Sketch a frame's envelope: its envelope keys (two levels), never a value.

    E.g. `identifier,message{data,event}` (Rails with {event, data}) or `channel,data,event`.
    Keys that are not envelope keys (a flat payload's fields) are left out.
    """
    if not isinstance(frame, Mapping):
        return "not_object"
    parts: list[str] = []
    for key in sorted(k for k in frame if k in _ENVELOPE_KEYS):
        inner = frame[key]
        if isinstance(inner, Mapping) and key in ("message", "data", "payload"):
            keys = ",".join(sorted(k for k in inner if k in _INNER_ENVELOPE_KEYS))
            parts.append(f"{key}{{{keys}}}")
        else:
            parts.append(key)
    return ",".join(parts) or "no_envelope_keys"


class _Checker:
    """A second, raw socket that reports what works: URL, Origin, room parameter, envelopes."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, emit: Emit) -> None:
        self.ws = ws
        self.emit = emit
        self.welcomed = asyncio.Event()
        self.answers: dict[str, asyncio.Future[str]] = {}
        self.shapes: dict[str, bool] = {}
        self.disconnect: str | None = None
        self.room_params: dict[int, str | None] = {}

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
            except (ValueError, RecursionError):
                self._shape("not_json", routable=False)
                continue
            self._on_frame(frame)
        self.welcomed.set()  # closed: stop waiting

    def _on_frame(self, frame: Any) -> None:
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "welcome":
            self.welcomed.set()
        elif kind in ("confirm_subscription", "reject_subscription"):
            future = self.answers.get(frame.get("identifier"))
            if future is not None and not future.done():
                future.set_result(
                    "confirmed" if kind == "confirm_subscription" else "rejected"
                )
        elif kind == "disconnect":
            self.disconnect = sanitize_reason(frame.get("reason")) or "disconnect"
            self.welcomed.set()
        elif kind != "ping":
            self._shape(
                envelope_shape(frame), routable=split_broadcast(frame) is not None
            )

    def _shape(self, shape: str, *, routable: bool) -> None:
        if shape in self.shapes:
            return
        self.shapes[shape] = routable
        self.emit(
            {
                "kind": "check",
                "check": "envelope",
                "shape": shape,
                "routable": routable,
            }
        )

    async def subscribe(self, ident: str) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.answers[ident] = future
        try:
            await self.ws.send_str(command("subscribe", ident))
            return await asyncio.wait_for(future, CHECK_TIMEOUT)
        except TimeoutError:
            return "unanswered"
        except (ConnectionError, RuntimeError):
            return "closed"

    async def run(self, member_id: int, rooms: list[tuple[int, str | None]]) -> None:
        """Subscribe to the member channels, then find each room's parameter."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.welcomed.wait(), CHECK_TIMEOUT)
        if self.disconnect is not None or not self.welcomed.is_set():
            self.emit(
                {
                    "kind": "check",
                    "check": "welcome",
                    "ok": False,
                    "reason": self.disconnect or "no welcome",
                }
            )
            return
        self.emit({"kind": "check", "check": "welcome", "ok": True})
        for channel in MEMBER_CHANNELS:
            result = await self.subscribe(
                identifier(channel, community_member_id=member_id)
            )
            self.emit(
                {
                    "kind": "check",
                    "check": "subscription",
                    "channel": channel.value,
                    "result": result,
                }
            )
        for room_id, uuid in rooms:
            self.room_params[room_id] = None
            for param in ROOM_PARAMS:
                value: int | str | None = uuid if param == "chat_room_uuid" else room_id
                if value is None:
                    continue
                result = await self.subscribe(
                    identifier(Channel.ROOM, **{param: value})
                )
                self.emit(
                    {
                        "kind": "check",
                        "check": "room_param",
                        "room": room_id,
                        "param": param,
                        "result": result,
                    }
                )
                if result == "confirmed":
                    self.room_params[room_id] = param
                    break


async def _open_check_socket(
    session: aiohttp.ClientSession,
    cable_url: str,
    token: str,
    origins: list[str | None],
    emit: Emit,
) -> tuple[aiohttp.ClientWebSocketResponse | None, str | None]:
    """Try each Origin on the cable URL; return the socket and the Origin that worked."""
    url = printable_url(cable_url)
    for origin in origins:
        headers = {"Authorization": f"Bearer {token}"}
        if origin:
            headers["Origin"] = origin
        check = {"kind": "check", "check": "origin", "origin": _origin(origin)}
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                ws = await session.ws_connect(
                    cable_url, headers=headers, protocols=SUBPROTOCOLS, autoping=True
                )
        except aiohttp.WSServerHandshakeError as err:
            emit({**check, "ok": False, "status": err.status})
            if err.status == 404:
                continue  # Rails' answer to an Origin that is not whitelisted
            emit({"kind": "check", "check": "cable_url", "url": url, "ok": False})
            return None, None
        except (aiohttp.ClientError, OSError, ValueError, TimeoutError) as err:
            error = type(err).__name__
            emit(
                {"kind": "check", "check": "cable_url", "url": url, "ok": False}
                | {"error": error}
            )
            return None, None
        emit({"kind": "check", "check": "cable_url", "url": url, "ok": True})
        emit({**check, "ok": True})
        return ws, origin
    return None, None


_REFUSED: Final = {
    INSECURE: "http:// (ws://) is only for a loopback host: the token would travel in "
    "clear; use https:// (wss://)",
    CREDENTIALS: "user names, passwords, '@' and backslashes are not allowed",
}


def _origin(origin: str | None) -> str | None:
    """Print an Origin as scheme://host[:port] only, like every other address."""
    return None if origin is None else printable_url(origin).removesuffix("/")


def _addresses(args: argparse.Namespace) -> tuple[str, str | None] | str:
    """--server by the config flow's rules, and --cable-url by the same; else why not."""
    flag = "--server"
    try:
        server = normalise_url(args.server) if args.server else DEFAULT_SERVER
        flag = "--cable-url"
        cable_url = check_cable_url(args.cable_url) if args.cable_url else None
    except AddressError as err:
        why = _REFUSED.get(err.reason, "not a valid address")
        return f"{flag} refused: {why}"
    return server, cable_url


def _env_or(name: str, flag: str | None) -> str | None:
    return os.environ.get(name) or flag or None


def _http_url(cable_url: str) -> str:
    url = URL(cable_url)
    return str(
        url.with_scheme("https" if url.scheme == "wss" else "http").with_path("")
    )


async def _room_uuids(
    session: aiohttp.ClientSession,
    server: str,
    auth: AccessTokenProvider,
    rooms: list[int],
) -> list[tuple[int, str | None]]:
    if not rooms:
        return []
    uuids: dict[int, str] = {}
    with contextlib.suppress(CircleError):
        for room in await CircleMemberApi(session, server, auth).async_get_chat_rooms():
            if room.id is not None:
                uuids[room.id] = room.uuid
    return [(room_id, uuids.get(room_id)) for room_id in rooms]


async def _credentials(
    session: aiohttp.ClientSession, args: argparse.Namespace, server: str
) -> tuple[AccessTokenProvider, int, str] | int:
    """Return the token source, the member id and the (HTTP) server; or an exit code."""
    access_token = _env_or(ENV_ACCESS_TOKEN, args.access_token)
    if access_token:
        member_id = args.member_id
        if member_id is None:
            claims = decode_jwt_claims(access_token)
            member_id = as_id(claims.get("community_member_id"))
        if member_id is None:
            _print({"kind": "error", "message": "an access token needs --member-id"})
            return EXIT_USAGE
        if not args.server and args.cable_url:
            server = _http_url(args.cable_url)
        return StaticAccessToken(access_token), member_id, server
    app_token = _env_or(ENV_APP_TOKEN, args.app_token)
    if not (app_token and (args.member_id is not None or args.email)):
        message = f"give ${ENV_APP_TOKEN} (or --app-token) and --member-id or --email"
        _print({"kind": "error", "message": message})
        return EXIT_USAGE
    auth = CircleAuth(
        session, server, app_token, member_id=args.member_id, email=args.email
    )
    try:
        await auth.async_get_access_token()
    except CircleError as err:
        _print({"kind": "error", "message": str(err)})
        return EXIT_CONNECT if "connect" in type(err).__name__.lower() else EXIT_AUTH
    return auth, auth.member_id or 0, server


async def _check_server(
    session: aiohttp.ClientSession,
    cable_url: str,
    token: str,
    origin: str | None,
    member_id: int,
) -> dict[str, Any]:
    """Which server, and whether it replays history and restores sessions."""
    headers = {"Authorization": f"Bearer {token}"}
    if origin:
        headers["Origin"] = origin
    channels = MEMBER_CHANNELS
    identifiers = {
        c.value: identifier(c, community_member_id=member_id) for c in channels
    }
    return await check_server(session, cable_url, headers, identifiers, _print)


class _Watch:
    """Prints the cable's states, events and subscriptions; decides the exit code."""

    def __init__(self, cable: CircleCable) -> None:
        self.cable = cable
        self.code = 0
        self.connected = False
        self.stopper = asyncio.Event()
        cable.add_state_listener(self.on_state)
        cable.add_event_listener(self.on_event)
        cable.add_subscription_listener(self.on_subscription)

    def on_state(self, status: ConnectionStatus) -> None:
        _print({"kind": "state", "state": status.state.value, "reason": status.reason})
        if status.state is ConnectionState.CONNECTED:
            self.connected = True
        if status.state is ConnectionState.AUTH_FAILED:
            self.code = EXIT_AUTH
            self.stopper.set()
        elif (
            status.state is ConnectionState.DISCONNECTED
            and not self.connected
            and self.cable.reconnects >= 2
        ):
            self.code = EXIT_CONNECT
            self.stopper.set()

    @staticmethod
    def on_event(event: CableEvent) -> None:
        _print(
            {
                "kind": "event",
                "channel": event.channel,
                "event": event.name,
                "data": event.data,
            }
        )

    @staticmethod
    def on_subscription(sub: Subscription) -> None:
        _print(
            {"kind": "subscription", "channel": sub.channel, "state": sub.state.value}
        )

    async def run(self, seconds: float) -> None:
        """Hold the cable for `seconds`, or until a verdict or a signal."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.stopper.set)
        task = loop.create_task(self.cable.run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopper.wait(), seconds)
        await self.cable.stop()
        await task


async def _end_checks(
    tasks: list[asyncio.Task[None]], ws: aiohttp.ClientWebSocketResponse | None
) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if ws is not None:
        await ws.close()


async def run(args: argparse.Namespace) -> int:
    """Connect, print checks, states and events, return the exit code."""
    addresses = _addresses(args)
    if isinstance(addresses, str):
        _print({"kind": "error", "message": addresses})
        return EXIT_USAGE
    server, args.cable_url = addresses
    async with aiohttp.ClientSession() as session:
        found = await _credentials(session, args, server)
        if isinstance(found, int):
            return found
        auth, member_id, server = found
        cable_url = args.cable_url or cable_url_for(server)
        candidates = [args.origin] if args.origin else [args.community, server, None]
        origins = [o for o in dict.fromkeys(candidates) if o] or [None]
        try:
            token = await auth.async_get_access_token()
        except CircleError:
            token = ""
        check_ws, origin = await _open_check_socket(
            session, cable_url, token, origins, _print
        )
        checker = _Checker(check_ws, _print) if check_ws is not None else None
        server_report: dict[str, Any] = {}
        check_tasks: list[asyncio.Task[None]] = []
        if checker is not None:
            server_report = await _check_server(
                session, cable_url, token, origin, member_id
            )
            rooms = await _room_uuids(session, server, auth, args.room)
            check_tasks = [
                asyncio.create_task(checker.read()),
                asyncio.create_task(checker.run(member_id, rooms)),
            ]
        cable = CircleCable(
            session,
            cable_url,
            auth,
            member_id,
            origin=origin or origins[0],
            room_ids=args.room,
            options=CableOptions(),
        )
        watch = _Watch(cable)
        await watch.run(args.seconds)
        await _end_checks(check_tasks, check_ws)
        _print(
            {
                "kind": "summary",
                "cable_url": printable_url(cable_url) if check_ws is not None else None,
                "origin": _origin(origin),
                "room_params": checker.room_params if checker else {},
                "envelopes": checker.shapes if checker else {},
                "server": server_report,
                "connected": watch.connected,
                "exit": watch.code,
            }
        )
        return watch.code


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/circle-probe."""
    return asyncio.run(run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
