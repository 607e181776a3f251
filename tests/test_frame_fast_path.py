"""The frame fast path's shortcuts give the same events as the plain code would.

`read_frames` builds events without calling `__init__`, reuses the last route and the last
event class, and counts the de-duplication keys itself; each shortcut must be invisible.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from custom_components.circle.client import (
    CableEvent,
    CableOptions,
    Channel,
    CircleCable,
    StaticAccessToken,
)
from custom_components.circle.client.frames import read_frames
from custom_components.circle.client.protocol import EVENT_CLASSES, identifier
from custom_components.circle.client.subscriptions import Subscription

CHAT = identifier(Channel.CHAT_ROOM, community_member_id=42)
NOTIFY = identifier(Channel.NOTIFICATION, community_member_id=42)


class FakeSocket:
    """Hands the read loop prepared frames, then a close."""

    def __init__(self, frames: list[Any]) -> None:
        self.frames = iter(
            [
                aiohttp.WSMessage(
                    aiohttp.WSMsgType.TEXT, orjson.dumps(f).decode(), None
                )
                for f in frames
            ]
            + [aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)]
        )

    async def receive(self) -> aiohttp.WSMessage:
        return next(self.frames)


def broadcast(ident: str, name: str, **data: Any) -> dict[str, Any]:
    return {"identifier": ident, "message": {"event": name, "data": data}}


def make_cable(**options: Any) -> tuple[CircleCable, list[CableEvent]]:
    cable = CircleCable(
        None,  # type: ignore[arg-type]
        "ws://x/cable",
        StaticAccessToken("t"),
        42,
        options=CableOptions(**options),
    )
    events: list[CableEvent] = []
    cable.add_event_listener(events.append)
    return cable, events


async def run(cable: CircleCable, frames: list[Any], ws: Any = None) -> None:
    """Read `frames` to the end, then drop the staleness deadline the frames armed."""
    socket = cable._socket_for(ws or FakeSocket(frames))
    try:
        await read_frames(socket)
    finally:
        socket._disarm()


def test_event_classes_keep_the_base_constructor() -> None:
    """The fast path sets the base class's slots: no event class may add to `__init__`."""
    for cls in EVENT_CLASSES.values():
        assert cls.__init__ is CableEvent.__init__, cls


async def test_events_equal_constructed_ones_for_every_name_and_channel() -> None:
    cable, events = make_cable()
    frames = []
    expected = []
    # Each name twice in a row (the cached class), then on the other channel (a new route).
    for i, (name, cls) in enumerate(EVENT_CLASSES.items()):
        for k, (ident, channel) in enumerate(
            ((CHAT, Channel.CHAT_ROOM), (NOTIFY, Channel.NOTIFICATION))
        ):
            for j in range(2):
                data = {"id": 1000 + 10 * i + 2 * k + j, "channel": str(channel)}
                frames.append(broadcast(ident, str(name), **data))
                expected.append(cls(channel, str(name), data, None))
    await run(cable, frames)
    assert len(events) == len(expected)
    for got, want in zip(events, expected, strict=True):
        assert type(got) is type(want)
        assert got == want
        assert repr(got) == repr(want)


async def test_a_removed_subscription_is_no_longer_routed() -> None:
    """The cached route follows the book: a removed then re-added identifier routes anew."""
    cable, events = make_cable()
    book = cable.book
    chat = book.subs[CHAT]
    frames = [broadcast(CHAT, "newMessage", id=1), broadcast(CHAT, "newMessage", id=2)]

    async def receive_and_remove() -> None:
        socket = FakeSocket(frames)
        inner = socket.receive
        calls = 0

        async def receive() -> aiohttp.WSMessage:
            nonlocal calls
            calls += 1
            if calls == 2:  # after the first frame was routed and cached
                book.remove(chat)
            return await inner()

        socket.receive = receive  # type: ignore[method-assign]
        await run(cable, [], socket)

    await receive_and_remove()
    assert [e.data["id"] for e in events] == [1]  # the second had no subscription
    # The same identifier, now a different subscription: the new one routes.
    book.add(Subscription(CHAT, str(Channel.ROOM), room_id=7))
    await run(cable, [broadcast(CHAT, "newMessage", id=3)])
    assert [(e.channel, e.room_id) for e in events[1:]] == [(str(Channel.ROOM), 7)]


async def test_dedupe_stays_bounded_and_spans_connections() -> None:
    cable, events = make_cable(dedupe_size=4)
    first = [broadcast(CHAT, "newMessage", id=i) for i in range(1, 11)]
    await run(cable, [*first, broadcast(NOTIFY, "newMessage", id=10)])
    assert [e.data["id"] for e in events] == list(range(1, 11))  # 10 again: dropped
    assert len(cable.hub.seen) <= 4
    kept = list(cable.hub.seen)
    assert kept[-1] == 10
    # A new connection starts from what the last one kept, and keeps counting right.
    again = [broadcast(CHAT, "newMessage", id=k) for k in kept]
    fresh = [broadcast(CHAT, "newMessage", id=i) for i in range(11, 31)]
    await run(cable, [*again, *fresh])
    assert [e.data["id"] for e in events[10:]] == list(range(11, 31))
    assert len(cable.hub.seen) <= 4
    assert list(cable.hub.seen)[-1] == 30
