"""scripts/circle-probe against the simulator."""

from __future__ import annotations

import asyncio
import json

import pytest

from custom_components.circle.client import probe, probe_ext, urls
from custom_components.circle.client.probe import (
    build_parser,
    cable_url_for,
    envelope_shape,
    run,
)
from tests.conftest import wait_for
from tests.simulator import SimConfig
from tests.simulator.anycable import VERSION
from tests.simulator.model import notification_stream, room_stream


@pytest.fixture(autouse=True)
def no_token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's environment must not leak into the tests."""
    monkeypatch.delenv(probe.ENV_APP_TOKEN, raising=False)
    monkeypatch.delenv(probe.ENV_ACCESS_TOKEN, raising=False)
    monkeypatch.setattr(probe, "CHECK_TIMEOUT", 0.5)


def lines(capsys) -> list[dict]:
    return [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.strip()
    ]


def checks(out: list[dict], name: str) -> list[dict]:
    return [o for o in out if o["kind"] == "check" and o["check"] == name]


def holding(simulator, stream: str) -> int:
    """How many of the simulator's sockets are subscribed to `stream`."""
    return sum(stream in c.subscriptions.values() for c in simulator.connections)


async def test_probe_with_app_token_prints_states_and_events(simulator, capsys) -> None:
    args = build_parser().parse_args(
        [
            "--server",
            simulator.url,
            "--app-token",
            simulator.app_token,
            "--member-id",
            "42",
            "--room",
            str(simulator.seeded["space"].id),
            "--seconds",
            "1.0",
        ]
    )

    space = simulator.seeded["space"]

    async def traffic() -> None:
        # Once the probe's cable holds the room (the check socket holds it too): a fixed
        # wait raced the probe's checks, run before its cable connects.
        await wait_for(lambda: holding(simulator, room_stream(space.id)) >= 2)
        simulator.community.post_message(space, simulator.seeded["ada"].id, "probe me")

    task = asyncio.get_running_loop().create_task(traffic())
    assert await run(args) == 0
    await task
    out = lines(capsys)
    states = [o["state"] for o in out if o["kind"] == "state"]
    assert states[:2] == ["connecting", "connected"] and states[-1] == "stopped"
    event = next(o for o in out if o["kind"] == "event")
    assert event["channel"] == "Chats::RoomChannel" and event["event"] == "newMessage"
    assert event["data"]["body"] == "probe me"
    assert (
        sum(o["kind"] == "subscription" and o["state"] == "confirmed" for o in out) == 4
    )
    assert simulator.app_token not in json.dumps(out)
    # What worked, as a bug report would need it.
    assert checks(out, "cable_url") == [
        {
            "kind": "check",
            "check": "cable_url",
            "url": simulator.cable_url,
            "ok": True,
        }
    ]
    assert checks(out, "origin")[-1]["ok"] is True
    room_param = checks(out, "room_param")
    assert room_param[0]["param"] == "chat_room_id"
    assert room_param[0]["result"] == "confirmed"
    envelopes = checks(out, "envelope")
    assert envelopes[0]["shape"] == "identifier,message{data,event}"
    summary = out[-1]
    assert summary["kind"] == "summary"
    assert summary["cable_url"] == simulator.cable_url
    assert summary["origin"] == simulator.url
    assert summary["room_params"] == {str(simulator.seeded["space"].id): "chat_room_id"}
    assert summary["envelopes"] == {"identifier,message{data,event}": True}
    assert "probe me" not in json.dumps(summary)


