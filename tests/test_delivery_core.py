"""The delivery core, step by step: one test per defect the old coordinator had, and more.

Pure Python with a fake clock: inputs in, outputs out, no sockets.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import logging
from typing import Any

import pytest

from custom_components.circle.client.delivery import (
    CancelFetches,
    Deliver,
    DeliveryConfig,
    DeliveryCore,
    FailureKind,
    FetchMessages,
    FetchSnapshot,
    Ledger,
    Phase,
    Snapshot,
)
from custom_components.circle.client.holds import (
    HOLD_MAX_MESSAGES,
    HOLD_MAX_SECONDS,
    REST_UNAVAILABLE,
    WAITING_FOR_BACKFILL,
)
from custom_components.circle.client.models import (
    ChatMessage,
    ChatRoom,
    ChatRoomEvent,
    MessageEvent,
    NotificationCountEvent,
)

SUBS = ("n", "c", "t", "room")
T0 = datetime(2020, 5, 1, 12, tzinfo=UTC)  # far from Home Assistant's clock, on purpose


@pytest.fixture
def auto_enable_custom_integrations() -> None:
    """Pure Python: no Home Assistant instance here."""


def room(uuid: str, last: int | None, unread: int = 0) -> ChatRoom:
    record = {
        "uuid": uuid,
        "id": 1,
        "unread_messages_count": unread,
        "last_message": {"id": last},
    }
    parsed = ChatRoom.from_json(record)
    assert parsed is not None
    return parsed


def msg(mid: int, uuid: str, *, at: datetime = T0, sender: int = 7) -> ChatMessage:
    parsed = ChatMessage.from_json(
        {
            "id": mid,
            "chat_room_uuid": uuid,
            "body": f"m{mid}",
            "sender": {"community_member_id": sender},
            "sent_at": at.isoformat(),
        }
    )
    assert parsed is not None
    return parsed


def live(mid: int, uuid: str) -> MessageEvent:
    return MessageEvent("ChatRoomChannel", "newMessage", msg(mid, uuid).raw)


class Driver:
    """Feeds a core and keeps what it asked for."""

    def __init__(self, core: DeliveryCore) -> None:
        self.core = core
        self.now = 0.0
        self.delivered: list[tuple[int, bool]] = []
        self.fetches: dict[int, Any] = {}
        self.cancels = 0

    def drain(self) -> list[Any]:
        out = self.core.drain()
        for o in out:
            if isinstance(o, Deliver):
                self.delivered.append((o.message.id, o.backfilled))
            elif isinstance(o, FetchSnapshot | FetchMessages):
                self.fetches[o.request_id] = o
            elif isinstance(o, CancelFetches):
                self.cancels += 1
                self.fetches.clear()
        return out

    def event(self, event: Any) -> None:
        self.core.event(event, self.now)
        self.drain()

    def connect(self, answers: dict[str, str] | None = None) -> None:
        self.core.connected(self.now, SUBS)
        for sub in SUBS:
            self.core.subscription(self.now, sub, (answers or {}).get(sub, "confirmed"))
        self.drain()

    def snapshot_id(self) -> int:
        return next(i for i, f in self.fetches.items() if isinstance(f, FetchSnapshot))

    def page_ids(self) -> dict[str, int]:
        return {
            f.room_uuid: i
            for i, f in self.fetches.items()
            if isinstance(f, FetchMessages)
        }

    def answer_snapshot(self, *rooms: ChatRoom, count: int = 0) -> None:
        """Answer the read (again while pushes during it make the core read it again)."""
        while any(isinstance(f, FetchSnapshot) for f in self.fetches.values()):
            request = self.snapshot_id()
            del self.fetches[request]
            self.core.snapshot_read(
                self.now, request, Snapshot(count, frozenset(), tuple(rooms))
            )
            self.drain()

    def answer_page(self, uuid: str, messages: list[ChatMessage]) -> None:
        request = self.page_ids()[uuid]
        del self.fetches[request]
        self.core.messages_read(self.now, request, messages)
        self.drain()

    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.core.tick(self.now)
        self.drain()


def started(rooms: dict[str, int]) -> Driver:
    """A core that went live once with these rooms' last ids, then lost its connection."""
    driver = Driver(DeliveryCore(42, DeliveryConfig()))
    driver.connect()
    driver.answer_snapshot(*(room(u, last) for u, last in rooms.items()))
    assert driver.core.phase is Phase.LIVE
    driver.core.disconnected(driver.now, "dropped")
    driver.drain()
    return driver


