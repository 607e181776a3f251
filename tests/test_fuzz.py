"""10,000+ random and mutated frames through a live cable: no crash, no reconnect, no error."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

from custom_components.circle.client import CableEvent
from tests.conftest import wait_for

EVENTS = [
    "newMessage",
    "updatedMessage",
    "deletedMessage",
    "newNotification",
    "updateNewNotificationCount",
    "resetNewNotificationCount",
    "chatRoomCreated",
    "chatRoomUpdated",
    "chatRoomDeleted",
    "chatRoomRead",
    "chatRoomPinned",
    "chatRoomUnPinned",
    "chatThreadRead",
    "somethingElse",
]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                2**70,
                1e308,
                float("nan") if rng.random() < 0.01 else 0.5,
                "",
                "x" * rng.randint(0, 50),
                "9" * 5000,
                "2024-03-20T16:54:47.274Z",
                "\u0000\ud7ff☃",
                '{"event": "newMessage"}',
                "[[[[",
                rng.randint(-(10**6), 10**6),
            ]
        )
    if roll < 0.7:
        return {
            rng.choice(
                [
                    "id",
                    "event",
                    "type",
                    "data",
                    "message",
                    "body",
                    "sender",
                    "chat_room_uuid",
                    "rich_text_body",
                    "content",
                    "new_notifications_count",
                    "parent_message",
                    "edited_at",
                    "payload",
                    "json",
                ]
            ): random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 5))
        }
    return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def mutate_text(rng: random.Random, text: str) -> str:
    roll = rng.random()
    if roll < 0.3 and text:
        return text[: rng.randint(0, len(text) - 1)]
    if roll < 0.6 and text:
        pos = rng.randint(0, len(text) - 1)
        return text[:pos] + rng.choice('{}[]",:\\x0 ') + text[pos + 1 :]
    if roll < 0.7:
        return "[" * rng.randint(100, 5000)
    if roll < 0.8:
        return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 40)))
    return text + rng.choice(["", "}", "garbage", "\n"])


def frames(rng: random.Random, identifiers: list[str], count: int) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        ident = rng.choice(identifiers)
        name = rng.choice(EVENTS)
        payload = rng.choice(
            [
                {"event": name, "data": random_value(rng)},
                {
                    "type": name,
                    **(v if isinstance(v := random_value(rng), dict) else {}),
                },
                {
                    "event": name,
                    "data": {
                        "id": rng.randint(1, 10**6),
                        "body": "b",
                        "sender": random_value(rng),
                        "chat_room_uuid": random_value(rng),
                        "edited_at": random_value(rng),
                        "rich_text_body": random_value(rng),
                        "parent_message": random_value(rng),
                    },
                },
                json.dumps({"event": name, "data": random_value(rng)}),
                random_value(rng),
            ]
        )
        frame: dict[str, Any] = rng.choice(
            [
                {"identifier": ident, "message": payload},
                {"identifier": random_value(rng), "message": payload},
                {
                    "type": rng.choice(
                        [
                            "ping",
                            "welcome",
                            "confirm_subscription",
                            "reject_subscription",
                            "mystery",
                            5,
                            None,
                        ]
                    ),
                    "identifier": rng.choice([ident, random_value(rng)]),
                    "message": random_value(rng),
                },
                random_value(rng) if isinstance(random_value(rng), dict) else {"x": 1},
            ]
        )
        if isinstance(frame, dict) and frame.get("type") in (
            "disconnect",
            "reject_subscription",
        ):
            continue  # those legitimately end or change the session
        text = json.dumps(frame, allow_nan=True)
        out.append(mutate_text(rng, text) if rng.random() < 0.5 else text)
    return out


async def test_fuzzed_frames_never_break_the_cable(
    harness_factory, simulator, caplog
) -> None:
    caplog.set_level(logging.WARNING, "custom_components.circle")
    harness = harness_factory()
    bad: list[CableEvent] = []
    harness.cable.add_event_listener(
        lambda e: None
        if isinstance(e, CableEvent) and isinstance(e.name, str)
        else bad.append(e)
    )
    # Generated before connecting: 2 s of CPU in the loop would look like a dead socket.
    identifiers = [s.identifier for s in harness.cable.subscriptions]
    batch = frames(random.Random(20261128), identifiers, 10_500)
    harness.start()
    await harness.ready()
    conn = simulator.connections[0]
    for start in range(0, len(batch), 500):
        for text in batch[start : start + 500]:
            simulator.send_raw(text)
        await wait_for(lambda: conn.queue.empty(), timeout=10)
    simulator.community.post_message(
        simulator.seeded["dm"], simulator.seeded["ada"].id, "after the storm"
    )
    await wait_for(
        lambda: any(
            getattr(getattr(e, "message", None), "body", None) == "after the storm"
            for e in harness.events_named("newMessage")
        ),
        timeout=10,
    )
    assert harness.connected_count() == 1, "the fuzz must not have forced a reconnect"
    assert not bad
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[
        -2000:
    ]
    assert (
        len(harness.events) > 1000
    )  # most well-formed broadcasts were delivered as events
