"""The client against the simulator's AnyCable flavour: the extended protocol end to end.

Session restore, history replay in order, and the REST fallback when the server cannot
replay (reject_history, an epoch change, a stream it no longer knows), over loopback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from custom_components.circle.client import MessageEvent
from custom_components.circle.client.reliable import (
    EXT_PROTOCOL,
    Fallback,
    FallbackReason,
    HistoryState,
)
from tests.conftest import FAST_PING, wait_for
from tests.simulator import CircleSimulator, SimConfig
from tests.simulator.anycable import VERSION
from tests.simulator.model import room_stream
from tests.test_session import Stack


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(ping_interval=FAST_PING, flavour="anycable")


def _sent(sim: CircleSimulator) -> list[dict[str, Any]]:
    return [json.loads(text) for text in sim.connections[0].received]


def _message_ids(harness) -> list[int]:
    return [
        e.data["id"]
        for e in harness.events
        if isinstance(e, MessageEvent) and e.name == "newMessage"
    ]


def _post(sim: CircleSimulator, room, n: int, text: str = "m") -> list[int]:
    ada = sim.seeded["ada"].id
    return [sim.community.post_message(room, ada, f"{text}{i}").id for i in range(n)]


async def test_negotiates_ext_and_records_server_facts(harness_factory, simulator):
    harness = harness_factory()
    harness.start()
    await harness.ready()
    cable = harness.cable
    conn = simulator.connections[0]
    assert conn.protocol == EXT_PROTOCOL
    assert cable.protocol == EXT_PROTOCOL
    assert cable.sid == conn.sid and len(cable.sid) == 21
    assert cable.server_version == VERSION
    assert cable.server_flavour == "anycable"
    # Every subscribe asked for the history since the welcome, as @anycable/core does.
    subscribes = [f for f in _sent(simulator) if f["command"] == "subscribe"]
    assert len(subscribes) == 3
    assert all(f["history"]["since"] > 0 for f in subscribes)
    # It answers pings with pongs.
    await wait_for(lambda: conn.pongs >= 2)
    diag = cable.reliable.diagnostics()
    assert diag["flavour"] == "anycable" and diag["protocol"] == EXT_PROTOCOL
    assert diag["sid"] == conn.sid[:4] + "…(21)"  # a session credential: a hint only
    assert conn.sid not in repr(cable) and conn.sid not in json.dumps(diag)


async def test_restores_the_session_and_replays_missed_messages_in_order(
    harness_factory, simulator
) -> None:
    room = simulator.seeded["space"]
    harness = harness_factory(room_ids=(room.id,))
    harness.start()
    await harness.ready()
    live = _post(simulator, room, 2, "live")
    await wait_for(lambda: _message_ids(harness) == live)
    old_sid = harness.cable.sid
    simulator.drop_connections()
    missed = _post(simulator, room, 3, "missed")  # before the loop can reconnect
    await harness.ready(connections=2)
    await wait_for(lambda: _message_ids(harness) == live + missed)
    conn = simulator.connections[0]
    assert conn.restored and simulator.broker.restores == [(old_sid, True)]
    sent = _sent(simulator)
    assert not [f for f in sent if f["command"] == "subscribe"]
    history = [f for f in sent if f["command"] == "history"]
    assert len(history) == 4  # every subscription the server restored
    room_ident = next(s.identifier for s in harness.cable.subscriptions if s.room_id)
    request = next(f for f in history if f["identifier"] == room_ident)["history"]
    assert request["streams"] == {
        room_stream(room.id): {"epoch": simulator.broker.epoch, "offset": 2}
    }
    await wait_for(
        lambda: harness.cable.reliable.history.get(room_ident) is HistoryState.CONFIRMED
    )
    assert harness.cable.reliable.restored
    # Each once, in order, though each came on several channels.
    assert _message_ids(harness) == live + missed


async def test_a_server_restart_resubscribes_with_history(
    harness_factory, simulator
) -> None:
    room = simulator.seeded["space"]
    harness = harness_factory(room_ids=(room.id,))
    harness.start()
    await harness.ready()
    live = _post(simulator, room, 1)
    await wait_for(lambda: _message_ids(harness) == live)
    await simulator.disconnect_all("server_restart", reconnect=True)
    missed = _post(simulator, room, 2)
    await harness.ready(connections=2)
    await wait_for(lambda: _message_ids(harness) == live + missed)
    conn = simulator.connections[0]
    # A disconnect frame ends the session: no restore was even asked for.
    assert not conn.restored and simulator.broker.restores == []
    room_sub = next(
        f
        for f in _sent(simulator)
        if f["command"] == "subscribe" and "Chats::RoomChannel" in f["identifier"]
    )
    assert room_sub["history"]["streams"][room_stream(room.id)]["offset"] == 1


@pytest.mark.parametrize("cause", ["reject", "epoch", "unknown_stream"])
async def test_history_the_server_cannot_give_falls_back(
    harness_factory, simulator, cause
) -> None:
    room = simulator.seeded["space"]
    harness = harness_factory(room_ids=(room.id,))
    fallbacks: list[Fallback] = []

    def broken(_fallback: Fallback) -> None:
        raise RuntimeError("a listener's bug")

    harness.cable.add_fallback_listener(broken)  # must not stop the others
    harness.cable.add_fallback_listener(fallbacks.append)
    harness.start()
    await harness.ready()
    _post(simulator, room, 1)
    await wait_for(lambda: _message_ids(harness))
    simulator.drop_connections()
    if cause == "reject":
        simulator.config.history = False
    elif cause == "epoch":
        simulator.broker.bump_epoch()
    else:
        simulator.broker.forget_stream(room_stream(room.id))
    await harness.ready(connections=2)
    room_ident = next(s.identifier for s in harness.cable.subscriptions if s.room_id)
    await wait_for(lambda: any(f.identifier == room_ident for f in fallbacks))
    assert {f.reason for f in fallbacks} == {FallbackReason.REJECTED}
    assert harness.cable.reliable.history[room_ident] is HistoryState.REJECTED
    assert harness.cable.errors >= 1 and harness.cable.status.state == "connected"


async def test_an_epoch_change_seen_live_falls_back(harness_factory, simulator):
    room = simulator.seeded["space"]
    harness = harness_factory(room_ids=(room.id,))
    fallbacks: list[Fallback] = []
    harness.cable.add_fallback_listener(fallbacks.append)
    harness.start()
    await harness.ready()
    _post(simulator, room, 1)
    await wait_for(lambda: len(_message_ids(harness)) == 1)
    assert not fallbacks
    simulator.broker.bump_epoch()
    _post(simulator, room, 1)
    await wait_for(lambda: len(_message_ids(harness)) == 2)
    assert fallbacks and {f.reason for f in fallbacks} == {FallbackReason.EPOCH_CHANGED}


@pytest.fixture
async def stack(session, simulator):
    made = Stack(session, simulator)
    yield made
    await made.close()


def _live(stack: Stack) -> bool:
    return stack.live() and stack.core.planner.resync is None


async def test_session_reads_the_room_back_over_rest_on_reject(stack, simulator):
    """A rejected history starts a REST resync after it; replayed messages are delivered once."""
    await wait_for(lambda: _live(stack))
    s = simulator.seeded
    simulator.drop_connections()
    simulator.config.history = False
    missed = _post(simulator, s["dm"], 2)
    await wait_for(lambda: stack.cable.reliable.fallbacks >= 1)
    resyncs = stack.core.resyncs
    await wait_for(lambda: _live(stack) and stack.core.resyncs >= resyncs)
    await wait_for(lambda: [mid for _n, mid, _b in stack.recorder.messages] == missed)
    # The backfill (REST) delivered them: the server replayed nothing.
    assert all(backfilled for _n, _mid, backfilled in stack.recorder.messages)


async def test_session_delivers_replayed_messages_once_in_order(stack, simulator):
    await wait_for(lambda: _live(stack))
    s = simulator.seeded
    simulator.drop_connections()
    missed = _post(simulator, s["dm"], 3)
    await wait_for(lambda: stack.cable.reliable.replayed >= 3)
    await wait_for(lambda: _live(stack))
    await wait_for(lambda: [mid for _n, mid, _b in stack.recorder.messages] == missed)
    assert stack.cable.reliable.fallbacks == 0
    assert (
        stack.core.resyncs >= 2
    )  # the REST resync of counts ran after the restore too


async def test_session_reads_back_over_rest_when_the_epoch_changes_live(
    stack, simulator
) -> None:
    """A fallback while live starts a REST resync; a plain live message does not."""
    await wait_for(lambda: _live(stack))
    s = simulator.seeded
    resyncs = stack.core.resyncs
    first = _post(simulator, s["dm"], 1)
    await wait_for(lambda: [mid for _n, mid, _b in stack.recorder.messages] == first)
    assert stack.core.resyncs == resyncs
    simulator.broker.bump_epoch()  # the server lost its history
    second = _post(simulator, s["dm"], 1)
    await wait_for(lambda: stack.core.resyncs == resyncs + 1)
    await wait_for(lambda: _live(stack))
    delivered = [mid for _n, mid, _b in stack.recorder.messages]
    assert delivered == first + second
    assert stack.cable.reliable.fallbacks >= 1