def test_a_rejected_subscription_does_not_stop_the_resync() -> None:
    """Defect 1: a rejected room channel must not block the read-back of the others."""
    driver = Driver(DeliveryCore(42))
    driver.connect({"room": "rejected"})
    assert any(isinstance(f, FetchSnapshot) for f in driver.fetches.values())
    driver.answer_snapshot(room("a", 5, unread=2))
    assert driver.core.phase is Phase.LIVE and driver.core.status.synced
    assert driver.core.state.unread_counts == {"a": 2}


def test_unanswered_subscription_counts_as_answered_and_a_late_confirm_resyncs() -> (
    None
):
    driver = Driver(DeliveryCore(42))
    driver.connect({"room": "unanswered"})
    driver.answer_snapshot(room("a", 5))
    assert driver.core.phase is Phase.LIVE
    driver.core.subscription(driver.now, "room", "confirmed")
    driver.drain()
    # Broadcasts before that confirmation were lost: read the truth again.
    assert driver.core.phase is Phase.SYNCING and driver.snapshot_id()


def test_a_confirmation_while_another_is_pending_resyncs_once_all_are_answered() -> (
    None
):
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(room("a", 5))
    core = driver.core
    # Two room subscriptions come and go while live (a new parameter is tried, say).
    core.subscription(driver.now, "x", "pending")
    core.subscription(driver.now, "y", "pending")
    core.subscription(driver.now, "x", "confirmed")
    driver.drain()
    assert core.phase is Phase.LIVE and not driver.fetches  # "y" still pending
    core.subscription(driver.now, "y", "rejected")
    driver.drain()
    assert core.phase is Phase.SYNCING and driver.snapshot_id()


def test_a_drop_during_the_resync_abandons_it() -> None:
    """Defect 2: a resync that finishes after a drop must not go live while disconnected."""
    driver = started({"a": 10})
    driver.connect()
    request = driver.snapshot_id()
    driver.core.disconnected(driver.now, "dropped")
    driver.drain()
    assert driver.cancels and not driver.fetches
    driver.core.snapshot_read(
        driver.now, request, Snapshot(0, frozenset(), (room("a", 12),))
    )
    assert driver.drain() == []
    assert driver.core.phase is Phase.DISCONNECTED
    assert driver.core.ledger.watermarks["a"] == 10
    # A live message after the next connect cannot move the watermark past the gap.
    driver.connect()
    driver.event(live(13, "a"))
    driver.drain()
    assert driver.core.ledger.watermarks["a"] == 10
    driver.answer_snapshot(room("a", 13))
    driver.answer_page("a", [msg(11, "a"), msg(12, "a"), msg(13, "a")])
    assert driver.delivered == [(11, True), (12, True), (13, False)]
    assert driver.core.ledger.watermarks["a"] == 13


def test_a_backfill_cancelled_half_way_loses_nothing() -> None:
    """Defect 3: rooms already read back keep their watermark until messages are handed over."""
    driver = started({"a": 10, "b": 20})
    driver.connect()
    driver.answer_snapshot(room("a", 11), room("b", 21))
    driver.answer_page("a", [msg(11, "a")])
    assert driver.delivered == []  # nothing is handed over before every room was read
    driver.core.disconnected(driver.now, "dropped")  # or a late confirm, an unload...
    driver.drain()
    assert driver.core.ledger.watermarks == {"a": 10, "b": 20}
    driver.connect()
    driver.answer_snapshot(room("a", 11), room("b", 21))
    assert set(driver.page_ids()) == {"a", "b"}  # the same messages are fetched again
    driver.answer_page("b", [msg(21, "b")])
    driver.answer_page("a", [msg(11, "a")])
    assert driver.delivered == [(11, True), (21, True)]
    assert driver.core.ledger.watermarks == {"a": 11, "b": 21}