async def test_probe_reads_tokens_from_the_environment(
    simulator, capsys, monkeypatch
) -> None:
    """Tokens in the environment win over the flags (which show in `ps`)."""
    monkeypatch.setenv(probe.ENV_APP_TOKEN, simulator.app_token)
    args = build_parser().parse_args(
        [
            "--server",
            simulator.url,
            "--app-token",
            "wrong",
            "--member-id",
            "42",
            "--seconds",
            "0.3",
        ]
    )
    assert await run(args) == 0
    assert any(o.get("state") == "connected" for o in lines(capsys))
    token = simulator.issue_tokens(42)["access_token"]
    monkeypatch.delenv(probe.ENV_APP_TOKEN)
    monkeypatch.setenv(probe.ENV_ACCESS_TOKEN, token)
    # The member id comes from the token; the server from the cable URL.
    args = build_parser().parse_args(
        [
            "--cable-url",
            simulator.cable_url,
            "--origin",
            simulator.origin,
            "--seconds",
            "0.3",
        ]
    )
    assert await run(args) == 0
    out = lines(capsys)
    assert any(o.get("state") == "connected" for o in out)
    assert token not in json.dumps(out)


async def test_probe_reports_room_param_origin_and_envelope_fallbacks(
    simulator, capsys
) -> None:
    simulator.config.room_params = ("chat_room_uuid",)
    simulator.config.frame_shape = "channel_data"
    simulator.config.allowed_origins = {simulator.url}
    room = simulator.seeded["group"]

    async def traffic() -> None:
        # Once the check socket has subscribed (it reads the envelope): every socket open
        # holds the notifications, the check socket's among them (it is open first and
        # last). A fixed wait raced the probe's checks.
        await wait_for(
            lambda: len(simulator.connections) >= 2
            and holding(simulator, notification_stream(42))
            == len(simulator.connections)
        )
        simulator.community.notify(42)

    task = asyncio.get_running_loop().create_task(traffic())
    args = build_parser().parse_args(
        [
            "--server",
            simulator.url,
            "--community",
            "https://my.community.example",
            "--app-token",
            simulator.app_token,
            "--member-id",
            "42",
            "--room",
            str(room.id),
            "--seconds",
            "2.5",
        ]
    )
    assert await run(args) == 0
    await task
    out = lines(capsys)
    origins = checks(out, "origin")
    assert [(o["origin"], o["ok"]) for o in origins] == [
        ("https://my.community.example", False),
        (simulator.url, True),
    ]
    assert origins[0]["status"] == 404
    assert [(c["param"], c["result"]) for c in checks(out, "room_param")] == [
        ("chat_room_id", "rejected"),
        ("id", "rejected"),
        ("chat_room_uuid", "confirmed"),
    ]
    shapes = {c["shape"]: c["routable"] for c in checks(out, "envelope")}
    assert shapes == {"channel,data{},event": True}
    assert out[-1]["room_params"] == {str(room.id): "chat_room_uuid"}


async def test_probe_auth_failure_exits_2(simulator, capsys) -> None:
    args = build_parser().parse_args(
        [
            "--cable-url",
            simulator.cable_url,
            "--access-token",
            "bad",
            "--member-id",
            "42",
            "--origin",
            simulator.origin,
            "--seconds",
            "5",
        ]
    )
    assert await run(args) == 2
    out = lines(capsys)
    assert [o for o in out if o["kind"] == "state"][-1]["state"] == "auth_failed"
    assert checks(out, "welcome") == [
        {"kind": "check", "check": "welcome", "ok": False, "reason": "unauthorized"}
    ]
    assert out[-1]["kind"] == "summary" and out[-1]["exit"] == 2
    args = build_parser().parse_args(
        ["--server", simulator.url, "--app-token", "wrong", "--member-id", "42"]
    )
    assert await run(args) == 2
    assert "Headless Auth token" in lines(capsys)[-1]["message"]


async def test_probe_cannot_connect_exits_3(socket_enabled, capsys) -> None:
    args = build_parser().parse_args(
        [
            "--cable-url",
            "ws://127.0.0.1:9/cable",
            "--access-token",
            "x",
            "--member-id",
            "1",
            "--seconds",
            "20",
        ]
    )
    assert await run(args) == 3
    out = lines(capsys)
    assert checks(out, "cable_url")[0]["ok"] is False
    assert out[-1]["cable_url"] is None
    args = build_parser().parse_args(
        ["--server", "http://127.0.0.1:9", "--app-token", "x", "--email", "a@b.c"]
    )
    assert await run(args) == 3


