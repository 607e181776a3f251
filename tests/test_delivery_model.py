"""Model-based tests of the delivery core: random orders of everything, checked against Circle.

A reference Circle (rooms, messages, read state, the notification badge) runs beside the core.
Hypothesis interleaves sends, reads, edits, drops, confirmations and rejections, REST answers
that succeed, fail, come late or never, restarts and clock jumps. After every step no message
was handed over twice; after quiescence (connected, every subscription confirmed, every read
answered) every top-level message younger than the window was handed over exactly once, each
room's in id order, and the counts equal Circle's.

Faults last minutes on the fake clock: Circle's REST API goes down for up to three minutes
(503s or 429s with Retry-After, one long retry chain), and a hostile cable names rooms no
listing has and ids near 2**63. Then, after every step: no message is held longer than its
bound, a hold ends at its bound only when Circle's REST API (or the cable) kept failing until
shortly before it (so there is no order inversion when REST comes back within two minutes),
and the state kept for the server's ids is bounded.

Profiles: `ci` (default, derandomized, 2,000 examples) and `long` (20,000 random examples):
`HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_delivery_model.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
import pytest

from custom_components.circle.client.delivery import (
    LAST_TRY_MARGIN,
    UNLISTED_ROOMS_MAX,
    CancelFetches,
    Deliver,
    DeliveryConfig,
    DeliveryCore,
    FailureKind,
    FetchMessages,
    FetchSnapshot,
    Ledger,
    LedgerChanged,
    Phase,
    Snapshot,
)
from custom_components.circle.client.holds import (
    EXPIRED_ROOMS_MAX,
    HOLD_MAX_MESSAGES,
    HOLD_MAX_SECONDS,
    HOLD_MAX_TOTAL,
)
from custom_components.circle.client.ledger import MAX_DELIVERED_ABOVE
from custom_components.circle.client.models import (
    ChatMessage,
    ChatRoom,
    ChatRoomEvent,
    MessageEvent,
    NotificationCountEvent,
)

settings.register_profile(
    "ci",
    max_examples=2000,
    stateful_step_count=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    print_blob=True,
    max_examples=20000,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "quick", max_examples=300, stateful_step_count=60, deadline=None, derandomize=True
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

ME = 42
OTHERS = (7, 8)
SUBS = ("notifications", "chats", "threads")
WINDOW = timedelta(hours=24)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = DeliveryConfig(backfill_window=WINDOW, per_room=100)  # the real hold bounds
RETRY_AFTER = 2.0
# A hold may end at its bound only if something kept the read-back from running until this
# close to the bound: the last try comes LAST_TRY_MARGIN before it, or a Retry-After later.
TROUBLE_MARGIN = LAST_TRY_MARGIN + RETRY_AFTER + 0.001
HOSTILE = 10**12  # ids from here up are a hostile cable's, never Circle's


@dataclass
class Msg:
    id: int
    room: str
    sender: int
    parent: int | None
    sent_at: datetime
    body: str = "x"
    edits: int = 0

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "chat_room_uuid": self.room,
            "body": self.body,
            "sender": {"community_member_id": self.sender, "name": "n"},
            "sent_at": self.sent_at.isoformat(),
            "parent_message_id": self.parent,
            "edited_at": (self.sent_at + timedelta(seconds=self.edits)).isoformat()
            if self.edits
            else None,
        }


@dataclass
class Room:
    uuid: str
    id: int
    messages: list[Msg] = field(default_factory=list)
    read_up_to: int = 0  # the member read everything up to this id

    def unread(self) -> int:
        return sum(
            1
            for m in self.messages
            if m.parent is None and m.sender != ME and m.id > self.read_up_to
        )

    def last_id(self) -> int | None:
        top = [m.id for m in self.messages if m.parent is None]
        return max(top) if top else None

    def as_room(self) -> ChatRoom:
        return ChatRoom.from_json(
            {
                "id": self.id,
                "uuid": self.uuid,
                "name": f"room {self.uuid}",
                "unread_messages_count": self.unread(),
                "last_message": {"id": self.last_id()},
            }
        )


class DeliveryMachine(RuleBasedStateMachine):
    """Circle, the wire and a restartable core, driven in random orders."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.circle_time = timedelta(0)
        self.next_id = 100
        self.rooms: dict[str, Room] = {}
        self.badge = 0
        self.saved: dict[str, Any] | None = None
        self.core = self._new_core()
        self.connected = False
        self.subs: dict[str, str] = {}
        self.wire: list[Any] = []  # events on their way, in order
        self.fetches: dict[int, FetchSnapshot | FetchMessages] = {}
        self.stale: dict[
            int, FetchSnapshot | FetchMessages
        ] = {}  # cancelled, may still answer
        self.handed: list[tuple[str, ChatMessage, bool]] = []
        self.baseline: dict[str, int] | None = None
        self.relaxed: set[str] = set()  # rooms whose hold ended at a bound
        self.verdict = False
        self.rest_down_until = 0.0
        self.rest_failure = "fail"
        self.last_trouble = float(
            "-inf"
        )  # when the read-back was last kept from running
        self.hostile = False  # counts may differ until read again
        self.hostile_ids: set[int] = set()

    # --- plumbing ----------------------------------------------------------------------

    def _new_core(self) -> DeliveryCore:
        """As Home Assistant starts it: the saved ledger and a complete listing."""
        ledger = Ledger.from_dict(self.saved) if self.saved is not None else None
        rooms = tuple(room.as_room() for room in self.rooms.values())
        core = DeliveryCore(ME, CONFIG, ledger=ledger, rooms=rooms, rooms_complete=True)
        core.drain()
        return core

    def _drain(self) -> None:
        holds = self.core.holds
        self.relaxed |= holds.expired
        if holds.all_expired:  # a flood of rooms: every room's hold ended at a bound
            self.relaxed |= set(self.rooms)
        for out in self.core.drain():
            if isinstance(out, Deliver):
                self.handed.append((out.name, out.message, out.backfilled))
            elif isinstance(out, FetchSnapshot | FetchMessages):
                self.fetches[out.request_id] = out
            elif isinstance(out, CancelFetches):
                self.stale.update(self.fetches)
                self.fetches.clear()
            elif isinstance(out, LedgerChanged):
                # Persisted as the Home Assistant side does it: JSON round trip.
                self.saved = json.loads(json.dumps(self.core.ledger.as_dict()))

    def _broadcast(self, channel: str, event: Any, copies: int = 1) -> None:
        if self.connected and self.subs.get(channel) == "confirmed":
            self.wire.extend([event] * copies)

    def _snapshot(self) -> Snapshot:
        return Snapshot(
            new_notifications_count=self.badge,
            unread_room_uuids=frozenset(
                uuid for uuid, room in self.rooms.items() if room.unread()
            ),
            rooms=tuple(room.as_room() for room in self.rooms.values()),
        )

    def _page(self, uuid: str, count: int) -> list[ChatMessage]:
        room = self.rooms.get(uuid)
        if room is None:
            return []
        top = [m for m in room.messages if m.parent is None][-count:]
        return [m for m in (ChatMessage.from_json(x.record()) for x in top) if m]

    # --- Circle -------------------------------------------------------------------------

    @initialize(rooms=st.integers(min_value=1, max_value=3))
    def make_rooms(self, rooms: int) -> None:
        for index in range(rooms):
            self._create_room(f"r{index}", announce=False)

    def _create_room(self, uuid: str, *, announce: bool) -> None:
        room = Room(uuid, 500 + len(self.rooms))
        self.rooms[uuid] = room
        if announce:
            self._broadcast(
                "chats",
                ChatRoomEvent(
                    "ChatRoomChannel",
                    "chatRoomCreated",
                    {
                        "uuid": uuid,
                        "id": room.id,
                        "name": f"room {uuid}",
                        "unread_messages_count": 0,
                    },
                ),
            )

    @precondition(lambda self: len(self.rooms) < 5)
    @rule()
    def create_room(self) -> None:
        self._create_room(f"r{len(self.rooms)}", announce=True)

    @precondition(lambda self: sum(len(r.messages) for r in self.rooms.values()) < 60)
    @rule(
        data=st.data(),
        own=st.booleans(),
        reply=st.booleans(),
        copies=st.integers(min_value=1, max_value=2),
    )
    def send(self, data: st.DataObject, own: bool, reply: bool, copies: int) -> None:
        room = self.rooms[data.draw(st.sampled_from(sorted(self.rooms)))]
        top = [m for m in room.messages if m.parent is None]
        parent = top[-1].id if reply and top else None
        self.next_id += 1
        message = Msg(
            self.next_id,
            room.uuid,
            ME if own else data.draw(st.sampled_from(OTHERS)),
            parent,
            EPOCH + self.circle_time,
        )
        room.messages.append(message)
        if own:
            room.read_up_to = message.id
        # The same message on two channels (Circle does that): handed over once.
        self._broadcast(
            "chats",
            MessageEvent("ChatRoomChannel", "newMessage", message.record()),
            copies,
        )

    @precondition(lambda self: any(r.messages for r in self.rooms.values()))
    @rule(data=st.data(), delete=st.booleans())
    def edit(self, data: st.DataObject, delete: bool) -> None:
        messages = [m for r in self.rooms.values() for m in r.messages]
        message = data.draw(st.sampled_from(messages))
        message.edits += 1
        name = "deletedMessage" if delete else "updatedMessage"
        self._broadcast(
            "chats", MessageEvent("ChatRoomChannel", name, message.record())
        )

    @rule(data=st.data())
    def read_room(self, data: st.DataObject) -> None:
        room = self.rooms[data.draw(st.sampled_from(sorted(self.rooms)))]
        room.read_up_to = self.next_id
        self._broadcast(
            "chats",
            ChatRoomEvent(
                "ChatRoomChannel", "chatRoomRead", {"chat_room_uuid": room.uuid}
            ),
        )

    @rule(reset=st.booleans())
    def notify(self, reset: bool) -> None:
        self.badge = 0 if reset else self.badge + 1
        name = "resetNewNotificationCount" if reset else "updateNewNotificationCount"
        self._broadcast(
            "notifications",
            NotificationCountEvent(
                "NotificationChannel", name, {"new_notifications_count": self.badge}
            ),
        )

    @rule(hours=st.sampled_from([0, 0, 1, 6, 30]))
    def circle_clock_jump(self, hours: int) -> None:
        """Time passes at Circle: earlier messages may now be older than the window."""
        self.circle_time += timedelta(hours=hours)

    @precondition(lambda self: self.connected)
    @rule(
        data=st.data(),
        ghost=st.booleans(),
        count=st.integers(min_value=1, max_value=40),
    )
    def hostile_cable(self, data: st.DataObject, ghost: bool, count: int) -> None:
        """Messages Circle never had: rooms no listing has, ids up to 2**63 - 1."""
        self.hostile = True
        for _ in range(count):
            if ghost:
                uuid = f"ghost-{data.draw(st.integers(0, 10**6))}"
            else:
                uuid = data.draw(st.sampled_from(sorted(self.rooms)))
            mid = data.draw(st.integers(HOSTILE, 2**63 - 1))
            if mid in self.hostile_ids:
                continue  # one id, one message (Circle's ids are unique; so are these)
            self.hostile_ids.add(mid)
            record = Msg(mid, uuid, OTHERS[0], None, EPOCH + self.circle_time).record()
            self._broadcast(
                "chats", MessageEvent("ChatRoomChannel", "newMessage", record)
            )

    # --- the wire -----------------------------------------------------------------------

    @precondition(lambda self: not self.connected and not self.verdict)
    @rule(
        answers=st.lists(
            st.sampled_from(
                ["confirmed", "confirmed", "confirmed", "rejected", "pending"]
            ),
            min_size=3,
            max_size=3,
        )
    )
    def connect(self, answers: list[str] | None = None) -> None:
        """Welcome; the subscriptions are answered in any order (or not yet)."""
        self.connected = True
        self.subs = dict.fromkeys(SUBS, "pending")
        self.core.connected(self.now, SUBS)
        self._drain()
        for sub, answer in zip(SUBS, answers or (), strict=False):
            if answer != "pending":
                self.subs[sub] = answer
                self.core.subscription(self.now, sub, answer)
                self._drain()

    @precondition(lambda self: any(s == "pending" for s in self.subs.values()))
    @rule(
        data=st.data(), answer=st.sampled_from(["confirmed", "rejected", "unanswered"])
    )
    def answer_subscription(self, data: st.DataObject, answer: str) -> None:
        pending = sorted(k for k, v in self.subs.items() if v == "pending")
        sub = data.draw(st.sampled_from(pending))
        self.subs[sub] = answer
        self.core.subscription(self.now, sub, answer)
        self._drain()

    @precondition(
        lambda self: any(s in ("rejected", "unanswered") for s in self.subs.values())
    )
    @rule(data=st.data())
    def late_confirmation(self, data: st.DataObject) -> None:
        late = sorted(
            k for k, v in self.subs.items() if v in ("rejected", "unanswered")
        )
        sub = data.draw(st.sampled_from(late))
        self.subs[sub] = "confirmed"
        self.core.subscription(self.now, sub, "confirmed")
        self._drain()

    @precondition(lambda self: self.connected and self.subs.get("chats") == "confirmed")
    @rule(times=st.integers(min_value=1, max_value=20))
    def history_fallback(self, times: int) -> None:
        """AnyCable cannot replay (reject_history, a flapping epoch): the session tells the
        core as a fresh confirmation, again and again. The read-back under way goes on and
        at most one more follows it."""
        resyncs, reading = self.core.resyncs, dict(self.fetches)
        running = (
            self.core.planner.resync is not None and not self.core.planner.resync.verify
        )
        for _ in range(times):
            self.core.subscription(self.now, "chats", "pending")
            self.core.subscription(self.now, "chats", "confirmed")
            self._drain()
        assert self.core.resyncs - resyncs <= (0 if running else 1)
        if running:
            assert not set(reading) & set(self.stale), "a read-back under way given up"

    @precondition(lambda self: self.connected)
    @rule(now=st.integers(0, 2))
    def drop_sometimes(self, now: int) -> None:
        """A dropped socket (rarer than traffic, so that resyncs get to finish)."""
        if not now:
            self.drop()

    def drop(self) -> None:
        self.connected = False
        self.subs = {}
        self.wire.clear()  # what was on its way is gone
        self.core.disconnected(self.now, "dropped")
        self._drain()

    @rule(
        data=st.data(),
        steps=st.lists(
            st.sampled_from(["event", "event", "read", "read", "fail", "429"]),
            min_size=1,
            max_size=12,
        ),
    )
    def progress(self, data: st.DataObject, steps: list[str]) -> None:
        """The network moves on: events arrive, reads are answered, in any interleaving.

        Reads are answered in any order (a later one may come first); some fail.
        """
        for step in steps:
            if step == "event" and self.wire:
                self.core.event(self.wire.pop(0), self.now)
                self._drain()
            elif step != "event" and self.fetches:
                request_id = data.draw(st.sampled_from(sorted(self.fetches)))
                self._answer(request_id, "ok" if step == "read" else step)

    def _answer(self, request_id: int, outcome: str) -> None:
        fetch = self.fetches.pop(request_id)
        if outcome == "ok" and self.now < self.rest_down_until:
            outcome = self.rest_failure
        if outcome != "ok":
            self.last_trouble = self.now
        if outcome == "fail":
            self.core.read_failed(self.now, request_id, FailureKind.TEMPORARY, "503")
        elif outcome == "429":
            self.core.read_failed(
                self.now,
                request_id,
                FailureKind.RATE_LIMITED,
                "rate_limited",
                RETRY_AFTER,
            )
        elif isinstance(fetch, FetchSnapshot):
            snapshot = self._snapshot()
            first = not self.core.ledger.initialized
            self.core.snapshot_read(self.now, request_id, snapshot)
            if first and self.core.ledger.initialized:
                # First start: what existed when the core took its first read is history.
                self.baseline = {
                    room.uuid: room.last_message_id or 0 for room in snapshot.rooms
                }
        else:
            self.core.messages_read(
                self.now, request_id, self._page(fetch.room_uuid, fetch.count)
            )
        self._drain()

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data(), ok=st.booleans())
    def late_answer(self, data: st.DataObject, ok: bool) -> None:
        """An answer to a read the core gave up on (its task was cancelled too late)."""
        request_id = data.draw(st.sampled_from(sorted(self.stale)))
        fetch = self.stale.pop(request_id)
        phase, state = self.core.phase, self.core.state
        if not ok:
            self.core.read_failed(self.now, request_id, FailureKind.AUTH, "auth_failed")
        elif isinstance(fetch, FetchSnapshot):
            self.core.snapshot_read(self.now, request_id, self._snapshot())
        else:
            self.core.messages_read(
                self.now, request_id, self._page(fetch.room_uuid, fetch.count)
            )
        assert self.core.drain() == []
        assert (self.core.phase, self.core.state) == (phase, state)

    @rule(seconds=st.sampled_from([0.5, 3.0, 11.0, 30.0, 90.0, 125.0]))
    def time_passes(self, seconds: float) -> None:
        self._advance(self.now + seconds)

    @rule(
        seconds=st.sampled_from([0.0, 30.0, 60.0, 100.0, 115.0, 120.0, 130.0, 180.0]),
        failure=st.sampled_from(["fail", "429"]),
    )
    def rest_outage(self, seconds: float, failure: str) -> None:
        """Circle's REST API fails every read for a while (the cable may stay up)."""
        self.rest_down_until = self.now + seconds
        self.rest_failure = failure

    @rule(seconds=st.sampled_from([30.0, 120.0, 180.0]))
    def driver_runs(self, seconds: float) -> None:
        """The driver runs for a while: every read answered at once (failing while REST is
        down), time moving from deadline to deadline: long retry chains in one step."""
        end = self.now + seconds
        for _ in range(1000):
            for _ in range(200):
                if self.wire:
                    self.core.event(self.wire.pop(0), self.now)
                    self._drain()
                elif self.fetches:
                    self._answer(min(self.fetches), "ok")
                else:
                    break
            deadline = self.core.next_deadline()
            if deadline is None or deadline >= end:
                self._advance(end)
                return
            self._advance(max(deadline, self.now))
        raise AssertionError("the driver does not get to the end")

    def _kept_from_running(self) -> bool:
        """A read on its way, or no cable to resync over: time passing is trouble."""
        pending = any(v == "pending" for v in self.subs.values())
        return bool(self.fetches) or not self.connected or pending

    def _advance(self, when: float) -> None:
        """Let time pass as the driver does: a tick at every deadline on the way."""
        for _ in range(10_000):
            deadline = self.core.next_deadline()
            step = when if deadline is None or deadline > when else deadline
            if step > self.now and self._kept_from_running():
                self.last_trouble = step
            for hold in self.core.holds.holds.values():
                if hold.deadline <= step:
                    # Past its bound only if the read-back could not run until shortly
                    # before: REST back within two minutes keeps the order.
                    assert self.last_trouble >= hold.deadline - TROUBLE_MARGIN, (
                        f"hold released at {hold.deadline} though the read-back could "
                        f"run since {self.last_trouble}"
                    )
            self.now = max(self.now, step)
            self.core.tick(self.now)
            self._drain()
            if step >= when:
                return
        raise AssertionError("the deadlines do not move on")

    @rule(now=st.integers(0, 3))
    def restart(self, now: int = 0) -> None:
        """Home Assistant restarts: a new core with the saved ledger."""
        if now:
            return  # rarer than the other steps
        self.core.stop()
        self.core.drain()
        self.core = self._new_core()
        self.connected = False
        self.subs = {}
        self.wire.clear()
        self.fetches.clear()
        self.stale.clear()
        self.verdict = False

    @precondition(lambda self: bool(self.fetches) and not self.verdict)
    @rule(data=st.data(), now=st.integers(0, 3))
    def auth_verdict(self, data: st.DataObject, now: int) -> None:
        if now:
            return  # rarer than the other steps
        request_id = data.draw(st.sampled_from(sorted(self.fetches)))
        self.fetches.pop(request_id)
        # What was held goes out at the verdict, in order of arrival.
        self.relaxed |= set(self.core.holds.holds)
        self.core.read_failed(self.now, request_id, FailureKind.AUTH, "auth_failed")
        self._drain()
        assert self.core.phase is Phase.AUTH_FAILED
        assert not self.core.status.available and self.core.status.auth_failed
        self.verdict = True
        self.connected = False
        self.subs = {}
        self.wire.clear()

    # --- checks -------------------------------------------------------------------------

    @invariant()
    def nothing_twice(self) -> None:
        ids = Counter(m.id for name, m, _ in self.handed if name == "newMessage")
        twice = [i for i, n in ids.items() if n > 1]
        assert not twice, f"handed over twice: {twice}"
        edits = Counter(
            (name, m.id, m.edited_at)
            for name, m, _ in self.handed
            if name != "newMessage"
        )
        assert all(n == 1 for n in edits.values())

    @invariant()
    def never_stops_on_its_own(self) -> None:
        assert self.core.phase is not Phase.STOPPED
        assert (self.core.phase is Phase.AUTH_FAILED) == self.verdict

    @invariant()
    def resync_follows_the_answers(self) -> None:
        """Connected with every subscription answered: a resync runs or has run."""
        phase = self.core.phase
        if not self.connected:
            assert phase in (Phase.DISCONNECTED, Phase.AUTH_FAILED)
        elif self.subs and all(v != "pending" for v in self.subs.values()):
            assert phase in (Phase.SYNCING, Phase.LIVE)
            if phase is Phase.SYNCING:
                assert self.fetches or self.core.next_deadline() is not None

    @invariant()
    def order_per_room(self) -> None:
        last: dict[str, int] = {}
        for name, message, _ in self.handed:
            if name != "newMessage" or message.parent_message_id is not None:
                continue
            room = message.chat_room_uuid or ""
            if room in self.relaxed or message.id >= HOSTILE:
                continue
            assert message.id > last.get(room, 0), f"out of order in {room}"
            last[room] = message.id

    @invariant()
    def no_hold_outlives_its_bound(self) -> None:
        """Whatever fails: no message waits past its bound (time, count, memory)."""
        holds = self.core.holds
        for hold in holds.holds.values():
            assert hold.deadline > self.now
            assert hold.deadline - hold.since == pytest.approx(HOLD_MAX_SECONDS)
            assert len(hold.items) < HOLD_MAX_MESSAGES
        assert holds.held <= HOLD_MAX_TOTAL
        assert holds.held == sum(len(h.items) for h in holds.holds.values())
        assert len(holds.expired) <= EXPIRED_ROOMS_MAX

    @invariant()
    def one_read_back_at_a_time(self) -> None:
        """Fallbacks and late confirmations are merged: one snapshot read in flight."""
        assert sum(isinstance(f, FetchSnapshot) for f in self.fetches.values()) <= 1

    @invariant()
    def state_is_bounded(self) -> None:
        """Whatever ids the server sends: bounded state, no watermark past Circle's ids."""
        core = self.core
        real = set(self.rooms)
        assert len(core.unread.unlisted) <= UNLISTED_ROOMS_MAX
        assert len(set(core.unread.counted) - real) <= UNLISTED_ROOMS_MAX
        assert len(core.ledger.rooms() - real) <= UNLISTED_ROOMS_MAX
        assert len(core.state.unread_rooms - real) <= UNLISTED_ROOMS_MAX
        assert len(set(core.rooms) - real) <= UNLISTED_ROOMS_MAX
        for uuid, mark in core.ledger.watermarks.items():
            room = self.rooms.get(uuid)
            top = max((m.id for m in room.messages), default=0) if room else 0
            assert mark <= top, f"watermark {mark} of {uuid} past Circle's {top}"
        for ids in core.ledger.delivered.values():
            assert len(ids) <= MAX_DELIVERED_ABOVE

    @rule(now=st.integers(0, 2))
    def settle(self, now: int = 0) -> None:
        """Quiescence: connect, confirm everything, deliver everything; then check."""
        if now:
            return
        if self.verdict:
            self.restart()
        self.rest_down_until = min(self.rest_down_until, self.now)  # Circle is back
        if self.connected and any(s != "confirmed" for s in self.subs.values()):
            self.drop()
        if not self.connected:
            self.connect([])
            for sub in SUBS:
                self.subs[sub] = "confirmed"
                self.core.subscription(self.now, sub, "confirmed")
                self._drain()
        for _ in range(5000):  # a hostile burst can queue hundreds of broadcasts
            if self.wire:
                self.core.event(self.wire.pop(0), self.now)
                self._drain()
            elif self.fetches:
                self._answer(min(self.fetches), "ok")
            elif self.core.phase is not Phase.LIVE or not self.core.status.synced:
                self._advance(self.now + 400.0)  # past any retry
            elif self.core.planner.verify_at is not None:
                self._advance(
                    max(self.now, self.core.planner.verify_at)
                )  # counts read again
            else:
                break
        if self.hostile:
            # A hostile cable moved the counts: they are right again once read again.
            self.hostile = False
            self.core.verify_soon(self.now)
            self._advance(self.now + 60.0)
            while self.fetches:
                self._answer(min(self.fetches), "ok")
        core = self.core
        assert not self.wire, "settle must take every broadcast before it checks"
        assert core.phase is Phase.LIVE and core.status.synced
        assert core.status.available and core.status.connected
        self._check_all_delivered()
        self._check_counts()

    def _check_all_delivered(self) -> None:
        if self.baseline is None:
            return
        every = [m for r in self.rooms.values() for m in r.messages if m.parent is None]
        newest = max((m.sent_at for m in every), default=EPOCH)
        handed = Counter(m.id for name, m, _ in self.handed if name == "newMessage")
        for message in every:
            if message.id <= self.baseline.get(message.room, 0):
                continue
            if message.sent_at < newest - WINDOW:
                continue
            assert handed[message.id] == 1, (
                f"message {message.id} handed {handed[message.id]}x"
            )

    def _check_counts(self) -> None:
        state = self.core.state
        assert state.new_notifications_count == self.badge
        truth = {uuid: room.unread() for uuid, room in self.rooms.items()}
        assert dict(state.unread_counts) == truth
        assert state.unread_rooms == {uuid for uuid, n in truth.items() if n}