def test_a_restart_mid_backfill_fetches_again() -> None:
    driver = started({"a": 10})
    saved = driver.core.ledger.as_dict()
    restarted = Driver(DeliveryCore(42, ledger=Ledger.from_dict(saved)))
    restarted.connect()
    restarted.answer_snapshot(room("a", 12))
    restarted.answer_page("a", [msg(11, "a"), msg(12, "a")])
    assert restarted.delivered == [(11, True), (12, True)]


def test_a_failed_room_read_keeps_its_watermark_and_retries() -> None:
    driver = started({"a": 10, "b": 20})
    driver.connect()
    driver.answer_snapshot(room("a", 11), room("b", 21))
    request = driver.page_ids()["b"]
    del driver.fetches[request]
    driver.core.read_failed(driver.now, request, FailureKind.TEMPORARY, "503")
    driver.answer_page("a", [msg(11, "a")])
    assert driver.delivered == [(11, True)]
    assert driver.core.ledger.watermarks == {"a": 11, "b": 20}
    assert driver.core.status.sync_error == "503" and driver.core.status.available
    driver.tick(1.0)  # retried fast
    driver.answer_snapshot(room("a", 11), room("b", 21))
    driver.answer_page("b", [msg(21, "b")])
    assert driver.delivered == [(11, True), (21, True)]
    assert driver.core.status.synced


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        (0.0, 1.0, 1.0),
        (-5.0, 1.0, 1.0),
        (1e308, 3600.0, 3600.0),
        (float("inf"), 3600.0, 3600.0),
        (float("nan"), 3600.0, 3600.0),
    ],
)
def test_retry_after_is_clamped(retry_after: float, low: float, high: float) -> None:
    """Defect 6: no loop without a wait, no block for ever."""
    driver = Driver(DeliveryCore(42))
    driver.connect()
    request = driver.snapshot_id()
    driver.core.read_failed(
        driver.now, request, FailureKind.RATE_LIMITED, "rate_limited", retry_after
    )
    deadline = driver.core.planner.retry_at
    assert deadline is not None and low <= deadline - driver.now <= high


def test_retries_start_fast_and_back_off() -> None:
    driver = Driver(
        DeliveryCore(42, DeliveryConfig(resync_initial=1.0, resync_max=5.0))
    )
    driver.connect()
    waits = []
    for _ in range(5):
        request = driver.snapshot_id()
        driver.fetches.clear()
        driver.core.read_failed(driver.now, request, FailureKind.TEMPORARY, "503")
        deadline = driver.core.planner.retry_at
        assert deadline is not None
        waits.append(deadline - driver.now)
        driver.tick(deadline - driver.now)
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_failing_resync_does_not_flap_availability() -> None:
    """Defect 7: the values stay shown; the status says the sync failed."""
    driver = Driver(DeliveryCore(42))
    driver.connect()
    request = driver.snapshot_id()
    driver.core.read_failed(driver.now, request, FailureKind.TEMPORARY, "503")
    driver.drain()
    status = driver.core.status
    assert status.available and status.connected and not status.synced
    assert status.sync_error == "503"


def test_an_auth_failure_stops_the_resync_for_good() -> None:
    """Defect 7: no re-minting every few minutes after an authentication verdict."""
    driver = Driver(DeliveryCore(42))
    driver.connect()
    request = driver.snapshot_id()
    driver.core.read_failed(driver.now, request, FailureKind.AUTH, "auth_failed")
    driver.drain()
    assert driver.core.phase is Phase.AUTH_FAILED
    assert not driver.core.status.available and driver.core.status.auth_failed
    driver.tick(10_000)
    driver.connect()
    assert driver.fetches == {} and driver.core.next_deadline() is None


