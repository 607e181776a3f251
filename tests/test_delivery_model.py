"""Model-based tests of the delivery core: random orders of everything, checked against Circle.

A reference Circle (rooms, messages, read state, the notification badge) runs beside the core.
Hypothesis interleaves sends, reads, edits, drops, confirmations and rejections, REST answers
that succeed, fail, come late or never, restarts and clock jumps. After every step no message
was handed over twice; after quiescence (connected, every subscription confirmed, every read
answered) every top-level message younger than the window was handed over exactly once, each
room's in id order, and the counts equal Circle's.

Profiles: `ci` (default, derandomized, 2,000 examples) and `long` (20,000 random examples):
`HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_delivery_model.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
import os
from typing import Any

from hypothesis import HealthCheck, settings, strategies as st
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
CONFIG = DeliveryConfig(backfill_window=WINDOW, per_room=100, hold_max=10.0)


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
        self.order_relaxed = False
        self.verdict = False

    # --- plumbing ----------------------------------------------------------------------

    def _new_core(self) -> DeliveryCore:
        ledger = Ledger.from_dict(self.saved) if self.saved is not None else None
        return DeliveryCore(ME, CONFIG, ledger=ledger)

    def _drain(self) -> None:
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
        if outcome == "fail":
            self.core.read_failed(self.now, request_id, FailureKind.TEMPORARY, "503")
        elif outcome == "429":
            self.core.read_failed(
                self.now, request_id, FailureKind.RATE_LIMITED, "rate_limited", 2.0
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

    @rule(seconds=st.sampled_from([0.5, 3.0, 11.0, 90.0]))
    def time_passes(self, seconds: float) -> None:
        self._advance(self.now + seconds)

    def _advance(self, when: float) -> None:
        hold_until = self.core.holds.next_deadline()
        if hold_until is not None and when >= hold_until:
            # Held messages are released before the backfill: they may come first.
            self.order_relaxed = True
        self.now = when
        self.core.tick(self.now)
        self._drain()

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
        if self.order_relaxed:
            return
        last: dict[str, int] = {}
        for name, message, _ in self.handed:
            if name != "newMessage" or message.parent_message_id is not None:
                continue
            room = message.chat_room_uuid or ""
            assert message.id > last.get(room, 0), f"out of order in {room}"
            last[room] = message.id

    @rule(now=st.integers(0, 2))
    def settle(self, now: int = 0) -> None:
        """Quiescence: connect, confirm everything, deliver everything; then check."""
        if now:
            return
        if self.verdict:
            self.restart()
        if self.connected and any(s != "confirmed" for s in self.subs.values()):
            self.drop()
        if not self.connected:
            self.connect([])
            for sub in SUBS:
                self.subs[sub] = "confirmed"
                self.core.subscription(self.now, sub, "confirmed")
                self._drain()
        for _ in range(200):
            if self.wire:
                self.core.event(self.wire.pop(0), self.now)
                self._drain()
            elif self.fetches:
                self._answer(min(self.fetches), "ok")
            elif self.core.phase is not Phase.LIVE or not self.core.status.synced:
                self._advance(self.now + 400.0)  # past any retry
            elif self.core._verify_at is not None:
                self._advance(max(self.now, self.core._verify_at))  # counts read again
            else:
                break
        core = self.core
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