@pytest.fixture
def auto_enable_custom_integrations() -> None:
    """Pure Python: no Home Assistant instance here."""


@pytest.mark.timeout(0)
def test_delivery_core_against_circle() -> None:
    run_state_machine_as_test(DeliveryMachine, settings=settings.get_profile(PROFILE))


ORDER_KEPT_WITHIN = HOLD_MAX_SECONDS - LAST_TRY_MARGIN


@settings(
    max_examples=300 if PROFILE != "long" else 3000,
    deadline=None,
    derandomize=PROFILE != "long",
)
@given(
    down=st.floats(min_value=0.0, max_value=180.0),
    failure=st.sampled_from(["fail", "429"]),
    arrivals=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=180.0), st.integers(0, 1)),
        min_size=1,
        max_size=30,
    ),
)
def test_rest_back_within_two_minutes_keeps_the_order(
    down: float, failure: str, arrivals: list[tuple[float, int]]
) -> None:
    """REST down for 0-180 s after a reconnect, live messages meanwhile, a driver that
    answers at once: back by the last try (120 s) keeps every room's order; later, every
    message still comes once, none waited past its bound."""
    machine = DeliveryMachine()
    machine.make_rooms(2)
    machine.connect(["confirmed"] * 3)
    machine.settle()
    before = len(machine.handed)
    machine.drop()
    machine.connect(["confirmed"] * 3)
    machine.rest_outage(down, failure)
    start = machine.now
    for at, room in sorted(arrivals):
        machine.driver_runs(start + at - machine.now)
        machine.next_id += 1
        message = Msg(machine.next_id, f"r{room}", OTHERS[0], None, EPOCH)
        machine.rooms[message.room].messages.append(message)
        machine._broadcast(
            "chats", MessageEvent("ChatRoomChannel", "newMessage", message.record())
        )
        machine.no_hold_outlives_its_bound()
    machine.driver_runs(400.0)
    machine.nothing_twice()
    machine.no_hold_outlives_its_bound()
    machine.order_per_room()
    handed = [m.id for name, m, _ in machine.handed[before:] if name == "newMessage"]
    assert sorted(handed) == list(
        range(machine.next_id - len(arrivals) + 1, machine.next_id + 1)
    )
    if down <= ORDER_KEPT_WITHIN:
        assert not machine.relaxed
    machine.teardown()