async def test_probe_usage_errors(capsys) -> None:
    assert await run(build_parser().parse_args(["--access-token", "x"])) == 64
    assert await run(build_parser().parse_args(["--community", "https://x"])) == 64
    assert "CIRCLE_APP_TOKEN" in lines(capsys)[-1]["message"]


def test_cable_url_for() -> None:
    assert cable_url_for("https://app.circle.so") == "wss://app.circle.so/cable"
    assert cable_url_for("http://127.0.0.1:8080/") == "ws://127.0.0.1:8080/cable"


@pytest.mark.parametrize(
    ("frame", "shape"),
    [
        (
            {"identifier": "x", "message": {"event": "e", "data": {}}},
            "identifier,message{data,event}",
        ),
        (
            {"identifier": "x", "message": {"type": "e", "id": 1}},
            "identifier,message{type}",
        ),
        ({"channel": "C", "data": {"a": 1}}, "channel,data{}"),
        (
            {"identifier": "x", "event_type": "e", "body": "secret"},
            "event_type,identifier",
        ),
        ({"secret": 1}, "no_envelope_keys"),
        ([1], "not_object"),
    ],
)
def test_envelope_shape_names_keys_only(frame, shape) -> None:
    assert envelope_shape(frame) == shape


@pytest.mark.parametrize(
    ("sim_config", "expected"),
    [
        (
            SimConfig(ping_interval=0.2, flavour="anycable"),
            {
                "flavour": "anycable",
                "version": VERSION,
                "protocol": "actioncable-v1-ext-json",
                "history": "confirmed",
                "session_restore": True,
            },
        ),
        (
            SimConfig(ping_interval=0.2, send_sid=False),
            {
                "flavour": "actioncable",
                "version": None,
                "protocol": "actioncable-v1-json",
                "history": "unsupported",
                "session_restore": False,
            },
        ),
    ],
    ids=["anycable", "rails"],
)
async def test_probe_reports_the_server_history_and_restore(
    simulator, capsys, expected
) -> None:
    args = build_parser().parse_args(
        [
            "--server",
            simulator.url,
            "--app-token",
            simulator.app_token,
            "--member-id",
            "42",
            "--seconds",
            "0.3",
        ]
    )
    assert await run(args) == 0
    out = lines(capsys)
    (server,) = checks(out, "server")
    assert out[-1]["server"] == {
        k: v for k, v in server.items() if k not in ("kind", "check")
    }
    for key in ("flavour", "version", "protocol"):
        assert server[key] == expected[key]
    channels = {
        "NotificationChannel",
        "ChatRoomChannel",
        "Chats::CommunityMemberThreadsChannel",
    }
    assert server["history"] == dict.fromkeys(channels, expected["history"])
    assert server["session_restore"] == dict.fromkeys(
        channels, expected["session_restore"]
    )
    if expected["flavour"] == "anycable":
        # Only a hint of the sid (on AnyCable it restores a session without a token).
        assert server["sid"].endswith("…(21)") and len(server["sid"]) == 9
        assert simulator.broker.sessions  # the sids it was given, none printed
        assert not any(sid in json.dumps(out) for sid in simulator.broker.sessions)
    else:
        assert server["sid"] is None
    assert simulator.app_token not in json.dumps(out)


