"""State the server's ids can grow stays bounded; no id silences a room (issue 22 #6).

Pure Python with a fake clock, through the delivery core's inputs.
"""

from __future__ import annotations

import json

import pytest

from custom_components.circle.client.delivery import (
    ANNOUNCED_ROOMS_MAX,
    UNLISTED_ROOMS_MAX,
    DeliveryCore,
    Ledger,
    Phase,
)
from custom_components.circle.client.ledger import MAX_DELIVERED_ABOVE, MAX_LEDGER_ROOMS
from custom_components.circle.client.models import ChatRoomEvent, NotificationCountEvent
from tests.test_delivery_core import Driver, live, msg, room

HUGE = 2**63 - 1


@pytest.fixture
def auto_enable_custom_integrations() -> None:
    """Pure Python: no Home Assistant instance here."""


def live_core(*rooms: tuple[str, int]) -> Driver:
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(*(room(uuid, last) for uuid, last in rooms))
    assert driver.core.phase is Phase.LIVE
    return driver


def test_thousands_of_unlisted_rooms_keep_the_state_small() -> None:
    driver = live_core(("a", 10))
    for n in range(8000):
        driver.event(live(100 + n, f"ghost-{n}"))
    core = driver.core
    assert len(driver.delivered) == 8000  # handed over, once each
    assert set(core.unread.unlisted) == {
        f"ghost-{n}" for n in range(UNLISTED_ROOMS_MAX)
    }
    assert len(core.state.unread_rooms) <= UNLISTED_ROOMS_MAX + 1
    assert len(core.unread.counted) <= UNLISTED_ROOMS_MAX + 1
    assert len(core.ledger.rooms()) <= UNLISTED_ROOMS_MAX + 1
    assert len(json.dumps(core.ledger.as_dict())) < 4096
    # Two complete listings without them: only the listed room is left.
    for _ in range(2):
        driver.core.verify_soon(driver.now)
        driver.tick(60.0)
        driver.answer_snapshot(room("a", 10))
    assert core.ledger.rooms() <= {"a"}
    assert set(core.unread.counted) == {"a"}


def test_room_events_for_unknown_rooms_keep_no_names() -> None:
    driver = live_core(("a", 10))
    for n in range(500):
        driver.event(
            ChatRoomEvent(
                "ChatRoomChannel",
                "chatRoomUpdated",
                {"chat_room_uuid": f"ghost-{n}", "uuid": f"ghost-{n}", "name": "x"},
            )
        )
        driver.event(
            ChatRoomEvent(
                "ChatRoomChannel",
                "chatRoomCreated",
                {"uuid": f"new-{n}", "id": n, "name": "y", "unread_messages_count": 1},
            )
        )
    state = driver.core.state
    assert len(state.room_names) == ANNOUNCED_ROOMS_MAX + 1
    assert len(driver.core.rooms) == ANNOUNCED_ROOMS_MAX + 1
    assert len(state.unread_rooms) == ANNOUNCED_ROOMS_MAX
    assert "ghost-0" not in state.room_names


def test_a_huge_live_id_does_not_silence_the_room() -> None:
    driver = live_core(("a", 10))
    driver.event(live(HUGE, "a"))
    assert driver.delivered == [(HUGE, False)]
    assert driver.core.ledger.watermarks["a"] == 10
    driver.event(live(11, "a"))
    driver.event(live(HUGE, "a"))  # still a duplicate
    assert driver.delivered == [(HUGE, False), (11, False)]


def test_the_watermark_follows_what_a_listing_confirms() -> None:
    driver = live_core(("a", 10))
    for mid in (11, 12, 13):
        driver.event(live(mid, "a"))
    assert driver.core.ledger.watermarks["a"] == 10
    driver.event(
        NotificationCountEvent(
            "NotificationChannel",
            "updateNewNotificationCount",
            {"new_notifications_count": 1},
        )
    )
    driver.tick(60.0)  # the counts are read again
    driver.answer_snapshot(room("a", 12), count=1)
    assert driver.core.ledger.watermarks["a"] == 12
    assert driver.core.ledger.delivered["a"] == {13}


def test_a_poisoned_ledger_from_disk_is_taken_back_at_the_first_listing() -> None:
    saved = {"version": 2, "initialized": True, "rooms": {"a": HUGE, "b": 20}}
    ledger = Ledger.from_dict(saved)
    driver = Driver(DeliveryCore(42, ledger=ledger))
    driver.connect()
    driver.answer_snapshot(room("a", 10), room("b", 20))
    assert driver.core.ledger.watermarks == {"a": 10, "b": 20}
    driver.event(live(11, "a"))
    assert driver.delivered == [(11, False)]


def test_a_created_room_cannot_bring_a_huge_watermark() -> None:
    driver = live_core(("a", 10))
    driver.event(
        ChatRoomEvent(
            "ChatRoomChannel",
            "chatRoomCreated",
            {
                "uuid": "n",
                "id": 9,
                "name": "n",
                "unread_messages_count": 0,
                "last_message": {"id": HUGE},
            },
        )
    )
    assert driver.core.ledger.watermarks["n"] <= 10
    driver.event(live(11, "n"))
    assert driver.delivered == [(11, False)]


def test_a_ledger_from_disk_is_bounded() -> None:
    saved = {
        "rooms": {f"r{n}": n for n in range(MAX_LEDGER_ROOMS * 2)},
        "delivered": {"r1": list(range(10, 10 + MAX_DELIVERED_ABOVE * 3))},
    }
    ledger = Ledger.from_dict(saved)
    assert ledger is not None
    assert len(ledger.watermarks) == MAX_LEDGER_ROOMS
    assert len(ledger.delivered["r1"]) == MAX_DELIVERED_ABOVE
    assert max(ledger.delivered["r1"]) == 9 + MAX_DELIVERED_ABOVE * 3


def test_a_backfill_after_a_huge_id_still_reads_the_gap() -> None:
    driver = live_core(("a", 10))
    driver.event(live(HUGE, "a"))
    driver.core.disconnected(driver.now, "dropped")
    driver.connect()
    driver.answer_snapshot(room("a", 12))
    driver.answer_page("a", [msg(11, "a"), msg(12, "a")])
    assert driver.delivered == [(HUGE, False), (11, True), (12, True)]
    assert driver.core.ledger.watermarks["a"] == 12