def test_availability_only_after_the_grace_period() -> None:
    driver = Driver(DeliveryCore(42, DeliveryConfig(grace=60)))
    driver.connect()
    driver.core.disconnected(driver.now, "dropped")
    driver.tick(59)
    assert driver.core.status.available
    driver.tick(1)
    assert not driver.core.status.available
    driver.connect()
    assert driver.core.status.available


def test_the_age_window_counts_from_circles_newest_message() -> None:
    """Defect 8: Home Assistant's clock plays no part (these messages are from 2020)."""
    driver = started({"a": 10})
    driver.connect()
    driver.answer_snapshot(room("a", 13))
    driver.answer_page(
        "a",
        [
            msg(11, "a", at=T0 - timedelta(hours=30)),  # older than the window: skipped
            msg(12, "a", at=T0 - timedelta(hours=2)),
            msg(13, "a", at=T0),
        ],
    )
    assert driver.delivered == [(12, True), (13, True)]
    assert driver.core.ledger.watermarks["a"] == 13  # skipped ones are never replayed


def test_a_lost_ledger_is_noticed_and_backfilled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Defect 8: a lost store is not a first start."""
    with caplog.at_level(logging.WARNING):
        driver = Driver(DeliveryCore(42, ledger=None, ledger_lost=True))
    assert "lost" in caplog.text
    driver.connect()
    driver.answer_snapshot(room("a", 12))
    driver.answer_page("a", [msg(11, "a"), msg(12, "a")])
    assert driver.delivered == [(11, True), (12, True)]


def test_a_first_start_takes_history_as_seen() -> None:
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(room("a", 12))
    assert driver.fetches == {} and driver.delivered == []
    assert driver.core.ledger.initialized and driver.core.ledger.watermarks == {"a": 12}


def test_live_messages_wait_for_the_backfill_then_keep_their_order() -> None:
    driver = started({"a": 10})
    driver.connect()
    driver.event(live(13, "a"))
    driver.event(live(13, "a"))  # the same message on a second channel
    driver.drain()
    assert driver.delivered == []
    driver.answer_snapshot(room("a", 13))
    driver.answer_page("a", [msg(11, "a"), msg(12, "a"), msg(13, "a")])
    assert driver.delivered == [(11, True), (12, True), (13, False)]


def test_held_messages_are_released_after_hold_max() -> None:
    driver = started({"a": 10})
    driver.connect()
    driver.event(live(13, "a"))
    driver.drain()
    driver.tick(HOLD_MAX_SECONDS - 0.5)
    assert driver.delivered == []
    driver.tick(0.5)
    assert driver.delivered == [(13, False)]
    assert driver.core.ledger.watermarks["a"] == 10  # the gap is still to be read back
    driver.answer_snapshot(room("a", 13))
    driver.answer_page("a", [msg(11, "a"), msg(12, "a"), msg(13, "a")])
    assert driver.delivered == [(13, False), (11, True), (12, True)]
    assert driver.core.ledger.watermarks["a"] == 13


def test_counts_follow_pushes_and_a_push_during_the_read_rereads() -> None:
    driver = Driver(DeliveryCore(42))
    driver.connect()
    first = driver.snapshot_id()
    driver.event(
        NotificationCountEvent(
            "NotificationChannel",
            "updateNewNotificationCount",
            {"new_notifications_count": 3},
        )
    )
    driver.drain()
    del driver.fetches[first]
    driver.core.snapshot_read(driver.now, first, Snapshot(2, frozenset(), ()))
    driver.drain()
    # The answer may be older than the push: it is read again, not shown.
    assert driver.snapshot_id() != first
    assert driver.core.state.new_notifications_count == 3
    driver.answer_snapshot(count=3)
    assert driver.core.state.new_notifications_count == 3


def test_stale_and_unknown_answers_are_ignored() -> None:
    driver = Driver(DeliveryCore(42))
    driver.core.snapshot_read(0, 99, Snapshot(1, frozenset(), ()))
    driver.core.messages_read(0, 98, [])
    driver.core.read_failed(0, 97, FailureKind.AUTH, "auth_failed")
    assert driver.drain() == [] and driver.core.phase is Phase.DISCONNECTED


def test_ledger_round_trip_and_garbage() -> None:
    ledger = Ledger()
    ledger.advance("a", 5)
    ledger.record_above("a", 9)
    restored = Ledger.from_dict(ledger.as_dict())
    assert restored is not None and restored.handed_over("a", 9)
    assert restored.handed_over("a", 4) and not restored.handed_over("a", 7)
    assert Ledger.from_dict(None) is None
    assert Ledger.from_dict({"rooms": "x"}) is None
    junk = Ledger.from_dict({"rooms": {"a": True, "b": -1, "c": 2**70, "d": 3}})
    assert junk is not None and junk.watermarks == {"d": 3}
    # The first version's store ({"rooms": {...}}) is read as an initialised ledger.
    old = Ledger.from_dict({"rooms": {"a": 4}})
    assert old is not None and old.initialized and old.watermarks == {"a": 4}


def test_a_message_in_an_unlisted_room_makes_no_per_room_count() -> None:
    """Only rooms Circle's member API lists (or announces) get a per-room count."""
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(room("a", 5))
    driver.event(live(6, "unlisted"))
    state = driver.core.state
    assert "unlisted" in state.unread_rooms and "unlisted" not in state.unread_counts
    assert driver.delivered == [(6, False)]


