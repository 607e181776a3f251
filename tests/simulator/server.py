"""Circle on loopback: Headless Auth API, Member API and the ActionCable endpoint.

It speaks the wire protocol described in actioncable-wire.md (the way a stock Rails server
does, plus Circle's `sid` in `welcome`) and exposes fault controls under `/_sim/` for tests.
It never logs or stores a token in its request log: only which kind of bearer was used.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from typing import Any

from aiohttp import WSMsgType, web

from custom_components.circle.client.models import rich_text_to_plain

from . import anycable
from .model import (
    Community,
    SimRoom,
    chat_room_stream,
    notification_stream,
    now_iso,
    room_stream,
    seed,
    threads_stream,
)

_LOGGER = logging.getLogger(__name__)

PROTOCOL = "actioncable-v1-json"
MEMBER_CHANNELS = {
    "NotificationChannel": notification_stream,
    "ChatRoomChannel": chat_room_stream,
    "Chats::CommunityMemberThreadsChannel": threads_stream,
}
ROOM_CHANNEL = "Chats::RoomChannel"
ENVELOPES = ("event_data", "type_data", "event_flat", "type_flat")
# How a broadcast frame is built around the event (SimConfig.frame_shape), the event name under
# SimConfig.name_key where the shape carries one:
#   identifier_message   {"identifier", "message": <payload per SimConfig.envelope>} (Rails)
#   identifier_data      {"identifier", <name_key>: event, "data": data}
#   identifier_payload   {"identifier", "data": <payload per SimConfig.envelope>}
#   identifier_flat      {"identifier", <name_key>: event, **data}
#   channel_data         {"channel": <channel class>, <name_key>: event, "data": data} (Circle's sample)
FRAME_SHAPES = (
    "identifier_message",
    "identifier_data",
    "identifier_payload",
    "identifier_flat",
    "channel_data",
)
NAME_KEYS = ("event", "type", "event_type", "name")

MSG_APP_TOKEN = "Your account could not be authenticated."
MSG_NOT_ELIGIBLE = "Your community isn't eligible for headless API access. Please upgrade or contact support"
MSG_MEMBER_NOT_FOUND = "Community member not found. Please provide a valid SSO User ID, community member ID, or email."
MSG_REFRESH_NOT_FOUND = "Refresh token not found."
MSG_REFRESH_EXPIRED = (
    "The refresh token is expired. Please generate/get new auth token."
)
MSG_ACCESS_INVALID = "The access token is invalid."
MSG_ACCESS_EXPIRED = "The access token is expired."
MSG_ACCESS_REVOKED = "The access token not found."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(
    status: int, text: str, details: dict[str, Any] | None = None
) -> web.Response:
    return web.json_response(
        {"success": False, "message": text, "error_details": details or {}},
        status=status,
    )


@dataclass
class SimConfig:
    """Behaviour switches; tests change them directly or through POST /_sim/config."""

    ping_interval: float = 3.0
    envelope: str = "event_data"
    send_sid: bool = True
    refresh_bearer: str = "app_token"  # app_token | refresh_token | either
    access_ttl: float = 3600.0
    refresh_ttl: float = 30 * 24 * 3600.0
    allowed_origins: set[str] = field(default_factory=set)
    eligible: bool = True
    subscriptions: str = "normal"  # normal | reject | ignore
    room_params: tuple[str, ...] = ("chat_room_id", "id")
    # Room id -> seconds its subscribes are answered late. Rails answers from a worker pool:
    # answers to subscribes sent together can come in any order.
    answer_delays: dict[int, float] = field(default_factory=dict)
    latency: float = 0.0
    mint_not_found_status: int = 404
    frame_shape: str = "identifier_message"
    name_key: str = "event"
    # The community's own domain: this server is the "Circle server" (app.circle.so) and
    # refuses (421) any auth, member API or cable request whose Host names that domain, so a
    # client that sends the app token to the community address fails loudly. Port ignored.
    community_domain: str | None = "localhost"
    # "rails": stock Action Cable (plus Circle's sid); "anycable": anycable-go as modelled in
    # anycable.py (403 on a disallowed Origin, version header, the extended protocol).
    flavour: str = "rails"
    history_limit: int = 100  # anycable: broadcasts kept per stream
    sessions_ttl: float = 300.0  # anycable: how long a closed session can be restored
    jwt_identification: bool = False  # anycable: an expired token gets `token_expired`
    history: bool = True  # anycable: False answers every history request with a reject
    # How a disallowed Origin is refused: 404 (Rails) or 403 (AnyCable's upgrader).
    origin_refusal_status: int = 404


@dataclass
class AccessRecord:
    member_id: int
    expires: float
    revoked: bool = False


@dataclass
class RefreshRecord:
    member_id: int
    expires: float
    revoked: bool = False


@dataclass
class Fault:
    target: str  # mint | refresh | auth | rest | cable
    status: int
    count: int
    retry_after: str | None = None
    body: Any = None
    raw: bytes | None = None  # sent as is (with `headers`), instead of a JSON `body`
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SimConnection:
    ws: web.WebSocketResponse
    request: web.Request
    member_id: int
    token_kind: str
    sid: str
    subscriptions: dict[str, str] = field(default_factory=dict)  # identifier -> stream
    received: list[str] = field(default_factory=list)
    silent: bool = False
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    protocol: str | None = None
    restored: bool = False
    pongs: int = 0


class CircleSimulator:
    """The app plus the state behind it. `await start()` binds; `await stop()` frees everything."""

    def __init__(self, config: SimConfig | None = None, *, demo: bool = False) -> None:
        self.config = config or SimConfig()
        self.community = Community()
        self.community.publish = self.publish
        self.seeded = seed(self.community)
        self.app_token = "app_" + secrets.token_urlsafe(24)
        self._secret = secrets.token_bytes(32)
        self.access_tokens: dict[str, AccessRecord] = {}
        self.refresh_tokens: dict[str, RefreshRecord] = {}
        self.faults: list[Fault] = []
        self.connections: list[SimConnection] = []
        self.requests: list[dict[str, Any]] = []
        self.misdirected = 0
        self.published: list[tuple[str, str, dict[str, Any]]] = []
        self.broker = anycable.Broker()
        self.demo = demo
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.url = ""
        self.port = 0
        self.app = self._build_app()

    # --- lifecycle -------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_post("/api/v1/headless/auth_token", self._mint)
        r.add_patch("/api/v1/headless/access_token/refresh", self._refresh)
        r.add_post("/api/v1/headless/access_token/revoke", self._revoke_access)
        r.add_post("/api/v1/headless/refresh_token/revoke", self._revoke_refresh)
        p = "/api/headless/v1"
        r.add_get(p + "/community_member", self._member)
        r.add_get(p + "/notifications", self._notifications)
        r.add_get(p + "/notifications/new_notifications_count", self._new_count)
        r.add_post(
            p + "/notifications/reset_new_notifications_count", self._reset_count
        )
        r.add_post(p + "/notifications/mark_all_as_read", self._mark_all_notifications)
        r.add_post(p + "/notifications/{id}/mark_as_read", self._mark_notification)
        r.add_get(p + "/messages", self._rooms)
        r.add_get(p + "/messages/unread_chat_rooms", self._unread_rooms)
        r.add_get(p + "/messages/{uuid}", self._room)
        r.add_post(p + "/messages/{uuid}/mark_all_as_read", self._mark_room_read)
        r.add_get(p + "/messages/{uuid}/chat_room_messages", self._messages)
        r.add_post(p + "/messages/{uuid}/chat_room_messages", self._send)
        r.add_get(p + "/chat_threads/unread_chat_threads", self._unread_threads)
        r.add_get("/cable", self._cable)
        r.add_get("/_sim/state", self._ctl_state)
        r.add_post("/_sim/{action}", self._ctl)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{self.port}"
        if self.config.community_domain and _hostname(host) == (
            self.config.community_domain.lower()
        ):
            self.config.community_domain = (
                None  # served under that name: nothing to refuse
            )
        if not self.config.allowed_origins:
            self.config.allowed_origins = {self.url}
            if self.config.community_domain:
                # The community address is the usual whitelisted Origin.
                self.config.allowed_origins.add(self.community_url)
        self._spawn(self._pinger())
        if self.demo:
            self._spawn(self._demo())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in list(self.connections):
            if conn.request.transport is not None:
                conn.request.transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def cable_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/cable"

    @property
    def origin(self) -> str:
        return self.url

    @property
    def community_url(self) -> str:
        """The community's address (same socket, other Host): refused for API and cable."""
        return f"http://{self.config.community_domain or 'localhost'}:{self.port}"

    @property
    def anycable(self) -> bool:
        """Whether this server plays anycable-go (SimConfig.flavour)."""
        return self.config.flavour == "anycable"

    @property
    def member_id(self) -> int:
        return int(self.seeded["me"].id)

    def info(self) -> dict[str, Any]:
        me = self.seeded["me"]
        return {
            "url": self.url,
            "cable_url": self.cable_url,
            "app_token": self.app_token,
            "member_id": me.id,
            "member_email": me.email,
            "origin": self.origin,
            "flavour": self.config.flavour,
        }

    # --- tokens ----------------------------------------------------------------------------

    def _jwt(self, member_id: int, exp: float) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(
            json.dumps(
                {
                    "community_id": self.community.community_id,
                    "community_member_id": member_id,
                    "exp": int(exp),
                    "jti": secrets.token_hex(8),
                }
            ).encode()
        )
        sig = hmac.new(
            self._secret, f"{header}.{payload}".encode(), hashlib.sha256
        ).digest()
        return f"{header}.{payload}.{_b64(sig)}"

    def issue_access(self, member_id: int) -> tuple[str, float]:
        exp = time.time() + self.config.access_ttl
        token = self._jwt(member_id, exp)
        self.access_tokens[token] = AccessRecord(member_id, exp)
        return token, exp

    def issue_tokens(self, member_id: int) -> dict[str, Any]:
        access, exp = self.issue_access(member_id)
        refresh = secrets.token_urlsafe(32)
        refresh_exp = time.time() + self.config.refresh_ttl
        self.refresh_tokens[refresh] = RefreshRecord(member_id, refresh_exp)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "access_token_expires_at": _iso(datetime.fromtimestamp(exp, UTC)),
            "refresh_token_expires_at": _iso(datetime.fromtimestamp(refresh_exp, UTC)),
            "community_member_id": member_id,
            "community_id": self.community.community_id,
        }

    def check_access(self, token: str | None) -> tuple[int | None, str]:
        """Return (member id, "") or (None, Circle's 401 message)."""
        record = self.access_tokens.get(token or "")
        if record is None:
            return None, MSG_ACCESS_INVALID
        if record.revoked:
            return None, MSG_ACCESS_REVOKED
        if record.expires <= time.time():
            return None, MSG_ACCESS_EXPIRED
        return record.member_id, ""

    def token_kind(self, token: str | None) -> str:
        if not token:
            return "none"
        if token == self.app_token:
            return "app_token"
        if token in self.refresh_tokens:
            return "refresh_token"
        if token in self.access_tokens:
            return "access_token"
        return "unknown"

    # --- fault controls (Python API; the HTTP control API calls these) ---------------------

    def add_fault(
        self,
        target: str,
        status: int,
        count: int = 1,
        retry_after: str | None = None,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `count` calls to `target` with `status` (and `body`, if given).

        `raw` sends those bytes as the body instead (Content-Type from `headers`, else JSON),
        for hostile answers: non-UTF-8, HTML, truncated or deeply nested JSON; `headers` adds
        any header (Location, Retry-After, ...).
        """
        self.faults.append(
            Fault(target, status, count, retry_after, body, raw, dict(headers or {}))
        )

    def _take_fault(self, targets: tuple[str, ...]) -> web.Response | None:
        for fault in self.faults:
            if fault.target in targets and fault.count > 0:
                fault.count -= 1
                headers = dict(fault.headers)
                if fault.retry_after is not None:
                    headers["Retry-After"] = fault.retry_after
                if fault.raw is not None:
                    headers.setdefault("Content-Type", "application/json")
                    return web.Response(
                        body=fault.raw, status=fault.status, headers=headers
                    )
                body = fault.body
                if body is None:
                    body = {
                        "success": False,
                        "message": f"Simulated {fault.status}",
                        "error_details": {},
                    }
                return web.json_response(body, status=fault.status, headers=headers)
        return None

    def expire_access_tokens(self) -> None:
        for record in self.access_tokens.values():
            record.expires = time.time() - 1

    def revoke_tokens(self, kind: str = "access") -> None:
        records = self.access_tokens if kind == "access" else self.refresh_tokens
        for record in records.values():
            record.revoked = True

    def expire_refresh_tokens(self) -> None:
        for record in self.refresh_tokens.values():
            record.expires = time.time() - 1

    def rotate_app_token(self) -> str:
        """Revoke the app token (the admin deleted it); a new one is returned."""
        self.app_token = "app_" + secrets.token_urlsafe(24)
        return self.app_token

    def drop_connections(self) -> int:
        """Kill every socket without a close frame (process killed / network drop)."""
        count = 0
        for conn in list(self.connections):
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
                count += 1
        return count

    async def disconnect_all(
        self, reason: str | None = "server_restart", reconnect: bool = True
    ) -> None:
        """Send `disconnect` (unless reason is None, as Rails 6.1 does) and close with 1000."""
        for conn in list(self.connections):
            if reason is not None:
                await self._send_now(
                    conn,
                    {"type": "disconnect", "reason": reason, "reconnect": reconnect},
                )
            await conn.ws.close(code=1000, message=b"")

    def silence(self) -> None:
        """Existing sockets stay open but get nothing more: a half-open connection."""
        for conn in self.connections:
            conn.silent = True

    def send_raw(self, text: str) -> None:
        for conn in self.connections:
            self._enqueue(conn, text)

    async def send_binary(self, data: bytes) -> None:
        for conn in self.connections:
            await conn.ws.send_bytes(data)

    def publish(
        self,
        stream: str,
        event: str,
        data: dict[str, Any],
        envelope: str | None = None,
        *,
        frame_shape: str | None = None,
        name_key: str | None = None,
    ) -> int:
        """Broadcast an event to every connection subscribed to `stream`; returns how many.

        The frame is built per `frame_shape` and `name_key` (default: the config's).
        """
        self.published.append((stream, event, data))
        shape = frame_shape or self.config.frame_shape
        key = name_key or self.config.name_key
        if shape not in FRAME_SHAPES:
            raise ValueError(f"unknown frame shape {shape}")
        if key not in NAME_KEYS:
            raise ValueError(f"unknown name key {key}")
        payload = self.envelope(event, data, envelope or self.config.envelope)
        position = (
            self.broker.record(stream, payload, self.config.history_limit)
            if self.anycable
            else None
        )
        sent = 0
        for conn in self.connections:
            for ident, subscribed in conn.subscriptions.items():
                if subscribed == stream:
                    if position is not None and conn.protocol == anycable.EXT_PROTOCOL:
                        frame = self.broker.frame(ident, stream, position[1], payload)
                    elif shape == "identifier_message":
                        frame = {"identifier": ident, "message": payload}
                    else:
                        frame = self.frame(ident, shape, key, event, data, payload)
                    self._enqueue(conn, json.dumps(frame))
                    sent += 1
        return sent

    @staticmethod
    def frame(
        ident: str,
        shape: str,
        name_key: str,
        event: str,
        data: dict[str, Any],
        payload: dict[str, Any],
    ) -> dict[str, Any]:
        """A broadcast frame of another shape than Rails' {"identifier", "message"}."""
        if shape == "identifier_data":
            return {"identifier": ident, name_key: event, "data": data}
        if shape == "identifier_payload":
            return {"identifier": ident, "data": payload}
        if shape == "identifier_flat":
            return {**data, "identifier": ident, name_key: event}
        try:
            channel = json.loads(ident).get("channel")
        except (ValueError, AttributeError):
            channel = None
        return {"channel": channel, name_key: event, "data": data}

    @staticmethod
    def envelope(event: str, data: dict[str, Any], kind: str) -> dict[str, Any]:
        if kind == "event_data":
            return {"event": event, "data": data}
        if kind == "type_data":
            return {"type": event, "data": data}
        if kind == "event_flat":
            return {"event": event, **data}
        if kind == "type_flat":
            return {"type": event, **data}
        raise ValueError(f"unknown envelope {kind}")

    # --- HTTP ------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Any
    ) -> web.StreamResponse:
        if not request.path.startswith("/_sim/"):
            domain = self.config.community_domain
            if domain and _hostname(request.host) == domain.lower():
                # Never log or keep the bearer: only that a request went to the wrong host.
                self.misdirected += 1
                self.requests.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "bearer": self.token_kind(_bearer(request)),
                        "misdirected": True,
                        "at": time.time(),
                    }
                )
                return _error(
                    421,
                    "This server is the Circle server, not the community's domain.",
                )
            token = _bearer(request)
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "bearer": self.token_kind(token),
                    "at": time.time(),
                }
            )
            if self.config.latency:
                await asyncio.sleep(self.config.latency)
        return await handler(request)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    async def _mint(self, request: web.Request) -> web.Response:
        if (fault := self._take_fault(("mint", "auth"))) is not None:
            return fault
        if _bearer(request) != self.app_token:
            return _error(401, MSG_APP_TOKEN)
        if not self.config.eligible:
            return _error(403, MSG_NOT_ELIGIBLE)
        body = await self._body(request)
        member = self.community.member_by(
            sso=body.get("sso_user_id"),
            member_id=body.get("community_member_id"),
            email=body.get("email"),
        )
        if member is None:
            if self.config.mint_not_found_status == 422:
                return _error(
                    422,
                    "There was an error creating the token. Please contact support.",
                    {"message": "Record invalid"},
                )
            return _error(404, MSG_MEMBER_NOT_FOUND)
        return web.json_response(self.issue_tokens(member.id))

    async def _refresh(self, request: web.Request) -> web.Response:
        if (fault := self._take_fault(("refresh", "auth"))) is not None:
            return fault
        body = await self._body(request)
        refresh = body.get("refresh_token")
        bearer = _bearer(request)
        mode = self.config.refresh_bearer
        ok = (mode in ("app_token", "either") and bearer == self.app_token) or (
            mode in ("refresh_token", "either")
            and bearer is not None
            and bearer == refresh
        )
        if not ok:
            return _error(401, MSG_APP_TOKEN)
        if not self.config.eligible:
            return _error(403, MSG_NOT_ELIGIBLE)
        record = self.refresh_tokens.get(refresh) if isinstance(refresh, str) else None
        if record is None or record.revoked:
            return _error(404, MSG_REFRESH_NOT_FOUND)
        if record.expires <= time.time():
            return _error(401, MSG_REFRESH_EXPIRED)
        access, exp = self.issue_access(record.member_id)
        return web.json_response(
            {
                "access_token": access,
                "access_token_expires_at": _iso(datetime.fromtimestamp(exp, UTC)),
            }
        )

    async def _revoke_access(self, request: web.Request) -> web.Response:
        if (fault := self._take_fault(("revoke",))) is not None:
            return fault
        if _bearer(request) != self.app_token:
            return _error(401, MSG_APP_TOKEN)
        token = (await self._body(request)).get("access_token")
        if not token:
            return _error(404, "Missing parameter: access_token")
        record = self.access_tokens.get(token)
        if record is None or record.revoked or record.expires <= time.time():
            return _error(422, "The access token not found.")
        record.revoked = True
        return web.Response(status=204)

    async def _revoke_refresh(self, request: web.Request) -> web.Response:
        if (fault := self._take_fault(("revoke",))) is not None:
            return fault
        if _bearer(request) != self.app_token:
            return _error(401, MSG_APP_TOKEN)
        token = (await self._body(request)).get("refresh_token")
        if not token:
            return _error(404, "Missing parameter: refresh_token")
        record = self.refresh_tokens.get(token)
        if record is None or record.revoked:
            return _error(404, "Invalid refresh token.")
        record.revoked = True
        return web.Response(status=204)

    def _authed(self, request: web.Request) -> tuple[int | None, web.Response | None]:
        if (fault := self._take_fault(("rest",))) is not None:
            return None, fault
        member_id, message = self.check_access(_bearer(request))
        if member_id is None:
            return None, _error(401, message)
        return member_id, None

    def _room_for(self, request: web.Request, member_id: int) -> SimRoom | None:
        room = self.community.room_by_uuid(request.match_info["uuid"])
        return room if room is not None and member_id in room.participants else None

    async def _member(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        m = self.community.members[member_id]
        return web.json_response(
            {
                "id": m.id,
                "name": m.name,
                "email": m.email,
                "public_uid": f"u{m.id:04x}",
                "active": True,
                "roles": {"admin": False, "moderator": False},
                "features": {"messaging_enabled": True},
            }
        )

    async def _notifications(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        page = int(request.query.get("page", 1))
        per_page = int(request.query.get("per_page", 20))
        status = request.query.get("status", "all")
        items = [n for n in self.community.notifications if n.member_id == member_id]
        if status == "unread":
            items = [n for n in items if n.read_at is None]
        elif status == "read":
            items = [n for n in items if n.read_at is not None]
        items.reverse()
        chunk = items[(page - 1) * per_page : page * per_page]
        return web.json_response(
            {
                "page": page,
                "per_page": per_page,
                "has_next_page": page * per_page < len(items),
                "count": len(items),
                "page_count": max(1, -(-len(items) // per_page)),
                "records": [self.community.notification_json(n) for n in chunk],
            }
        )

    async def _new_count(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        count = self.community.members[member_id].new_notifications_count
        return web.json_response(
            {
                "new_notifications_count": count,
                "new_mentions_count": 0,
                "new_inbox_count": count,
            }
        )

    async def _reset_count(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        self.community.reset_notifications(member_id)
        return web.json_response({"new_notifications_count": 0})

    async def _mark_all_notifications(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        self.community.mark_all_notifications_read(member_id)
        return web.Response(status=200)

    async def _mark_notification(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        wanted = request.match_info["id"]
        found = next(
            (
                n
                for n in self.community.notifications
                if str(n.id) == wanted and n.member_id == member_id
            ),
            None,
        )
        if found is None:
            return _error(404, "Notification not found.")
        found.read_at = found.read_at or now_iso()
        return web.json_response(self.community.notification_json(found))

    async def _rooms(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        page = int(request.query.get("page", 1))
        per_page = int(request.query.get("per_page", 10))
        rooms = [r for r in self.community.rooms_of(member_id) if not r.embedded]
        chunk = rooms[(page - 1) * per_page : page * per_page]
        return web.json_response(
            {
                "page": page,
                "per_page": per_page,
                "has_next_page": page * per_page < len(rooms),
                "count": len(rooms),
                "page_count": max(1, -(-len(rooms) // per_page)),
                "records": [self.community.room_json(r, member_id) for r in chunk],
            }
        )

    async def _unread_rooms(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        return web.json_response(
            {"chat_rooms": [r.uuid for r in self.community.unread_rooms(member_id)]}
        )

    async def _room(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        room = self._room_for(request, member_id)
        if room is None:
            return _error(404, "Chat room not found.")
        return web.json_response(
            {"chat_room": self.community.room_json(room, member_id)}
        )

    async def _mark_room_read(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        room = self._room_for(request, member_id)
        if room is None:
            return _error(404, "Chat room not found.")
        self.community.mark_room_read(room, member_id)
        return web.json_response({})

    async def _messages(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        room = self._room_for(request, member_id)
        if room is None:
            return _error(404, "Chat room not found.")
        previous = int(request.query.get("previous_per_page", 20))
        following = int(request.query.get("next_per_page", 20))
        top = [m for m in room.messages if m.parent_message_id is None]
        if "id" in request.query:
            cursor = int(request.query["id"])
            index = next((i for i, m in enumerate(top) if m.id >= cursor), len(top))
            if index < len(top) and top[index].id == cursor:
                window = top[max(0, index - previous) : index + 1 + following]
                start = max(0, index - previous)
            else:
                window = top[max(0, index - previous) : index + following]
                start = max(0, index - previous)
        else:
            start = max(0, len(top) - 1 - previous)
            window = top[start:]
        end = start + len(window)
        return web.json_response(
            {
                "id": window[-1].id if window else None,
                "has_previous_page": start > 0,
                "has_next_page": end < len(top),
                "first_id": top[0].id if top else None,
                "last_id": top[-1].id if top else None,
                "total_count": len(top),
                "records": [self.community.message_json(m) for m in window],
            }
        )

    async def _send(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        room = self._room_for(request, member_id)
        if room is None:
            return _error(404, "Chat room not found.")
        body = await self._body(request)
        rich = body.get("rich_text_body")
        if not isinstance(rich, dict):
            return _error(422, "rich_text_body is required")
        parent = body.get("parent_message_id")
        message = self.community.post_message(
            room, member_id, rich_text_to_plain(rich), parent
        )
        return web.json_response(
            {
                "creation_uuid": message.creation_uuid,
                "parent_message_id": parent,
                "sent_at": message.sent_at,
            },
            status=202,
        )

    async def _unread_threads(self, request: web.Request) -> web.Response:
        member_id, err = self._authed(request)
        if member_id is None:
            return err if err is not None else _error(401, MSG_ACCESS_INVALID)
        return web.json_response({"chat_thread_ids": []})

    # --- cable -----------------------------------------------------------------------------

    async def _cable(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if self.config.allowed_origins and origin not in self.config.allowed_origins:
            if self.anycable:  # Go's websocket upgrader (CheckOrigin)
                return web.Response(status=403, text="Forbidden\n")
            status = self.config.origin_refusal_status
            return web.Response(status=status, text="Page not found")
        if (fault := self._take_fault(("cable",))) is not None:
            return fault
        protocols = anycable.PROTOCOLS if self.anycable else (PROTOCOL,)
        ws = web.WebSocketResponse(protocols=protocols, autoping=True)
        if self.anycable:
            ws.headers["X-AnyCable-Version"] = anycable.VERSION
        await ws.prepare(request)
        token = _bearer(request)
        member_id, why = self.check_access(token)
        if member_id is None:
            expired = self.config.jwt_identification and why == MSG_ACCESS_EXPIRED
            reason = "token_expired" if self.anycable and expired else "unauthorized"
            await ws.send_str(
                json.dumps({"type": "disconnect", "reason": reason, "reconnect": False})
            )
            await ws.close(code=1000, message=b"")
            return ws
        conn = SimConnection(
            ws,
            request,
            member_id,
            self.token_kind(token),
            anycable.nanoid(21) if self.anycable else secrets.token_urlsafe(15)[:21],
            protocol=ws.ws_protocol,
        )
        self.connections.append(conn)
        writer = self._spawn(self._writer(conn))
        welcome: dict[str, Any] = {"type": "welcome"}
        if self.config.send_sid:
            welcome["sid"] = conn.sid
        if conn.protocol == anycable.EXT_PROTOCOL and self.anycable:
            welcome = anycable.welcome(conn.sid, self._restore(conn, request))
        self._enqueue(conn, json.dumps(welcome))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                conn.received.append(msg.data)
                self._on_command(conn, msg.data)
        finally:
            self.connections.remove(conn)
            conn.queue.put_nowait(None)
            writer.cancel()
            self._commit(conn)
        return ws

    def _restore(self, conn: SimConnection, request: web.Request) -> list[str] | None:
        """Take over a previous session's subscriptions (ext protocol); their ids, or None."""
        old = anycable.restore_sid(request.headers, request.query)
        if old is None:
            return None
        subs = self.broker.restore_session(old, conn.member_id)
        if subs is None:
            return None
        conn.subscriptions.update(subs)
        conn.restored = True
        self._commit(conn)
        return list(subs)

    def _commit(self, conn: SimConnection) -> None:
        if self.anycable and conn.protocol == anycable.EXT_PROTOCOL:
            self.broker.commit_session(
                conn.sid, conn.member_id, conn.subscriptions, self.config.sessions_ttl
            )

    def _on_command(self, conn: SimConnection, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            return  # Rails only logs it
        if not isinstance(frame, dict):
            return
        ident = frame.get("identifier")
        cmd = frame.get("command")
        if cmd == "unsubscribe" and isinstance(ident, str):
            conn.subscriptions.pop(ident, None)
            return
        if self._ext(conn) and cmd in ("history", "pong"):
            if cmd == "pong":
                conn.pongs += 1
            elif isinstance(ident, str) and ident in conn.subscriptions:
                self._send_history(conn, ident, frame.get("history"))
            return  # anycable-go: history for an unknown subscription is only logged
        if cmd != "subscribe" or not isinstance(ident, str):
            return
        try:
            params = json.loads(ident)
        except ValueError:
            return
        if not isinstance(params, dict):
            return
        channel = params.get("channel")
        if channel not in MEMBER_CHANNELS and channel != ROOM_CHANNEL:
            return  # unknown channel: silence
        if ident in conn.subscriptions or self.config.subscriptions == "ignore":
            return  # duplicate subscribe: silence
        stream = self._authorize(conn, channel, params)
        late = self._answer_delay(channel, params)
        if stream is None or self.config.subscriptions == "reject":
            self._answer(conn, ident, "reject_subscription", late)
            return
        conn.subscriptions[ident] = stream
        self._answer(conn, ident, "confirm_subscription", late)
        if self._ext(conn):
            self._commit(conn)
            history = frame.get("history")
            if isinstance(history, dict) and (
                history.get("since") or history.get("streams") is not None
            ):
                self._send_history(conn, ident, history)

    def _answer(self, conn: SimConnection, ident: str, kind: str, late: float) -> None:
        text = json.dumps({"identifier": ident, "type": kind})
        if late:
            asyncio.get_running_loop().call_later(late, self._enqueue, conn, text)
        else:
            self._enqueue(conn, text)

    def _answer_delay(self, channel: Any, params: dict[str, Any]) -> float:
        if channel != ROOM_CHANNEL or not self.config.answer_delays:
            return 0.0
        community = self.community
        for value in params.values():
            room = (
                community.rooms.get(value)
                if isinstance(value, int)
                else community.room_by_uuid(value)
                if isinstance(value, str)
                else None
            )
            if room is not None:
                return self.config.answer_delays.get(room.id, 0.0)
        return 0.0

    def _ext(self, conn: SimConnection) -> bool:
        return self.anycable and conn.protocol == anycable.EXT_PROTOCOL

    def _send_history(self, conn: SimConnection, ident: str, request: Any) -> None:
        """Replay what the request asks for, then confirm_history; or reject_history."""
        backlog = (
            self.broker.history([conn.subscriptions[ident]], request)
            if self.config.history
            else None
        )
        if backlog is None:
            self._enqueue(
                conn, json.dumps({"type": "reject_history", "identifier": ident})
            )
            return
        for stream, offset, payload in backlog:
            self._enqueue(
                conn, json.dumps(self.broker.frame(ident, stream, offset, payload))
            )
        self._enqueue(
            conn, json.dumps({"type": "confirm_history", "identifier": ident})
        )

    def _authorize(
        self, conn: SimConnection, channel: str, params: dict[str, Any]
    ) -> str | None:
        if channel in MEMBER_CHANNELS:
            if params.get("community_member_id") != conn.member_id:
                return None
            return MEMBER_CHANNELS[channel](conn.member_id)
        key = next((k for k in self.config.room_params if k in params), None)
        value = params.get(key) if key is not None else None
        if key == "chat_room_uuid":
            room = (
                self.community.room_by_uuid(value) if isinstance(value, str) else None
            )
        else:
            room = self.community.rooms.get(value) if isinstance(value, int) else None
        if room is None or conn.member_id not in room.participants:
            return None
        return room_stream(room.id)

    def _enqueue(self, conn: SimConnection, text: str) -> None:
        if not conn.silent:
            conn.queue.put_nowait(text)

    async def _send_now(self, conn: SimConnection, frame: dict[str, Any]) -> None:
        # Flush what is queued first so the disconnect frame comes last.
        while not conn.queue.empty():
            await asyncio.sleep(0)
        await conn.ws.send_str(json.dumps(frame))

    async def _writer(self, conn: SimConnection) -> None:
        while (text := await conn.queue.get()) is not None:
            if conn.ws.closed:
                return
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _pinger(self) -> None:
        while True:
            await asyncio.sleep(self.config.ping_interval)
            frame = json.dumps({"type": "ping", "message": int(time.time())})
            for conn in self.connections:
                self._enqueue(conn, frame)

    async def _demo(self) -> None:
        """A lively community: a message or notification every few seconds."""
        c = self.community
        s = self.seeded
        lines = [
            "Has anyone tried the new engine?",
            "Coffee at 3?",
            "Notes are up.",
            "Nice work!",
            "See you there.",
        ]
        rng = random.Random(7)
        while True:
            await asyncio.sleep(rng.uniform(2.0, 4.0))
            roll = rng.random()
            if roll < 0.55:
                room = rng.choice([s["dm"], s["group"]])
                sender = (
                    s["ada"] if room is s["dm"] else rng.choice([s["ada"], s["alan"]])
                )
                c.post_message(room, sender.id, rng.choice(lines))
            elif roll < 0.85:
                c.notify(
                    s["me"].id, actor_name=rng.choice(["Ada Lovelace", "Alan Turing"])
                )
            elif roll < 0.95:
                unread = c.unread_rooms(s["me"].id)
                if unread:
                    c.mark_room_read(rng.choice(unread), s["me"].id)
            else:
                c.reset_notifications(s["me"].id)

    # --- HTTP control API ------------------------------------------------------------------

    async def _ctl_state(self, request: web.Request) -> web.Response:
        me = self.seeded["me"]
        return web.json_response(
            {
                "connections": [
                    {
                        "member_id": c.member_id,
                        "sid": c.sid,
                        "subscriptions": list(c.subscriptions),
                        "received": c.received,
                        "silent": c.silent,
                        "protocol": c.protocol,
                        "restored": c.restored,
                        "pongs": c.pongs,
                    }
                    for c in self.connections
                ],
                "requests": self.requests[-500:],
                "flavour": self.config.flavour,
                "epoch": self.broker.epoch if self.anycable else None,
                "new_notifications_count": me.new_notifications_count,
                "unread_chat_rooms": [
                    r.uuid for r in self.community.unread_rooms(me.id)
                ],
                "rooms": [
                    {
                        "id": r.id,
                        "uuid": r.uuid,
                        "name": r.name,
                        "kind": r.kind,
                        "embedded": r.embedded,
                        "message_ids": [m.id for m in r.messages],
                        "messages": [
                            {
                                "id": m.id,
                                "sender_id": m.sender_id,
                                "parent_message_id": m.parent_message_id,
                            }
                            for m in r.messages
                        ],
                    }
                    for r in self.community.rooms.values()
                ],
                "members": [
                    {"id": m.id, "name": m.name}
                    for m in self.community.members.values()
                ],
            }
        )

    async def _ctl(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        body = await self._body(request)
        c = self.community
        result: Any = None
        if action == "config":
            for key, value in body.items():
                if not hasattr(self.config, key):
                    return web.json_response(
                        {"error": f"unknown setting {key}"}, status=400
                    )
                setattr(
                    self.config, key, set(value) if key == "allowed_origins" else value
                )
        elif action == "drop":
            result = self.drop_connections()
        elif action == "disconnect":
            reason = body.get("reason", "server_restart")
            default = anycable.DISCONNECT_REASONS.get(reason, True)
            await self.disconnect_all(reason, body.get("reconnect", default))
        elif action == "bump_epoch":
            result = self.broker.bump_epoch()
        elif action == "forget_stream":
            self.broker.forget_stream(body.get("stream", ""))
        elif action == "expire_sessions":
            self.broker.expire_sessions()
        elif action == "silence":
            self.silence()
        elif action == "expire_tokens":
            self.expire_access_tokens()
        elif action == "revoke_tokens":
            self.revoke_tokens(body.get("kind", "access"))
        elif action == "revoke_app_token":
            self.rotate_app_token()
        elif action == "fault":
            raw = body.get("raw")
            self.add_fault(
                body["target"],
                int(body["status"]),
                int(body.get("count", 1)),
                body.get("retry_after"),
                body.get("body"),
                raw=raw.encode("latin-1") if isinstance(raw, str) else None,
                headers=body.get("headers"),
            )
        elif action == "frame":
            self.send_raw(fault_frame(body.get("kind", "raw"), body.get("data", "")))
        elif action == "inject":
            try:
                result = self.publish(
                    body["stream"],
                    body["event"],
                    body.get("data", {}),
                    body.get("envelope"),
                    frame_shape=body.get("frame_shape"),
                    name_key=body.get("name_key"),
                )
            except ValueError as err:
                return web.json_response({"error": str(err)}, status=400)
        elif action == "message":
            room = c.rooms.get(body.get("room_id")) or c.room_by_uuid(
                body.get("room_uuid", "")
            )
            if room is None:
                return web.json_response({"error": "no such room"}, status=404)
            sender = body.get("sender_id") or next(
                m for m in room.participants if m != self.member_id
            )
            message = c.post_message(
                room, sender, body.get("text", "Hello"), body.get("parent_message_id")
            )
            result = {"id": message.id, "room_uuid": room.uuid}
        elif action in (
            "read",
            "edit",
            "delete_message",
            "delete_room",
            "pin",
            "unpin",
            "rename",
        ):
            room = c.rooms.get(body.get("room_id")) or c.room_by_uuid(
                body.get("room_uuid", "")
            )
            if room is None:
                return web.json_response({"error": "no such room"}, status=404)
            member_id = body.get("member_id", self.member_id)
            message = next(
                (m for m in room.messages if m.id == body.get("message_id")), None
            )
            if action == "read":
                c.mark_room_read(room, member_id)
            elif action == "rename":
                c.update_room(room, name=body.get("name", room.name))
            elif action in ("pin", "unpin"):
                c.pin_room(room, member_id, pinned=action == "pin")
            elif action == "delete_room":
                c.delete_room(room)
            elif message is None:
                return web.json_response({"error": "no such message"}, status=404)
            elif action == "edit":
                c.edit_message(room, message, body.get("text", message.body))
            else:
                c.delete_message(room, message)
        elif action == "create_room":
            members = [self.member_id, *body.get("member_ids", [self.seeded["ada"].id])]
            room = c.create_room(
                body.get("kind", "group_chat"), body.get("name", "New room"), members
            )
            result = {"id": room.id, "uuid": room.uuid}
        elif action == "reset_notifications":
            c.reset_notifications(body.get("member_id", self.member_id))
        elif action == "notification":
            result = {
                "id": c.notify(
                    body.get("member_id", self.member_id), body.get("actor_name", "Ada")
                ).id
            }
        else:
            return web.json_response({"error": f"unknown action {action}"}, status=404)
        return web.json_response({"ok": True, "result": result})


def fault_frame(kind: str, data: str) -> str:
    if kind == "truncated":
        return '{"type":"ping","message":17'
    if kind == "non_json":
        return "<html>oops</html>"
    if kind == "oversized":
        return json.dumps({"type": "ping", "message": "x" * (2 * 1024 * 1024)})
    if kind == "malformed":
        return json.dumps({"identifier": 42, "message": None})
    return data


def _hostname(host: str) -> str:
    """The host name of a Host header, without the port ("[::1]:80" -> "::1")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None
