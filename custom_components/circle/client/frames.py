"""The frame fast path: every frame of every connection passes through `read_frames`.

Measured against its floor (aiohttp's receive plus `orjson.loads`) in `scripts/bench`; see
docs/benchmarks.md. The common broadcast is handled inline with locals and plain indexing;
control frames and unusual shapes raise out of it and go to `CableSocket.on_frame`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json
import logging
from typing import Any, Final

import aiohttp

from .cable_socket import CableSocket, ServerDisconnect
from .models import CableEvent, EventName, MessageEvent
from .protocol import EVENT_CLASSES

_LOGGER = logging.getLogger(__name__)

MAX_KEY_LENGTH: Final = 64
NEW_MESSAGE: Final = EventName.NEW_MESSAGE.value


def _stdlib_loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse with the standard library (which takes no memoryview)."""
    return json.loads(bytes(data) if isinstance(data, memoryview) else data)


json_loads: Callable[[bytes | bytearray | memoryview | str], Any]
try:  # orjson parses frames faster; it ships with Home Assistant but is not required.
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover
    json_loads = _stdlib_loads


def _trim(seen: dict[Any, None]) -> None:
    """Keep the newest half of the delivered keys (in place: amortised O(1) per frame)."""
    for key in list(seen)[: len(seen) // 2]:
        del seen[key]


async def read_frames(sock: CableSocket) -> None:
    """Receive, decode, route, deduplicate and dispatch every frame until the socket ends."""
    text = aiohttp.WSMsgType.TEXT
    binary = aiohttp.WSMsgType.BINARY
    receive = sock.ws.receive
    loads = json_loads
    subs = sock.book.subs
    classes = EVENT_CLASSES
    on_frame = sock.on_frame
    hub = sock.hub
    seen = hub.seen
    dedupe_size = sock.limits.dedupe_size
    max_frame = sock.limits.max_frame_size
    tracking = sock.reliable.active  # broadcasts carry stream positions
    clock = asyncio.get_running_loop().time
    rearm_every = sock.limits.stale_after / 8
    while True:
        msg = await receive()
        now = sock.last_frame = clock()
        if now - sock.armed_at >= rearm_every:
            sock.arm(now)  # push the staleness deadline (a few times per period)
        if msg.type is text:
            data = msg.data
        elif msg.type is binary:
            try:
                data = msg.data.decode()
            except UnicodeDecodeError:
                hub.frames += 1
                hub.warn_once(
                    "binary", "Dropped a binary cable frame that is not UTF-8"
                )
                continue
        else:
            if msg.type is aiohttp.WSMsgType.ERROR:
                _LOGGER.debug("Cable socket error: %s", type(msg.data).__name__)
            return
        hub.frames += 1
        if len(data) > max_frame:
            hub.warn_once(
                "oversized", f"Dropped an oversized cable frame ({len(data)} bytes)"
            )
            continue
        try:
            frame = loads(data)
        except ValueError:
            hub.warn_once("not_json", "Dropped a cable frame that is not JSON")
            continue
        if tracking and type(frame) is dict and "stream_id" in frame:
            sock.track(frame)
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
            except ServerDisconnect:
                return
            if event is None:
                continue
        if type(event) is MessageEvent:
            # Circle sends one message on several channels: deliver it once. A new message
            # is keyed by its id alone (the common case, kept cheap); edits and deletions by
            # (name, id, edited_at).
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
                if key in seen:
                    continue
                seen[key] = None
                if len(seen) > dedupe_size:
                    _trim(seen)
        for listener in hub.listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener's bug must not end the cable
                hub.unexpected(f"in an event listener ({event.name})")
