"""The extended protocol's state (client/reliable.py), sans IO, with a fake clock."""

from __future__ import annotations

import json

from hypothesis import given, strategies as st
from multidict import CIMultiDict

from custom_components.circle.client.reliable import (
    EXT_PROTOCOL,
    OFFERED_PROTOCOLS,
    PONG,
    RESTORE_HEADER,
    Fallback,
    FallbackReason,
    HistoryState,
    ReliableStreams,
    StreamPosition,
)

IDENT = '{"channel":"NotificationChannel","community_member_id":42}'
OTHER = '{"channel":"ChatRoomChannel","community_member_id":42}'


def _ext(now: float = 1_000.0) -> ReliableStreams:
    state = ReliableStreams(clock=lambda: now)
    state.connected(EXT_PROTOCOL, CIMultiDict({"x-anycable-version": "1.6.4"}))
    return state


def _broadcast(stream: str, epoch: str, offset: int) -> dict[str, object]:
    return {
        "identifier": IDENT,
        "message": {},
        "stream_id": stream,
        "epoch": epoch,
        "offset": offset,
    }


def test_offers_ext_first_and_plain_after() -> None:
    assert OFFERED_PROTOCOLS[:2] == (EXT_PROTOCOL, "actioncable-v1-json")


def test_plain_server_changes_nothing() -> None:
    state = ReliableStreams(clock=lambda: 5.0)
    state.connected("actioncable-v1-json", CIMultiDict())
    assert state.on_welcome({"type": "welcome"}) == ()
    assert state.flavour == "actioncable"
    assert state.on_ping({"type": "ping", "message": 9}) is None
    assert state.restore_headers() == {}
    assert json.loads(state.subscribe_command(IDENT)) == {
        "command": "subscribe",
        "identifier": IDENT,
    }
    # Circle's documented welcome carries a sid: AnyCable, though on the plain protocol.
    state.on_welcome({"type": "welcome", "sid": "JnehncGjAQuLBIBoImSMk"})
    assert state.flavour == "anycable" and state.sid is None


def test_welcome_sid_restore_and_version() -> None:
    state = _ext()
    assert state.server_version == "1.6.4" and state.flavour == "anycable"
    assert state.on_welcome({"type": "welcome", "sid": "a" * 21}) == ()
    assert state.restore_headers() == {RESTORE_HEADER: "a" * 21}
    state.connected(EXT_PROTOCOL, CIMultiDict())  # the handshake that sent it
    restored = state.on_welcome(
        {"type": "welcome", "sid": "b" * 21, "restored": True, "restored_ids": [IDENT]}
    )
    assert restored == (IDENT,) and state.restored
    state.on_disconnect()
    assert state.restore_headers() == {}
    # A restored welcome without ids (Go leaves an empty list out): what is known.
    state.connected(EXT_PROTOCOL, CIMultiDict())
    state.on_welcome({"type": "welcome", "sid": "c" * 21})
    state.connected(EXT_PROTOCOL, CIMultiDict())  # sends "c" * 21
    state.track(IDENT, _broadcast("s", "e1", 1))
    assert state.on_welcome({"type": "welcome", "sid": "c", "restored": True}) == (
        IDENT,
    )


def test_positions_history_request_and_answers() -> None:
    state = _ext()
    state.on_welcome({"type": "welcome", "sid": "x"})
    assert state.on_ping({"type": "ping", "message": 1234}) == PONG
    assert state.track(IDENT, _broadcast("s", "e1", 3)) is None
    assert state.track(IDENT, _broadcast("s", "e1", 2)) is None  # late: kept at 3
    assert state.positions["s"] == StreamPosition("e1", 3)
    cmd = json.loads(state.subscribe_command(IDENT))
    assert cmd["history"] == {
        "since": 1234,
        "streams": {"s": {"epoch": "e1", "offset": 3}},
    }
    assert state.history[IDENT] is HistoryState.REQUESTED
    assert state.on_history("confirm_history", IDENT) is None
    assert state.history[IDENT] is HistoryState.CONFIRMED
    assert state.on_history("reject_history", IDENT) == Fallback(
        IDENT, FallbackReason.REJECTED
    )
    # An epoch change is a fallback; the new epoch is kept.
    assert state.track(IDENT, _broadcast("s", "e2", 1)) == Fallback(
        IDENT, FallbackReason.EPOCH_CHANGED
    )
    assert state.positions["s"] == StreamPosition("e2", 1)
    # History for a restored subscription with no stream and no time: unknown stream.
    fresh = ReliableStreams(clock=lambda: 0.0)
    fresh.connected(EXT_PROTOCOL, None)
    assert fresh.history_command(OTHER) == Fallback(
        OTHER, FallbackReason.UNKNOWN_STREAM
    )
    state.forget(IDENT)
    assert not state.positions and IDENT not in state.history


def test_hostile_fields_are_ignored() -> None:
    state = _ext()
    for frame in (
        {"stream_id": 1, "epoch": "e", "offset": 1},
        {"stream_id": "s", "epoch": None, "offset": 1},
        {"stream_id": "s", "epoch": "e", "offset": "1"},
        {"stream_id": "s", "epoch": "e", "offset": -1},
        {"stream_id": "s" * 1000, "epoch": "e", "offset": 1},
    ):
        assert state.track(IDENT, frame) is None
    assert not state.positions
    assert state.on_history("reject_history", 42) is None
    state.on_welcome({"type": "welcome", "sid": ["not", "a", "sid"]})
    assert state.sid is None
    state.connected(EXT_PROTOCOL, {"X-AnyCable-Version": 7})
    assert state.server_version is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.sampled_from(["e1", "e2"]),
            st.integers(0, 50),
        ),
        max_size=40,
    )
)
def test_any_order_of_broadcasts(frames: list[tuple[str, str, int]]) -> None:
    """The position is the newest of the current epoch; every epoch change says so."""
    state = _ext()
    expected: dict[str, StreamPosition] = {}
    for stream, epoch, offset in frames:
        result = state.track(IDENT, _broadcast(stream, epoch, offset))
        known = expected.get(stream)
        if known is not None and known.epoch != epoch:
            assert result == Fallback(IDENT, FallbackReason.EPOCH_CHANGED)
            expected[stream] = StreamPosition(epoch, offset)
        else:
            assert result is None
            if known is None or offset > known.offset:
                expected[stream] = StreamPosition(epoch, offset)
    assert state.positions == expected
    request = state.request_for(IDENT)
    # Nothing seen and no welcome yet (no time to ask from): nothing to ask for.
    assert (request is None) == (not expected)
    if request is not None:
        assert set(request["streams"]) == set(expected)