def test_two_hundred_retries_two_hundred_messages() -> None:
    """Issue 22's case: the read-back fails 200 times; 200 live messages all go out once
    their bound has passed, in order of arrival, and the missed ones follow once REST is back."""
    machine = DeliveryMachine()
    # One page reads the whole gap (200 live + 3 missed), so that nothing is skipped.
    machine.core = DeliveryCore(ME, replace(CONFIG, per_room=500))
    machine.make_rooms(1)
    machine.connect(["confirmed"] * 3)
    machine.settle()
    machine.drop()
    missed = []
    for _ in range(3):
        machine.next_id += 1
        missed.append(machine.next_id)
        machine.rooms["r0"].messages.append(
            Msg(machine.next_id, "r0", OTHERS[0], None, EPOCH)
        )
    before = len(machine.handed)
    machine.connect(["confirmed"] * 3)
    machine.rest_outage(10**6, "fail")
    live = []
    while machine.core.failures < 200 or len(live) < 200:
        machine.next_id += 1
        live.append(machine.next_id)
        message = Msg(machine.next_id, "r0", OTHERS[0], None, EPOCH)
        machine.rooms["r0"].messages.append(message)
        machine._broadcast(
            "chats", MessageEvent("ChatRoomChannel", "newMessage", message.record())
        )
        machine.driver_runs(30.0)
    handed = [m.id for name, m, _ in machine.handed[before:] if name == "newMessage"]
    assert handed == live  # every live one, in order of arrival, none held
    assert machine.core.holds.held == 0
    machine.settle()  # Circle is back
    handed = [m.id for name, m, _ in machine.handed[before:] if name == "newMessage"]
    assert handed == live + missed
    machine.teardown()