def test_live_messages_of_a_room_not_read_back_keep_waiting() -> None:
    """A room whose read failed: its live messages wait for the retry, the others go."""
    driver = started({"a": 10, "b": 20})
    driver.connect()
    driver.answer_snapshot(room("a", 11), room("b", 21))
    request = driver.page_ids()["a"]
    del driver.fetches[request]
    driver.core.read_failed(driver.now, request, FailureKind.TEMPORARY, "503")
    driver.answer_page("b", [msg(21, "b")])
    driver.event(live(22, "a"))
    driver.event(live(23, "b"))
    assert driver.delivered == [(21, True), (23, False)]
    driver.tick(1.0)  # the retry
    driver.answer_snapshot(room("a", 22), room("b", 23))
    driver.answer_page("a", [msg(11, "a"), msg(22, "a")])
    if "b" in driver.page_ids():  # 23 came while not yet live: b is read back once more
        driver.answer_page("b", [msg(21, "b"), msg(23, "b")])
    assert driver.delivered == [(21, True), (23, False), (11, True), (22, False)]
    assert driver.core.ledger.watermarks == {"a": 22, "b": 23}


def test_a_late_confirmation_holds_live_messages_for_its_read_back() -> None:
    driver = started({"a": 10})
    driver.connect({"c": "unanswered"})
    driver.answer_snapshot(room("a", 10))
    assert driver.core.phase is Phase.LIVE
    driver.core.subscription(driver.now, "c", "confirmed")  # 11 was missed before this
    driver.drain()
    driver.event(live(12, "a"))
    assert driver.delivered == []
    driver.answer_snapshot(room("a", 12))
    driver.answer_page("a", [msg(11, "a"), msg(12, "a")])
    assert driver.delivered == [(11, True), (12, False)]


def test_a_snapshot_taken_after_every_reread_is_checked_again_later() -> None:
    driver = Driver(DeliveryCore(42, DeliveryConfig(max_rereads=1)))
    driver.connect()
    for _ in range(2):  # a push lands while each read is on its way
        request = driver.snapshot_id()
        driver.event(
            NotificationCountEvent(
                "NotificationChannel",
                "updateNewNotificationCount",
                {"new_notifications_count": 5},
            )
        )
        del driver.fetches[request]
        driver.core.snapshot_read(driver.now, request, Snapshot(4, frozenset(), ()))
        driver.drain()
    assert driver.core.phase is Phase.LIVE
    verify_at = driver.core.planner.verify_at
    assert verify_at is not None
    driver.tick(verify_at - driver.now)
    driver.answer_snapshot(count=5)
    assert driver.core.state.new_notifications_count == 5


