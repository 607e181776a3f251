"""The extended protocol under a hostile AnyCable server: bounded state, merged fallbacks.

Pure Python with a fake clock: the sans-IO cores (reliable.py, delivery.py), fed exactly as
the cable (`track`, `on_history`) and the session (`_on_history_fallback`) feed them.
"""

from __future__ import annotations

import json

from multidict import CIMultiDict
import pytest

from custom_components.circle.client.delivery import (
    DeliveryCore,
    FailureKind,
    FetchSnapshot,
    Phase,
)
from custom_components.circle.client.reliable import (
    EXT_PROTOCOL,
    MAX_STREAMS,
    MAX_STREAMS_PER_IDENTIFIER,
    Fallback,
    FallbackReason,
    ReliableStreams,
)
from tests.test_delivery_core import Driver, live, msg, room

IDENT = '{"channel":"NotificationChannel","community_member_id":42}'
SID = "JnehncGjAQuLBIBoImSMk"


@pytest.fixture
def auto_enable_custom_integrations() -> None:
    """Pure Python: no Home Assistant instance here."""


def _ext() -> ReliableStreams:
    state = ReliableStreams(clock=lambda: 1_000.0)
    state.connected(EXT_PROTOCOL, CIMultiDict({"X-AnyCable-Version": "1.6.4"}))
    state.on_welcome({"type": "welcome", "sid": SID})
    return state


def _broadcast(ident: str, stream: str, epoch: str = "e") -> dict[str, object]:
    return {"identifier": ident, "stream_id": stream, "epoch": epoch, "offset": 1}


# --- stream ids chosen by the server ------------------------------------------------------


def test_stream_ids_chosen_by_the_server_keep_the_state_bounded() -> None:
    """Issue 22: state is bounded whatever ids the server sends (here: stream ids).

    Every broadcast of one subscription names a new stream: positions, streams and the
    next subscribe's history request stay bounded; the room is read back once instead.
    """
    state = _ext()
    fallbacks = [
        fb
        for n in range(20_000)
        if (fb := state.track(IDENT, _broadcast(IDENT, f"s-{n:0>200}")))
    ]
    assert len(state.positions) == MAX_STREAMS_PER_IDENTIFIER
    assert len(state.streams[IDENT]) == MAX_STREAMS_PER_IDENTIFIER
    assert fallbacks == [Fallback(IDENT, FallbackReason.TOO_MANY_STREAMS)]
    # The history request goes out on every reconnect: it stays a sane frame.
    frame = state.subscribe_command(IDENT)
    assert len(frame) < 64 * 1024
    assert len(json.loads(frame)["history"]["streams"]) == MAX_STREAMS_PER_IDENTIFIER
    # Known streams keep their positions; forgetting the subscription resets the cap.
    assert state.track(IDENT, _broadcast(IDENT, f"s-{0:0>200}", "e2")) == Fallback(
        IDENT, FallbackReason.EPOCH_CHANGED
    )
    state.forget(IDENT)
    assert not state.positions and not state.streams


