"""The session driver and the cable's supervision, against the simulator over loopback.

Nothing but `stop()` or an authentication verdict ends a session: not a bug in the cable, not
an exception type nobody expected (defect 4 of the delivery-core issue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
import pytest

from custom_components.circle.client import (
    CircleAuth,
    CircleCable,
    CircleMemberApi,
    ConnectionStatus,
)
from custom_components.circle.client.delivery import (
    DeliveryConfig,
    DeliveryCore,
    SyncStatus,
    UnreadState,
)
from custom_components.circle.client.session import CircleSession
from tests.conftest import FAST_OPTIONS, wait_for
from tests.simulator import CircleSimulator


class Recorder:
    """A SessionListener that keeps everything."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, int, bool]] = []
        self.states: list[UnreadState] = []
        self.statuses: list[tuple[SyncStatus, ConnectionStatus]] = []
        self.saves = 0

    def on_message(self, name: str, message: Any, backfilled: bool) -> None:
        self.messages.append((name, message.id, backfilled))

    def on_notification(self, event: Any) -> None:
        """Not needed here."""

    def on_state(self, state: UnreadState) -> None:
        self.states.append(state)

    def on_status(self, status: SyncStatus, connection: ConnectionStatus) -> None:
        self.statuses.append((status, connection))

    def on_ledger_changed(self) -> None:
        self.saves += 1


class Stack:
    def __init__(self, session: aiohttp.ClientSession, sim: CircleSimulator) -> None:
        self.auth = CircleAuth(session, sim.url, sim.app_token, member_id=sim.member_id)
        self.api = CircleMemberApi(session, sim.url, self.auth)
        self.cable = CircleCable(
            session,
            sim.cable_url,
            self.auth,
            sim.member_id,
            origin=sim.origin,
            options=FAST_OPTIONS,
        )
        self.recorder = Recorder()
        self.core = DeliveryCore(sim.member_id, DeliveryConfig(resync_initial=0.05))
        self.session = CircleSession(self.api, self.cable, self.core, self.recorder)
        self.task = asyncio.get_running_loop().create_task(self.session.run())

    def live(self) -> bool:
        return self.core.phase == "live" and self.core.status.synced

    async def close(self) -> None:
        await self.session.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 5)


@pytest.fixture
async def stack(session, simulator):
    made = Stack(session, simulator)
    yield made
    await made.close()


async def test_session_goes_live_and_delivers(stack, simulator) -> None:
    await wait_for(stack.live)
    s = simulator.seeded
    posted = simulator.community.post_message(s["dm"], s["ada"].id, "hi")
    await wait_for(lambda: stack.recorder.messages)
    assert stack.recorder.messages == [("newMessage", posted.id, False)]
    assert stack.recorder.states[-1].unread_counts[s["dm"].uuid] >= 1
    assert stack.recorder.saves > 0


@pytest.mark.parametrize(
    "error", [OverflowError("exp"), ValueError("--5"), RecursionError(), KeyError("x")]
)
async def test_an_unexpected_exception_while_connecting_is_retried(
    session, simulator, caplog, error
) -> None:
    """Any exception type: logged once with its traceback, then backoff and retry."""
    stack = Stack(session, simulator)
    real = stack.auth.async_get_access_token
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise error
        return await real()

    stack.auth.async_get_access_token = flaky  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.DEBUG):
            await wait_for(stack.live)
        assert stack.cable.errors == 3
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and errors[0].exc_info is not None
    finally:
        await stack.close()


async def test_a_cable_that_crashes_is_restarted_by_the_session(
    session, simulator, caplog, monkeypatch
) -> None:
    stack = Stack(session, simulator)
    real_run = stack.cable.run
    runs = 0

    async def crashing_run() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("bug")
        await real_run()

    monkeypatch.setattr(stack.cable, "run", crashing_run)
    monkeypatch.setattr(
        "custom_components.circle.client.session.RESTART_BACKOFF_MAX", 0.1
    )
    try:
        await wait_for(stack.live)
        assert runs == 2 and stack.session.crashes == 1
        assert "Unexpected error in the connection" in caplog.text
        assert not stack.task.done()
    finally:
        await stack.close()
    assert stack.task.done()


async def test_a_listener_that_raises_does_not_end_the_session(
    session, simulator, caplog
) -> None:
    stack = Stack(session, simulator)

    def broken(*_args: Any) -> None:
        raise ValueError("listener bug")

    stack.recorder.on_message = broken  # type: ignore[method-assign]
    try:
        await wait_for(stack.live)
        s = simulator.seeded
        simulator.community.post_message(s["dm"], s["ada"].id, "one")
        await wait_for(lambda: "in a session listener" in caplog.text)
        simulator.community.notify(42)
        await wait_for(lambda: stack.core.state.new_notifications_count == 1)
    finally:
        await stack.close()


async def test_auth_verdict_during_the_resync_stops_the_session(
    session, simulator
) -> None:
    simulator.add_fault("rest", 401, count=1000)
    simulator.rotate_app_token()
    stack = Stack(session, simulator)
    try:
        await wait_for(lambda: stack.task.done(), timeout=10)
        assert stack.core.phase == "auth_failed"
        assert stack.recorder.statuses[-1][0].auth_failed
        requests = len(simulator.requests)
        await asyncio.sleep(0.5)
        assert len(simulator.requests) == requests  # no retry loop after a verdict
    finally:
        await stack.close()


async def test_a_drop_during_the_resync_then_the_backfill_delivers_everything(
    stack, simulator
) -> None:
    """Defect 2 and 3, end to end: a reconnect mid-read loses and doubles nothing."""
    await wait_for(stack.live)
    s = simulator.seeded
    community = simulator.community
    simulator.config.latency = 0.2  # REST answers slow enough to drop in between
    simulator.silence()
    missed = [
        community.post_message(s["dm"], s["ada"].id, f"m{i}").id for i in range(3)
    ]
    await wait_for(lambda: stack.core.phase == "syncing")
    simulator.drop_connections()
    simulator.config.latency = 0.0
    await wait_for(lambda: stack.cable.reconnects >= 2)
    await wait_for(stack.live)
    delivered = [mid for _name, mid, _b in stack.recorder.messages]
    assert delivered == missed


async def test_a_read_that_keeps_failing_with_a_bug_logs_one_traceback(
    session, simulator, caplog, monkeypatch
) -> None:
    stack = Stack(session, simulator)
    calls = 0

    async def broken() -> int:
        nonlocal calls
        calls += 1
        raise KeyError("unexpected shape")

    monkeypatch.setattr(stack.api, "async_get_new_notifications_count", broken)
    try:
        with caplog.at_level(logging.DEBUG):
            await wait_for(lambda: calls >= 4, timeout=10)
        with_traceback = [r for r in caplog.records if r.exc_info]
        assert len(with_traceback) == 1 and with_traceback[0].levelno == logging.ERROR
        assert stack.core.status.sync_error == "error" and stack.core.status.available
    finally:
        await stack.close()