@pytest.mark.parametrize(
    ("sim_config", "history"),
    [
        (SimConfig(ping_interval=0.2, flavour="anycable", history=False), "rejected"),
        (
            SimConfig(ping_interval=0.2, flavour="anycable", subscriptions="reject"),
            "subscription_rejected",
        ),
        (
            SimConfig(ping_interval=0.2, flavour="anycable", subscriptions="ignore"),
            "not_subscribed",
        ),
    ],
    ids=["history_rejected", "subscription_rejected", "unanswered"],
)
async def test_probe_says_when_history_does_not_work(
    simulator, capsys, monkeypatch, history
) -> None:
    monkeypatch.setattr(probe_ext, "CHECK_TIMEOUT", 0.3)
    args = build_parser().parse_args(
        [
            "--server",
            simulator.url,
            "--app-token",
            simulator.app_token,
            "--member-id",
            "42",
            "--seconds",
            "0.2",
        ]
    )
    await run(args)
    (server,) = checks(lines(capsys), "server")
    assert set(server["history"].values()) == {history}
    assert server["flavour"] == "anycable"


async def test_probe_prints_no_query_fragment_or_user_info(
    simulator, capsys, monkeypatch
) -> None:
    """A `?token=` cable URL (and user info, a fragment) never reaches the output."""
    monkeypatch.setenv(
        probe.ENV_ACCESS_TOKEN, simulator.issue_tokens(42)["access_token"]
    )
    host = simulator.cable_url.split("://", 1)[1].split("/", 1)[0]
    secret_url = f"ws://{host}/cable?token=leaked-query-token#leaked-fragment"
    simulator.config.allowed_origins = {simulator.url}
    community = "https://leaked-user:leaked-pw@example.com/?o=leaked-origin"
    flags = ["--cable-url", secret_url, "--community", community]
    flags += ["--server", simulator.url, "--member-id", "42", "--seconds", "0.3"]
    args = build_parser().parse_args(flags)
    assert await run(args) == 0
    out = lines(capsys)
    assert any(o.get("state") == "connected" for o in out)  # the query was still sent
    assert checks(out, "cable_url")[0]["url"] == f"ws://{host}/cable"
    assert out[-1]["cable_url"] == f"ws://{host}/cable"
    assert [o["origin"] for o in checks(out, "origin")] == [
        "https://example.com",
        simulator.url,
    ]
    assert out[-1]["origin"] == simulator.url
    assert "leaked" not in json.dumps(out)


@pytest.mark.parametrize(
    ("flag", "address", "why"),
    [
        ("--server", "http://app.circle.so", "loopback"),
        ("--server", "http://203.0.113.7:8080", "loopback"),
        ("--server", "https://user:pw@app.circle.so", "passwords"),
        ("--server", "https://app.circle.so\\@evil.example", "backslashes"),
        ("--server", "app.circle.so@evil.example", "passwords"),
        ("--server", "https://app.circle.so:99999", "not a valid address"),
        ("--server", "ftp://app.circle.so", "not a valid address"),
        ("--cable-url", "ws://app.circle.so/cable?token=x", "loopback"),
        ("--cable-url", "wss://u:p@app.circle.so/cable", "passwords"),
        ("--cable-url", "https://app.circle.so/cable", "not a valid address"),
    ],
)
async def test_probe_applies_the_config_flows_address_rules(
    socket_enabled, capsys, flag: str, address: str, why: str
) -> None:
    """Refused before any request: no token is sent to such an address."""
    args = build_parser().parse_args(
        [flag, address, "--app-token", "app-token-0123456789", "--member-id", "1"]
    )
    assert await run(args) == probe.EXIT_USAGE
    out = lines(capsys)
    assert len(out) == 1 and out[0]["kind"] == "error"
    assert out[0]["message"].startswith(f"{flag} refused") and why in out[0]["message"]
    assert "app-token-0123456789" not in json.dumps(out) and "pw" not in json.dumps(out)


def test_the_probe_uses_the_clients_address_rule() -> None:
    assert probe.normalise_url is urls.normalise_url
    assert urls.normalise_url("https://App.Circle.so/x?y") == "https://app.circle.so"
    assert urls.normalise_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