def test_streams_in_all_are_capped_across_subscriptions() -> None:
    state = _ext()
    idents = [json.dumps({"channel": "C", "n": n}) for n in range(40)]
    told = set()
    for ident in idents:
        for n in range(MAX_STREAMS_PER_IDENTIFIER):
            if fb := state.track(ident, _broadcast(ident, f"{ident}-{n}")):
                told.add(fb.identifier)
    assert len(state.positions) == MAX_STREAMS
    assert sum(len(s) for s in state.streams.values()) == MAX_STREAMS
    # Every subscription that lost streams is read back over REST, once.
    assert told == set(idents[MAX_STREAMS // MAX_STREAMS_PER_IDENTIFIER :])


def test_a_restored_welcome_that_was_not_asked_for_is_ignored() -> None:
    """A server claiming `restored` on a connection that sent no sid: every subscription is
    subscribed again (taking it would mark them confirmed without a subscribe)."""
    state = ReliableStreams(clock=lambda: 1_000.0)
    state.connected(EXT_PROTOCOL, CIMultiDict())
    assert state.restore_headers() == {}
    assert state.on_welcome({"type": "welcome", "sid": SID, "restored": True}) == ()
    assert not state.restored
    state.track(IDENT, _broadcast(IDENT, "s"))
    # The next connection sends the sid: now a restore is taken.
    assert state.restore_headers()
    state.connected(EXT_PROTOCOL, CIMultiDict())
    assert state.on_welcome(
        {"type": "welcome", "sid": "b" * 21, "restored": True, "restored_ids": [IDENT]}
    ) == (IDENT,)
    # After a `disconnect` frame the sid is gone: the next `restored` is not ours.
    state.on_disconnect()
    state.connected(EXT_PROTOCOL, CIMultiDict())
    assert state.on_welcome({"type": "welcome", "sid": SID, "restored": True}) == ()


# --- fallbacks are merged -----------------------------------------------------------------


def _fallback(driver: Driver, identifier: str) -> None:
    """What CircleSession._on_history_fallback does with a cable's Fallback."""
    driver.core.subscription(driver.now, identifier, "pending")
    driver.core.subscription(driver.now, identifier, "confirmed")
    driver.drain()


def _snapshots(driver: Driver) -> int:
    return sum(isinstance(f, FetchSnapshot) for f in driver.fetches.values())


def test_a_history_fallback_waits_for_circles_retry_after() -> None:
    """Circle said 429, Retry-After 60: a `reject_history` (or an epoch change) is no
    reason to read everything back at once."""
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(room("a", 10))
    assert driver.core.phase is Phase.LIVE
    driver.core.verify_soon(driver.now)
    driver.tick(60.0)
    # A fresh confirmation makes a resync (the counts-only read is given up for it).
    _fallback(driver, "n")
    request = driver.snapshot_id()
    driver.fetches.clear()
    driver.core.read_failed(
        driver.now, request, FailureKind.RATE_LIMITED, "rate_limited", 60.0
    )
    driver.drain()
    asked_at = driver.now
    # The ext-protocol server flaps a stream's epoch: one fallback per broadcast.
    for _ in range(10):
        driver.now += 1.0
        _fallback(driver, "c")
        assert _snapshots(driver) == 0, f"read back {driver.now - asked_at:.0f} s early"
    driver.tick(asked_at + 60.0 - driver.now)
    assert _snapshots(driver) == 1  # one read-back for all of them, when Circle allows


def test_a_late_confirmation_waits_for_circles_retry_after_too() -> None:
    driver = Driver(DeliveryCore(42))
    driver.connect({"c": "unanswered"})
    request = driver.snapshot_id()
    driver.fetches.clear()
    driver.core.read_failed(driver.now, request, FailureKind.RATE_LIMITED, "429", 30.0)
    driver.drain()
    driver.tick(5.0)
    driver.core.subscription(driver.now, "c", "confirmed")
    driver.drain()
    assert not driver.fetches
    driver.tick(25.0)
    assert _snapshots(driver) == 1


def test_a_flapping_epoch_cannot_starve_the_read_back() -> None:
    """One fallback per broadcast: the resync under way still finishes (and the REST reads
    stay few), else live messages would wait for the hold's bound every time."""
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(room("a", 10))
    started = driver.core.resyncs
    for _ in range(50):
        driver.now += 0.5
        _fallback(driver, "c")
    assert driver.core.resyncs - started == 1
    assert driver.cancels == 0  # the read-back under way was never given up
    # It finishes; the fallbacks that came meanwhile make one more, and only one.
    driver.answer_snapshot(room("a", 10))
    assert driver.core.resyncs - started == 2 and not driver.fetches
    assert driver.core.phase is Phase.LIVE and driver.core.status.synced


def test_a_merged_fallback_keeps_each_rooms_order() -> None:
    """A read-back that ends while another is queued hands over what it read and the held
    messages up to it; later live messages wait for the queued one (which may find messages
    missed before the fallback)."""
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(room("a", 10))
    _fallback(driver, "c")  # read-back 1: room a is at 11
    driver.answer_snapshot(room("a", 11))
    driver.event(live(11, "a"))
    _fallback(driver, "c")  # queued: 12 was lost before it
    driver.event(live(13, "a"))
    driver.answer_page("a", [msg(11, "a")])
    assert driver.delivered == [(11, False)]  # 13 waits: 12 may come before it
    driver.answer_snapshot(room("a", 13))
    driver.answer_page("a", [msg(11, "a"), msg(12, "a"), msg(13, "a")])
    assert driver.delivered == [(11, False), (12, True), (13, False)]
    assert driver.core.ledger.watermarks["a"] == 13
    assert driver.core.phase is Phase.LIVE and not driver.core.holds.holds
