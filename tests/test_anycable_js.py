"""AnyCable's own JS client (@anycable/core, extended protocol) against the AnyCable flavour.

The proof that the simulator speaks AnyCable as AnyCable's client expects: after a dropped
socket the client restores its session and gets what it missed from the stream's history;
after a `disconnect` (which ends the session) it subscribes again with a history request and
gets the missed broadcasts too; in both cases in order, each once.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any

import pytest

from tests.conftest import FAST_PING, wait_for
from tests.simulator import CircleSimulator, SimConfig
from tests.simulator.anycable import EXT_PROTOCOL
from tests.simulator.model import notification_stream
from tests.test_simulator import NODE_DIR

SCRIPT = NODE_DIR / "anycable-client-test.mjs"


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(ping_interval=FAST_PING, flavour="anycable")


class NodeClient:
    """The Node process and the JSON lines it printed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []

    async def until(self, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
        """Read lines until one satisfies `predicate`; return it."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"node ended early: {self.lines}"
                line = json.loads(raw)
                self.lines.append(line)
                if predicate(line):
                    return line

    def counts(self) -> list[int]:
        return [
            line["message"]["data"]["new_notifications_count"]
            for line in self.lines
            if line["event"] == "message"
        ]


def _count(sim: CircleSimulator, value: int) -> None:
    sim.publish(
        notification_stream(sim.member_id),
        "updateNewNotificationCount",
        {"new_notifications_count": value},
    )


async def test_anycable_js_client_gets_missed_broadcasts_from_history(
    simulator: CircleSimulator,
) -> None:
    node = shutil.which("node")
    assert node, "node is required (see scripts/setup)"
    assert (NODE_DIR / "node_modules" / "@anycable" / "core").is_dir(), (
        "run npm install --prefix tests/node (scripts/test does)"
    )
    token = simulator.issue_access(simulator.member_id)[0]
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        simulator.cable_url,
        simulator.origin,
        token,
        str(simulator.member_id),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )
    client = NodeClient(proc)
    try:
        first = await client.until(lambda line: line["event"] == "connect")
        assert first["restored"] is False and len(first["sid"]) == 21
        subscribed = await client.until(lambda line: line["event"] == "subscribed")
        assert subscribed["protocol"] == EXT_PROTOCOL
        _count(simulator, 1)
        live = await client.until(lambda line: line["event"] == "message")
        assert live["meta"]["offset"] == 1
        assert live["meta"]["epoch"] == simulator.broker.epoch

        # 1. A dropped socket: three broadcasts while it is away, in the same loop turn.
        simulator.drop_connections()
        for value in (2, 3, 4):
            _count(simulator, value)
        back = await client.until(lambda line: line["event"] == "connect")
        assert back["reconnect"] is True and back["restored"] is True
        await client.until(lambda line: client.counts()[-1:] == [4])
        assert client.counts() == [1, 2, 3, 4]
        restored = simulator.connections[0]
        assert restored.restored
        sent = [json.loads(text) for text in restored.received]
        history = [f for f in sent if f.get("command") == "history"]
        assert history and history[0]["history"]["streams"] == {
            notification_stream(simulator.member_id): {
                "epoch": simulator.broker.epoch,
                "offset": 1,
            }
        }
        assert not any(f.get("command") == "subscribe" for f in sent)

        # 2. A server restart ends the session: a fresh subscribe asks for the history.
        await simulator.disconnect_all("server_restart", reconnect=True)
        for value in (5, 6):
            _count(simulator, value)
        back = await client.until(lambda line: line["event"] == "connect")
        assert back["restored"] is False
        await client.until(lambda line: client.counts()[-1:] == [6])
        assert client.counts() == [1, 2, 3, 4, 5, 6]
        sent = [json.loads(text) for text in simulator.connections[0].received]
        subscribe = next(f for f in sent if f.get("command") == "subscribe")
        assert (
            subscribe["history"]["streams"][notification_stream(simulator.member_id)][
                "offset"
            ]
            == 4
        )
        # It answers the server's pings with pongs.
        await wait_for(lambda: simulator.connections[0].pongs >= 2)
    finally:
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.write(b"stop\n")
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
