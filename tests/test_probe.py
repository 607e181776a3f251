"""scripts/circle-probe against the simulator."""

from __future__ import annotations

import asyncio
import json

from custom_components.circle.client.probe import build_parser, cable_url_for, run


def lines(capsys) -> list[dict]:
    return [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.strip()
    ]


async def test_probe_with_app_token_prints_states_and_events(simulator, capsys) -> None:
    args = build_parser().parse_args(
        [
            "--community",
            simulator.url,
            "--app-token",
            simulator.app_token,
            "--member-id",
            "42",
            "--cable-url",
            simulator.cable_url,
            "--room",
            str(simulator.seeded["space"].id),
            "--seconds",
            "1.0",
        ]
    )

    async def traffic() -> None:
        await asyncio.sleep(0.5)
        simulator.community.post_message(
            simulator.seeded["space"], simulator.seeded["ada"].id, "probe me"
        )

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


async def test_probe_with_access_token(simulator, capsys) -> None:
    token = simulator.issue_tokens(42)["access_token"]
    args = build_parser().parse_args(
        [
            "--cable-url",
            simulator.cable_url,
            "--access-token",
            token,
            "--member-id",
            "42",
            "--origin",
            simulator.origin,
            "--seconds",
            "0.3",
        ]
    )
    assert await run(args) == 0
    assert any(o.get("state") == "connected" for o in lines(capsys))


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
    assert lines(capsys)[-1]["state"] == "auth_failed"
    args = build_parser().parse_args(
        ["--community", simulator.url, "--app-token", "wrong", "--member-id", "42"]
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
    args = build_parser().parse_args(
        ["--community", "http://127.0.0.1:9", "--app-token", "x", "--email", "a@b.c"]
    )
    assert await run(args) == 3


async def test_probe_usage_errors(capsys) -> None:
    assert await run(build_parser().parse_args(["--access-token", "x"])) == 64
    assert await run(build_parser().parse_args(["--community", "https://x"])) == 64


def test_cable_url_for() -> None:
    assert cable_url_for("https://app.circle.so") == "wss://app.circle.so/cable"
    assert cable_url_for("http://127.0.0.1:8080/") == "ws://127.0.0.1:8080/cable"
