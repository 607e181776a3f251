"""The simulator's AnyCable flavour speaks anycable-go's wire protocol (raw sockets here)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.conftest import FAST_PING, wait_for
from tests.simulator import CircleSimulator, SimConfig
from tests.simulator.anycable import DISCONNECT_REASONS, EXT_PROTOCOL, VERSION
from tests.simulator.model import notification_stream

EXT = (EXT_PROTOCOL, "actioncable-v1-json")


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(ping_interval=FAST_PING, flavour="anycable")


def _ident(sim: CircleSimulator) -> str:
    return json.dumps(
        {"channel": "NotificationChannel", "community_member_id": sim.member_id},
        separators=(",", ":"),
    )


async def _open(
    session: aiohttp.ClientSession,
    sim: CircleSimulator,
    protocols: tuple[str, ...] = EXT,
    token: str | None = None,
    **kwargs: Any,
) -> aiohttp.ClientWebSocketResponse:
    token = token or sim.issue_access(sim.member_id)[0]
    headers = {"Authorization": f"Bearer {token}", "Origin": sim.origin}
    headers.update(kwargs.pop("headers", {}))
    return await session.ws_connect(
        sim.cable_url, protocols=protocols, headers=headers, **kwargs
    )


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str | None = None) -> Any:
    """The next frame that is not a ping (of `kind`, or a broadcast when kind is None)."""
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame.get("type") == "ping":
            continue
        if kind is None or frame.get("type") == kind:
            return frame


async def _subscribe(ws, ident: str, history: dict[str, Any] | None = None) -> None:
    cmd: dict[str, Any] = {"command": "subscribe", "identifier": ident}
    if history is not None:
        cmd["history"] = history
    await ws.send_json(cmd)
    assert (await _next(ws, "confirm_subscription"))["identifier"] == ident


def _notify(sim: CircleSimulator, n: int) -> None:
    """Broadcast `n` count updates on the member's notification stream: n offsets."""
    stream = notification_stream(sim.member_id)
    for i in range(n):
        sim.publish(
            stream, "updateNewNotificationCount", {"new_notifications_count": i}
        )


async def test_handshake_header_sid_and_protocol_choice(simulator, session) -> None:
    ws = await _open(session, simulator)
    assert ws.protocol == EXT_PROTOCOL
    assert ws._response.headers["X-AnyCable-Version"] == VERSION
    welcome = await _next(ws, "welcome")
    assert set(welcome) == {"type", "sid"} and len(welcome["sid"]) == 21
    await ws.close()
    # A client offering the plain protocol first (or only) gets it.
    ws = await _open(
        session, simulator, protocols=("actioncable-v1-json", EXT_PROTOCOL)
    )
    assert ws.protocol == "actioncable-v1-json"
    await ws.close()


