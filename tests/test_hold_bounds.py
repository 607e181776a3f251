"""The hold buffer under a flood of room uuids the server chooses: bounded state, one warning.

Pure Python with a fake clock, through the delivery core's inputs (issue 22: "state is
bounded whatever ids the server sends"; issue 19: past the bound, release in order of
arrival "and say so once in the log").
"""

from __future__ import annotations

import logging
import time

import pytest

from custom_components.circle.client.delivery import DeliveryCore, Phase
from custom_components.circle.client.holds import (
    EXPIRED_ROOMS_MAX,
    HOLD_MAX_TOTAL,
    HoldBuffer,
)
from tests.test_delivery_core import Driver, live, msg, room


@pytest.fixture
def auto_enable_custom_integrations() -> None:
    """Pure Python: no Home Assistant instance here."""


def test_a_flood_of_room_uuids_during_a_hold_keeps_the_state_bounded() -> None:
    """The listing never comes (Circle's REST is down): every live message waits. A cable
    naming a new room uuid in each message does not grow the hold buffer's state, and each
    message costs the same however many rooms are held."""
    driver = Driver(DeliveryCore(42))
    driver.connect()  # the read-back is asked for and never answered
    assert driver.core.phase is Phase.SYNCING
    started = time.perf_counter()
    for n in range(50_000):
        driver.core.event(live(1_000 + n, f"ghost-{n}"), driver.now)
        driver.core.drain()
    elapsed = time.perf_counter() - started
    holds = driver.core.holds
    assert holds.held <= HOLD_MAX_TOTAL and len(holds.holds) <= HOLD_MAX_TOTAL
    assert len(holds.expired) <= EXPIRED_ROOMS_MAX
    # Past the cap of rooms remembered: one state, every room passes (in arrival order).
    assert holds.all_expired and not holds.holds
    assert elapsed < 30.0, f"{elapsed:.1f} s for 50,000 messages"


def test_a_flood_of_room_uuids_says_so_once_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(room("a", 10))
    driver.core.disconnected(driver.now, "dropped")
    driver.connect()  # a new gap: every room waits for a read-back that never comes
    with caplog.at_level(logging.DEBUG):
        for n in range(3_000):
            driver.core.event(live(1_000 + n, f"ghost-{n}"), driver.now)
            driver.core.drain()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, f"{len(warnings)} warnings for one episode"
    assert "waited" in warnings[0].getMessage()


def test_the_next_episode_warns_again_and_a_new_gap_forgets_the_flood(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holds = HoldBuffer(max_seconds=10.0, max_messages=5, max_total=10)
    for n in range(EXPIRED_ROOMS_MAX + 20):
        holds.hold(0.0, "newMessage", msg(n + 1, f"r{n}"))
    assert holds.all_expired and not holds.wants("anything")
    holds.take(keep={"r1"})  # the read-back ran; r1's failed: it passes until retried
    assert not holds.all_expired and holds.expired == {"r1"}
    assert holds.wants("r2") and not holds.wants("r1")
    holds.new_gap()
    assert holds.wants("r1")
    for n in range(6):
        holds.hold(1.0, "newMessage", msg(900 + n, "z"))
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2  # one per episode


def test_the_oldest_hold_is_the_first_and_ends_first() -> None:
    holds = HoldBuffer(max_seconds=10.0, max_messages=50, max_total=3)
    for n, at in enumerate((1.0, 2.0, 3.0)):
        holds.hold(at, "newMessage", msg(n + 1, f"r{n}"))
    assert (holds.oldest(), holds.next_deadline()) == (1.0, 11.0)
    released = holds.hold(4.0, "newMessage", msg(4, "r3"))  # 4 > 3 in all: r0 goes
    assert [h.message.id for h in released] == [1]
    assert (holds.oldest(), holds.next_deadline()) == (2.0, 12.0)
    assert [h.message.id for h in holds.due(13.0)] == [2, 3]
    assert list(holds.holds) == ["r3"]