def test_a_message_on_a_room_channel_without_uuid_is_filed_under_its_room() -> None:
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(room("a", 10))
    data = {k: v for k, v in msg(11, "a").raw.items() if k != "chat_room_uuid"}
    driver.event(MessageEvent("Chats::RoomChannel", "newMessage", data, 1))
    assert driver.delivered == [(11, False)]
    assert driver.core.ledger.handed_over("a", 11)
    assert driver.core.state.unread_counts["a"] == 1


def test_a_room_leaves_only_after_two_complete_listings_without_it() -> None:
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(room("a", 10), room("b", 3))
    for present in (True, False):
        driver.core.disconnected(driver.now, "dropped")
        driver.connect()
        driver.answer_snapshot(room("b", 3))
        assert ("a" in driver.core.rooms) is present
        assert ("a" in driver.core.ledger.watermarks) is present


def test_a_deleted_room_is_not_made_unread_by_a_late_message() -> None:
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.answer_snapshot(room("a", 10))
    driver.event(
        ChatRoomEvent("ChatRoomChannel", "chatRoomDeleted", {"chat_room_uuid": "a"})
    )
    driver.event(live(11, "a"))
    assert "a" not in driver.core.state.unread_rooms


def test_an_uninitialised_ledger_stays_a_first_start_after_a_restart() -> None:
    driver = Driver(DeliveryCore(42))
    driver.connect()
    driver.event(live(51, "a"))
    driver.tick(
        10.0
    )  # released before the first read-back: recorded above no watermark
    saved = driver.core.ledger.as_dict()
    assert saved["initialized"] is False
    restarted = Driver(DeliveryCore(42, ledger=Ledger.from_dict(saved)))
    restarted.connect()
    restarted.answer_snapshot(room("a", 51))
    assert restarted.fetches == {} and restarted.delivered == []


def test_the_window_counts_from_the_room_list_too() -> None:
    driver = started({"a": 10, "b": 20})
    driver.connect()
    recent = dict(room("b", 20).raw, last_message={"id": 20, "sent_at": T0.isoformat()})
    b = ChatRoom.from_json(recent)
    assert b is not None
    driver.answer_snapshot(room("a", 11), b)
    driver.answer_page("a", [msg(11, "a", at=T0 - timedelta(days=3))])
    assert driver.delivered == []
    assert driver.core.ledger.watermarks["a"] == 11


def _fail_everything(driver: Driver, kind: FailureKind = FailureKind.TEMPORARY) -> None:
    for request in list(driver.fetches):
        del driver.fetches[request]
        driver.core.read_failed(driver.now, request, kind, "503")
    driver.drain()


def _retry(driver: Driver) -> float:
    """Let time pass as a driver does (to each deadline) until the retry fired."""
    deadline = driver.core.planner.retry_at
    assert deadline is not None
    start = driver.now
    while driver.now < deadline:
        step = driver.core.next_deadline()
        assert step is not None and step > driver.now
        driver.tick(step - driver.now)
    return driver.now - start


def test_a_hold_outlives_no_retry_chain() -> None:
    """Issue 22 #1: 200 failed read-backs, 200 live messages: all out after the bound."""
    driver = started({"a": 10, "b": 20})
    driver.connect()
    driver.answer_snapshot(room("a", 11), room("b", 20))
    _fail_everything(driver)  # a's read-back fails: its live messages wait
    sent = []
    for n in range(200):
        driver.event(live(100 + n, "a"))
        sent.append(100 + n)
        wait = _retry(driver)
        assert wait <= 30.0
        if driver.fetches:
            driver.answer_snapshot(room("a", 100 + n), room("b", 20))
        _fail_everything(driver)
    ids = [mid for mid, _ in driver.delivered]
    assert ids == sent  # in order of arrival, none left behind
    assert driver.core.holds.held == 0
    assert driver.core.ledger.watermarks["a"] == 10  # the gap is still to be read back