async def test_disallowed_origin_is_403_where_rails_says_404(
    simulator, session
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await _open(session, simulator, headers={"Origin": "https://evil.example"})
    assert err.value.status == 403
    simulator.config.flavour = "rails"
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await _open(session, simulator, headers={"Origin": "https://evil.example"})
    assert err.value.status == 404


async def test_broadcasts_carry_stream_epoch_and_offset_only_in_ext(
    simulator, session
) -> None:
    ident = _ident(simulator)
    ext = await _open(session, simulator)
    plain = await _open(session, simulator, protocols=("actioncable-v1-json",))
    for ws in (ext, plain):
        await _next(ws, "welcome")
        await _subscribe(ws, ident)
    _notify(simulator, 2)
    frames = [await _next(ext) for _ in range(2)]
    stream = notification_stream(simulator.member_id)
    assert [(f["stream_id"], f["epoch"], f["offset"]) for f in frames] == [
        (stream, simulator.broker.epoch, 1),
        (stream, simulator.broker.epoch, 2),
    ]
    assert set(await _next(plain)) == {"identifier", "message"}
    await ext.send_json({"command": "pong"})
    await wait_for(lambda: sum(c.pongs for c in simulator.connections) == 1)
    await plain.close()
    await ext.close()


async def test_history_by_offset_since_and_rejections(simulator, session) -> None:
    simulator.config.history_limit = 5
    ident = _ident(simulator)
    stream = notification_stream(simulator.member_id)
    ws = await _open(session, simulator)
    await _next(ws, "welcome")
    await _subscribe(ws, ident)
    _notify(simulator, 3)
    epoch = (await _next(ws))["epoch"]
    for _ in range(2):
        await _next(ws)

    async def history(request: dict[str, Any]) -> tuple[list[int], str]:
        await ws.send_json(
            {"command": "history", "identifier": ident, "history": request}
        )
        offsets = []
        while "offset" in (frame := await _next(ws)):
            offsets.append(frame["offset"])
        return offsets, frame["type"]

    pos = {stream: {"epoch": epoch, "offset": 1}}
    assert await history({"streams": pos}) == ([2, 3], "confirm_history")
    assert await history({"since": 1}) == ([1, 2, 3], "confirm_history")
    # Past the buffer (5 kept): offset 1 fell off.
    _notify(simulator, 4)
    for _ in range(4):
        await _next(ws)
    assert await history({"streams": pos}) == ([], "reject_history")
    pos[stream]["offset"] = 3
    assert await history({"streams": pos}) == ([4, 5, 6, 7], "confirm_history")
    pos[stream]["offset"] = 99  # ahead of the stream
    assert await history({"streams": pos}) == ([], "reject_history")
    pos[stream] = {"epoch": epoch, "offset": 7}
    simulator.broker.bump_epoch()
    assert await history({"streams": pos}) == ([], "reject_history")
    simulator.broker.forget_stream(stream)
    pos[stream]["epoch"] = simulator.broker.epoch
    assert await history({"streams": pos}) == ([], "reject_history")
    # History in the subscribe command itself.
    ident2 = json.dumps(
        {"channel": "ChatRoomChannel", "community_member_id": simulator.member_id}
    )
    await ws.send_json(
        {"command": "subscribe", "identifier": ident2, "history": {"since": 1}}
    )
    assert (await _next(ws, "confirm_subscription"))["identifier"] == ident2
    assert (await _next(ws, "confirm_history"))["identifier"] == ident2
    await ws.close()


async def test_session_restore_by_header_or_param(simulator, session) -> None:
    ident = _ident(simulator)
    ws = await _open(session, simulator)
    sid = (await _next(ws, "welcome"))["sid"]
    await _subscribe(ws, ident)
    await ws.close()
    for how in ("header", "param"):
        kwargs: dict[str, Any] = (
            {"headers": {"X-AnyCable-Restore-Sid": sid}}
            if how == "header"
            else {"params": {"sid": sid}}
        )
        ws = await _open(session, simulator, **kwargs)
        welcome = await _next(ws, "welcome")
        assert welcome["restored"] is True and welcome["restored_ids"] == [ident]
        assert welcome["sid"] != sid
        _notify(simulator, 1)  # no subscribe was sent: the session holds it
        assert (await _next(ws))["identifier"] == ident
        sid = welcome["sid"]
        await ws.close()
    simulator.broker.expire_sessions()
    ws = await _open(session, simulator, headers={"X-AnyCable-Restore-Sid": sid})
    assert "restored" not in await _next(ws, "welcome")
    await ws.close()


@pytest.mark.parametrize("reason", sorted(DISCONNECT_REASONS))
async def test_every_anycable_disconnect_reason(simulator, session, reason) -> None:
    ws = await _open(session, simulator)
    await _next(ws, "welcome")
    await simulator.disconnect_all(reason, DISCONNECT_REASONS[reason])
    frame = await _next(ws, "disconnect")
    assert frame == {
        "type": "disconnect",
        "reason": reason,
        "reconnect": DISCONNECT_REASONS[reason],
    }
    await ws.close()


async def test_token_expired_with_jwt_identification(simulator, session) -> None:
    simulator.config.jwt_identification = True
    token = simulator.issue_access(simulator.member_id)[0]
    simulator.expire_access_tokens()
    ws = await _open(session, simulator, token=token)
    assert await _next(ws, "disconnect") == {
        "type": "disconnect",
        "reason": "token_expired",
        "reconnect": False,
    }
    await ws.close()
