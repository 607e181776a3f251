"""The frame fast path: every frame of every connection passes through `read_frames`.

Measured against its floor (aiohttp's receive plus `orjson.loads`) in `scripts/bench`; see
docs/benchmarks.md. The common broadcast is handled inline with locals and plain indexing;
control frames and unusual shapes raise out of it and go to `CableSocket.on_frame`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import islice
import json
import logging
import time
from typing import Any, Final, Literal

import aiohttp

from .cable_socket import CableSocket, ServerDisconnect
from .hub import CableHub
from .models import MAX_KEY_LENGTH, CableEvent, EventName, MessageEvent
from .protocol import EVENT_CLASSES
from .subscriptions import Subscription

_LOGGER = logging.getLogger(__name__)

NEW_MESSAGE: Final = EventName.NEW_MESSAGE.value


def _stdlib_loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse with the standard library (which takes no memoryview)."""
    return json.loads(bytes(data) if isinstance(data, memoryview) else data)


json_loads: Callable[[bytes | bytearray | memoryview | str], Any]
try:  # orjson parses frames faster; it ships with Home Assistant but is not required.
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover
    json_loads = _stdlib_loads


# Keyed by plain strings: a dict of exact `str` keys takes the interpreter's fastest lookup
# (EVENT_CLASSES is keyed by the EventName members).
_CLASSES: Final[dict[str, type[CableEvent]]] = {
    str(name): cls for name, cls in EVENT_CLASSES.items()
}


def _clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """Return the loop's clock: `time.monotonic` itself when that is what it reads."""
    if type(loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


def _decode(msg: aiohttp.WSMessage, hub: CableHub) -> str | Literal[False] | None:
    """Return a binary frame's text, False for one that is not UTF-8, None at the end."""
    if msg.type is aiohttp.WSMsgType.BINARY:
        try:
            return str(msg.data.decode())
        except UnicodeDecodeError:
            hub.frames += 1
            hub.warn_once("binary", "Dropped a binary cable frame that is not UTF-8")
            return False
    if msg.type is aiohttp.WSMsgType.ERROR:
        _LOGGER.debug("Cable socket error: %s", type(msg.data).__name__)
    return None


def _trimmed(seen: dict[Any, None]) -> dict[Any, None]:
    """Keep the newest half of the delivered keys (in bulk: amortised O(1) per frame)."""
    return dict.fromkeys(islice(seen, len(seen) // 2, None))


async def read_frames(sock: CableSocket) -> None:
    """Receive, decode, route, deduplicate and dispatch every frame until the socket ends.

    Measured (docs/benchmarks.md): the clock is read without the loop's Python wrapper when
    the loop keeps monotonic time; the rearming instant is a local; the event class picked
    for the frame answers "is it a message?" without another `type()` call; the event's slots
    are set without a call to `__init__`; the last route and class are reused when the
    identifier and name compare equal (cheaper than hashing new strings).
    """
    text = aiohttp.WSMsgType.TEXT
    receive = sock.ws.receive
    loads = json_loads
    subs = sock.book.subs
    classes = _CLASSES
    message_event = MessageEvent
    book = sock.book
    hub = sock.hub
    seen = hub.seen
    seen_size = len(seen)
    # The event classes keep CableEvent's __init__ (a test checks): set its slots here.
    new = object.__new__
    # The last routed identifier and its subscription, valid while the book's version holds.
    last_ident: object = object()  # equal to no JSON value
    last_sub = Subscription("", "")
    version = book.version
    last_name: object = last_ident  # the last event name and its class
    last_cls: type[CableEvent] = message_event
    limits = sock.limits
    dedupe_size = limits.dedupe_size
    max_frame = limits.max_frame_size
    tracking = sock.reliable.active  # broadcasts carry stream positions
    clock = _clock(asyncio.get_running_loop())
    rearm_every = limits.stale_after / 8
    rearm_at = sock.armed_at + rearm_every
    while True:
        msg = await receive()
        now = sock.last_frame = clock()
        if now >= rearm_at:
            sock.arm(now)  # push the staleness deadline (a few times per period)
            rearm_at = now + rearm_every
        if msg.type is text:
            data = msg.data
        elif (data := _decode(msg, hub)) is None:
            return
        elif data is False:
            continue
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
            ident = frame["identifier"]
            # Comparing with the last identifier is cheaper than hashing a new string.
            if ident == last_ident and book.version == version:
                sub = last_sub
            else:
                sub = last_sub = subs[ident]
                last_ident, version = ident, book.version
            name = payload["event"]
            fields = payload["data"]
            if type(fields) is not dict:
                raise TypeError  # noqa: TRY301 - to the tolerant path
            if name == last_name:  # cheaper than hashing the new name string
                cls = last_cls
            else:
                cls = last_cls = classes[name]
                last_name = name
            event = new(cls)
            event.channel = sub.channel
            event.name = name
            event.data = fields
            event.room_id = sub.room_id
        except (KeyError, TypeError, IndexError):
            try:
                event = sock.on_frame(frame)
            except ServerDisconnect:
                return
            if event is None:
                continue
            cls, name, fields = type(event), event.name, event.data
        if cls is message_event:
            # Circle sends one message on several channels: deliver it once. A new message
            # is keyed by its id alone (the common case, kept cheap); edits and deletions by
            # (name, id, edited_at).
            message_id = fields.get("id")
            if type(message_id) is int or (
                type(message_id) is str and len(message_id) <= MAX_KEY_LENGTH
            ):
                edited = fields.get("edited_at")
                key: Any = (
                    message_id
                    if edited is None and name == NEW_MESSAGE
                    else (
                        name,
                        message_id,
                        edited[:MAX_KEY_LENGTH] if type(edited) is str else None,
                    )
                )
                if key in seen:
                    continue
                seen[key] = None
                seen_size += 1
                if seen_size > dedupe_size:
                    seen = hub.seen = _trimmed(seen)
                    seen_size = len(seen)
        for listener in hub.listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener's bug must not end the cable
                hub.unexpected(f"in an event listener ({name})")