def test_a_hold_ends_at_its_bound_whatever_the_retries_do() -> None:
    driver = started({"a": 10})
    driver.connect()
    _fail_everything(driver)  # the listing itself fails
    driver.event(live(13, "a"))
    start = driver.now
    while not driver.delivered:
        assert driver.now - start < HOLD_MAX_SECONDS
        step = driver.core.next_deadline()
        assert step is not None
        driver.tick(step - driver.now)
        _fail_everything(driver)
    assert driver.delivered == [(13, False)]
    assert driver.now - start == HOLD_MAX_SECONDS


def test_retries_back_off_to_thirty_seconds_and_try_once_more_before_the_bound() -> (
    None
):
    driver = started({"a": 10})
    driver.connect()
    _fail_everything(driver)
    driver.event(live(13, "a"))  # the hold ends at HOLD_MAX_SECONDS (125 s)
    waits = []
    while driver.now < HOLD_MAX_SECONDS - 5.0:
        waits.append(_retry(driver))
        _fail_everything(driver)
    assert max(waits) == 30.0
    assert driver.now == HOLD_MAX_SECONDS - 5.0  # the last try before the bound
    # Circle answers again by then: the order holds.
    driver.fetches.clear()


def test_rest_back_before_the_bound_keeps_the_order() -> None:
    driver = started({"a": 10})
    driver.connect()
    _fail_everything(driver)
    driver.event(live(13, "a"))
    while driver.now < 90.0:  # retries at 1, 3, 7, 15, 31, 61, 91 s fail
        _retry(driver)
        _fail_everything(driver)
    _retry(driver)  # Circle's REST API is back for the last try, at 120 s
    driver.answer_snapshot(room("a", 13))
    driver.answer_page("a", [msg(11, "a"), msg(12, "a"), msg(13, "a")])
    assert driver.delivered == [(11, True), (12, True), (13, False)]
    assert driver.now < HOLD_MAX_SECONDS


def test_a_retry_after_is_never_cut_short_by_the_last_try() -> None:
    driver = started({"a": 10})
    driver.connect()
    driver.event(live(13, "a"))
    driver.tick(110.0)
    request = driver.snapshot_id()
    driver.fetches.clear()
    driver.core.read_failed(
        driver.now, request, FailureKind.RATE_LIMITED, "rate_limited", 20.0
    )
    assert driver.core.planner.retry_at == driver.now + 20.0


def test_a_full_hold_goes_out_in_arrival_order_and_the_log_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = started({"a": 10})
    driver.connect()
    for n in range(HOLD_MAX_MESSAGES + 5):
        driver.event(live(1000 - n, "a"))  # arrival order is not id order
    ids = [mid for mid, _ in driver.delivered]
    assert ids == [1000 - n for n in range(HOLD_MAX_MESSAGES + 5)]
    assert driver.core.holds.held == 0
    warnings = [r for r in caplog.records if "order of arrival" in r.getMessage()]
    assert len(warnings) == 1


def test_the_status_says_delivery_is_held_and_why() -> None:
    driver = started({"a": 10})
    driver.connect()
    driver.event(live(13, "a"))
    status = driver.core.status
    assert status.hold_reason == WAITING_FOR_BACKFILL
    assert (status.held_rooms, status.held_messages) == (1, 1)
    assert status.held_since == driver.now
    _fail_everything(driver)
    assert driver.core.status.hold_reason == REST_UNAVAILABLE
    _retry(driver)
    driver.answer_snapshot(room("a", 13))
    driver.answer_page("a", [msg(11, "a"), msg(12, "a"), msg(13, "a")])
    status = driver.core.status
    assert status.hold_reason is None and status.held_rooms == 0
    assert status.held_since is None and status.synced
