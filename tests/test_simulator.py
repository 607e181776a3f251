"""The simulator is the reference our client is judged against: test its wire rules directly."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import shutil
import subprocess
import sys
import time

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[1]


async def _token(session, simulator) -> str:
    async with session.post(
        simulator.url + "/api/v1/headless/auth_token",
        headers={"Authorization": f"Bearer {simulator.app_token}"},
        json={"community_member_id": simulator.member_id},
    ) as resp:
        assert resp.status == 200
        return (await resp.json())["access_token"]


async def _recv(ws, timeout: float = 2.0) -> dict:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def _recv_non_ping(ws, timeout: float = 2.0) -> dict:
    while True:
        frame = await _recv(ws, timeout)
        if frame.get("type") != "ping":
            return frame


async def test_origin_not_allowed_is_a_plain_404(session, simulator) -> None:
    token = await _token(session, simulator)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(
            simulator.cable_url,
            headers={
                "Origin": "https://evil.example",
                "Authorization": f"Bearer {token}",
            },
        )
    assert info.value.status == 404
    async with session.get(
        simulator.cable_url.replace("ws", "http", 1),
        headers={"Origin": "https://evil.example"},
    ) as resp:
        assert resp.status == 404
        assert await resp.text() == "Page not found"


async def test_bad_token_gets_unauthorized_then_close(session, simulator) -> None:
    async with session.ws_connect(
        simulator.cable_url,
        headers={"Origin": simulator.origin, "Authorization": "Bearer nope"},
    ) as ws:
        frame = await _recv(ws)
        assert frame == {
            "type": "disconnect",
            "reason": "unauthorized",
            "reconnect": False,
        }
        msg = await ws.receive()
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1000


@pytest.mark.parametrize(
    "protocols", [(), ("actioncable-v1-json", "actioncable-unsupported")]
)
async def test_welcome_subscribe_confirm_and_pings(
    session, simulator, protocols
) -> None:
    token = await _token(session, simulator)
    async with session.ws_connect(
        simulator.cable_url,
        protocols=protocols,
        headers={"Origin": simulator.origin, "Authorization": f"Bearer {token}"},
    ) as ws:
        assert ws.protocol == ("actioncable-v1-json" if protocols else None)
        welcome = await _recv(ws)
        assert welcome["type"] == "welcome" and len(welcome["sid"]) > 10
        # JS-style identifier (no spaces) and Python-style (spaces): each echoed byte for byte.
        for ident in (
            '{"channel":"ChatRoomChannel","community_member_id":42}',
            '{"channel": "NotificationChannel", "community_member_id": 42}',
        ):
            await ws.send_str(json.dumps({"command": "subscribe", "identifier": ident}))
            assert await _recv_non_ping(ws) == {
                "identifier": ident,
                "type": "confirm_subscription",
            }
        # Another member's channel is rejected.
        other = '{"channel":"ChatRoomChannel","community_member_id":7}'
        await ws.send_str(json.dumps({"command": "subscribe", "identifier": other}))
        assert await _recv_non_ping(ws) == {
            "identifier": other,
            "type": "reject_subscription",
        }
        # Duplicates, unknown channels, unsubscribes, junk and unknown commands: silence.
        for frame in (
            json.dumps(
                {
                    "command": "subscribe",
                    "identifier": '{"channel":"ChatRoomChannel","community_member_id":42}',
                }
            ),
            json.dumps(
                {"command": "subscribe", "identifier": '{"channel":"NoSuchChannel"}'}
            ),
            json.dumps({"action": "message", "data": "Hello Server!"}),
            json.dumps({"command": "dance"}),
            "not json",
        ):
            await ws.send_str(frame)
        pings = [await _recv(ws) for _ in range(2)]
        assert [p["type"] for p in pings] == ["ping", "ping"]
        assert all(isinstance(p["message"], int) for p in pings)
        # A broadcast has no type and carries the identifier as sent.
        simulator.community.notify(42)
        frame = await _recv_non_ping(ws)
        assert set(frame) == {"identifier", "message"}
        assert (
            frame["identifier"]
            == '{"channel": "NotificationChannel", "community_member_id": 42}'
        )
        assert frame["message"]["event"] == "newNotification"


async def test_room_channel_membership_and_params(session, simulator) -> None:
    token = await _token(session, simulator)
    outsider = simulator.community.create_room(
        "direct", "x", [simulator.seeded["ada"].id, simulator.seeded["alan"].id]
    )
    async with session.ws_connect(
        simulator.cable_url,
        headers={"Origin": simulator.origin, "Authorization": f"Bearer {token}"},
    ) as ws:
        await _recv(ws)
        for params, expected in (
            ({"chat_room_id": simulator.seeded["space"].id}, "confirm_subscription"),
            ({"id": simulator.seeded["dm"].id}, "confirm_subscription"),
            ({"chat_room_id": outsider.id}, "reject_subscription"),
            ({"chat_room_id": 999999}, "reject_subscription"),
        ):
            ident = json.dumps({"channel": "Chats::RoomChannel", **params})
            await ws.send_str(json.dumps({"command": "subscribe", "identifier": ident}))
            assert (await _recv_non_ping(ws))["type"] == expected


async def test_fanout_follows_circles_document(session, simulator) -> None:
    community = simulator.community
    s = simulator.seeded
    simulator.published.clear()
    root = community.post_message(s["group"], s["ada"].id, "root")
    streams = {p[0] for p in simulator.published}
    assert streams == {f"chat-room-channel-{m}" for m in s["group"].participants} | {
        f"chat-room-{s['group'].id}-channel"
    }
    simulator.published.clear()
    community.post_message(s["group"], s["alan"].id, "reply", parent_message_id=root.id)
    streams = {p[0] for p in simulator.published}
    # Replies skip the member channels; they reach the room and the thread members.
    assert not any(st.startswith("chat-room-channel-") for st in streams)
    assert f"chat-room-{s['group'].id}-channel" in streams
    assert f"chat-community-member-{s['ada'].id}-threads-channel" in streams
    simulator.published.clear()
    community.post_message(s["space"], s["ada"].id, "embedded")
    assert {p[0] for p in simulator.published} == {f"chat-room-{s['space'].id}-channel"}
    # unread bookkeeping
    assert s["group"].uuid in [r.uuid for r in community.unread_rooms(42)]
    community.mark_room_read(s["group"], 42)
    assert s["group"].uuid not in [r.uuid for r in community.unread_rooms(42)]


async def test_rest_401_bodies(session, simulator) -> None:
    url = simulator.url + "/api/headless/v1/community_member"
    token = await _token(session, simulator)
    for setup, message in (
        (lambda: None, None),
        (simulator.expire_access_tokens, "The access token is expired."),
        (lambda: simulator.revoke_tokens("access"), "The access token not found."),
    ):
        setup()
        async with session.get(
            url, headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            if message is None:
                assert resp.status == 200
            else:
                assert resp.status == 401
                assert (await resp.json()) == {
                    "success": False,
                    "message": message,
                    "error_details": {},
                }
    async with session.get(url) as resp:
        assert (await resp.json())["message"] == "The access token is invalid."


async def test_control_api(session, simulator) -> None:
    async def ctl(action, **body):
        async with session.post(f"{simulator.url}/_sim/{action}", json=body) as resp:
            return resp.status, await resp.json()

    assert (await ctl("config", envelope="type_flat"))[0] == 200
    assert simulator.config.envelope == "type_flat"
    assert (await ctl("config", nonsense=1))[0] == 400
    assert (await ctl("nope"))[0] == 404
    status, body = await ctl("message", room_id=simulator.seeded["dm"].id, text="hi")
    assert status == 200 and body["result"]["id"]
    assert (await ctl("fault", target="rest", status=503))[0] == 200
    assert simulator.faults[-1].status == 503
    for action in (
        "expire_tokens",
        "revoke_tokens",
        "silence",
        "drop",
        "disconnect",
        "revoke_app_token",
    ):
        assert (await ctl(action))[0] == 200
    dm = simulator.seeded["dm"]
    message_id = body["result"]["id"]
    assert (await ctl("edit", room_id=dm.id, message_id=message_id, text="edited"))[
        0
    ] == 200
    assert dm.messages[-1].body == "edited"
    assert (await ctl("edit", room_id=dm.id, message_id=1))[0] == 404
    assert (await ctl("read", room_uuid=dm.uuid))[0] == 200
    assert (await ctl("read", room_uuid="nope"))[0] == 404
    assert (await ctl("message", room_uuid="nope"))[0] == 404
    for action in ("pin", "unpin", "rename"):
        assert (await ctl(action, room_id=dm.id, name="DM"))[0] == 200
    assert dm.name == "DM"
    assert (await ctl("delete_message", room_id=dm.id, message_id=message_id))[0] == 200
    assert not dm.messages
    status, created = await ctl("create_room", name="Fresh")
    assert status == 200
    assert (await ctl("delete_room", room_id=created["result"]["id"]))[0] == 200
    assert (await ctl("reset_notifications"))[0] == 200
    assert simulator.seeded["me"].new_notifications_count == 0
    assert (await ctl("notification"))[0] == 200
    injected = await ctl("inject", stream="notification-channel-42", event="x")
    assert injected[1]["result"] == 0
    simulator.community.post_message(dm, simulator.seeded["ada"].id, "unread again")
    assert (await ctl("frame", kind="truncated"))[0] == 200
    async with session.get(simulator.url + "/_sim/state") as resp:
        state = await resp.json()
    assert state["new_notifications_count"] == 1
    assert state["unread_chat_rooms"] == [simulator.seeded["dm"].uuid]


async def test_requests_to_the_community_domain_are_refused(session, simulator) -> None:
    """The simulator is the Circle server: the app token must never go to the community."""
    token = await _token(session, simulator)
    community = simulator.community_url
    assert community.startswith("http://localhost:")
    for method, path, bearer in (
        ("POST", "/api/v1/headless/auth_token", simulator.app_token),
        ("PATCH", "/api/v1/headless/access_token/refresh", simulator.app_token),
        ("GET", "/api/headless/v1/community_member", token),
        ("GET", "/cable", token),
    ):
        # Same socket, other Host header: what a client configured with the community sends.
        async with session.request(
            method,
            simulator.url + path,
            headers={
                "Host": f"LocalHost:{simulator.port}",
                "Authorization": f"Bearer {bearer}",
            },
            json={"community_member_id": 42},
        ) as resp:
            assert resp.status == 421, path
    # And through a real resolution of the community address.
    async with session.get(
        community + "/api/headless/v1/community_member",
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        assert resp.status == 421
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(
            community.replace("http", "ws", 1) + "/cable",
            headers={"Origin": community, "Authorization": f"Bearer {token}"},
        )
    assert info.value.status == 421
    assert simulator.misdirected == 6
    refused = [r for r in simulator.requests if r.get("misdirected")]
    assert {r["bearer"] for r in refused} == {"app_token", "access_token"}
    assert simulator.app_token not in json.dumps(simulator.requests)
    # The community address is a whitelisted Origin on the server's own host.
    async with session.ws_connect(
        simulator.cable_url,
        headers={"Origin": community, "Authorization": f"Bearer {token}"},
    ) as ws:
        assert (await _recv(ws))["type"] == "welcome"
    # The control API stays reachable, and the check can be switched off.
    simulator.config.community_domain = None
    async with session.get(
        community + "/api/headless/v1/community_member",
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    ("shape", "name_key", "expected"),
    [
        (
            "identifier_message",
            "event",
            {"identifier", "message"},
        ),
        ("identifier_data", "event", {"identifier", "event", "data"}),
        ("identifier_data", "type", {"identifier", "type", "data"}),
        ("identifier_data", "event_type", {"identifier", "event_type", "data"}),
        ("identifier_data", "name", {"identifier", "name", "data"}),
        ("identifier_payload", "event", {"identifier", "data"}),
        ("channel_data", "event", {"channel", "event", "data"}),
        ("channel_data", "type", {"channel", "type", "data"}),
        ("identifier_flat", "event_type", None),
    ],
)
async def test_broadcast_frame_shapes(
    session, simulator, shape, name_key, expected
) -> None:
    """Each envelope shape a Circle server might use, on demand (config or control API)."""
    from custom_components.circle.client.protocol import parse_payload, split_broadcast

    token = await _token(session, simulator)
    ident = '{"channel":"NotificationChannel","community_member_id":42}'
    async with session.ws_connect(
        simulator.cable_url,
        headers={"Origin": simulator.origin, "Authorization": f"Bearer {token}"},
    ) as ws:
        await _recv(ws)
        await ws.send_str(json.dumps({"command": "subscribe", "identifier": ident}))
        assert (await _recv_non_ping(ws))["type"] == "confirm_subscription"
        async with session.post(
            f"{simulator.url}/_sim/inject",
            json={
                "stream": "notification-channel-42",
                "event": "updateNewNotificationCount",
                "data": {"new_notifications_count": 5},
                "frame_shape": shape,
                "name_key": name_key,
            },
        ) as resp:
            assert (await resp.json())["result"] == 1
        frame = await _recv_non_ping(ws)
        if expected is not None:
            assert set(frame) == expected
        else:
            assert frame[name_key] == "updateNewNotificationCount"
            assert frame["new_notifications_count"] == 5
        if "channel" in frame:
            assert frame["channel"] == "NotificationChannel"
        broadcast = split_broadcast(frame)
        assert broadcast is not None
        event = parse_payload("NotificationChannel", broadcast.payload)
        assert event.name == "updateNewNotificationCount"
        assert event.data["new_notifications_count"] == 5
        # The same through the config switch.
        simulator.config.frame_shape = shape
        simulator.config.name_key = name_key
        simulator.community.reset_notifications(42)
        frame = await _recv_non_ping(ws)
        assert split_broadcast(frame) is not None
    async with session.post(
        f"{simulator.url}/_sim/inject",
        json={"stream": "x", "event": "y", "frame_shape": "nope"},
    ) as resp:
        assert resp.status == 400


async def test_raw_faults(session, simulator) -> None:
    simulator.add_fault(
        "rest", 302, raw=b"", headers={"Location": "https://evil.example/steal"}
    )
    async with session.get(
        simulator.url + "/api/headless/v1/community_member", allow_redirects=False
    ) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "https://evil.example/steal"
    async with session.post(
        f"{simulator.url}/_sim/fault",
        json={
            "target": "rest",
            "status": 502,
            "raw": "<html>\xff</html>",
            "headers": {"Content-Type": "text/html"},
        },
    ) as resp:
        assert resp.status == 200
    async with session.get(simulator.url + "/api/headless/v1/community_member") as resp:
        assert resp.status == 502
        assert await resp.read() == b"<html>\xff</html>"


def test_cli_prints_one_json_line_and_stops_cleanly(socket_enabled) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert set(info) == {
            "url",
            "cable_url",
            "app_token",
            "member_id",
            "member_email",
            "origin",
            "flavour",
        }
        assert info["flavour"] == "rails"
        assert info["url"].startswith("http://127.0.0.1:")
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    port = int(info["url"].rsplit(":", 1)[1])
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # the port is free again


NODE_DIR = ROOT / "tests" / "node"


def test_circles_own_node_sample_works_against_the_simulator(
    socket_enabled, tmp_path
) -> None:
    """Circle's websocket-connection-test.js, only URL, token, origin and member id changed."""
    node = shutil.which("node")
    assert node, "node is required (see scripts/setup)"
    assert (NODE_DIR / "node_modules" / "ws").is_dir(), (
        "run scripts/setup to install the ws package"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        import urllib.request

        request = urllib.request.Request(
            info["url"] + "/api/v1/headless/auth_token",
            data=json.dumps({"community_member_id": info["member_id"]}).encode(),
            headers={
                "Authorization": f"Bearer {info['app_token']}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            token = json.loads(resp.read())["access_token"]
        sample = (NODE_DIR / "websocket-connection-test.js").read_text()
        script = (
            sample.replace("wss://app.circle.so/cable", info["cable_url"])
            .replace("https://your-whitelisted-domain.com", info["origin"])
            .replace("HEADLESS_MEMBER_ACCESS_TOKEN", token)
            .replace("COMMUNITY_MEMBER_ID", str(info["member_id"]))
        )
        (tmp_path / "test.js").write_text(script)
        started = time.monotonic()
        run = subprocess.run(
            [
                node,
                "-e",
                f"setTimeout(() => process.exit(0), 7000); require({json.dumps(str(tmp_path / 'test.js'))})",
            ],
            env={"NODE_PATH": str(NODE_DIR / "node_modules"), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    finally:
        proc.terminate()
        proc.wait(10)
    out = run.stdout
    assert "WebSocket connection opened." in out
    assert "Message from server: { type: 'welcome', sid: '" in out
    assert "type: 'confirm_subscription'" in out
    assert '\'{"channel":"ChatRoomChannel","community_member_id":42}\'' in out
    pings = out.count("type: 'ping'")
    assert 2 <= pings <= 3, out  # every 3 s over ~7 s
    assert time.monotonic() - started < 15
