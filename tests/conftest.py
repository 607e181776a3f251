"""Shared fixtures: the Circle simulator on loopback and a client wired to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
import contextlib
import logging
from typing import Any

import aiohttp
import pytest

try:
    from homeassistant.config_entries import ConfigEntryState
    from homeassistant.core import HomeAssistant
except (
    ImportError
):  # the client package's own run (scripts/test-client): no Home Assistant
    HAS_HOME_ASSISTANT = False
else:
    HAS_HOME_ASSISTANT = True

from custom_components.circle.client import (
    CableEvent,
    CableOptions,
    CircleAuth,
    CircleCable,
    CircleMemberApi,
    ConnectionState,
    ConnectionStatus,
    Subscription,
)
from custom_components.circle.client.tokencheck import member_token_check
from tests.simulator import CircleSimulator, SimConfig

# Scaled-down timings: pings every 0.2 s, stale after 0.5 s, so the suite stays fast.
FAST_PING = 0.2
FAST_OPTIONS = CableOptions(
    stale_after=0.5,
    subscribe_timeout=0.3,
    backoff_initial=0.05,
    backoff_max=0.4,
    stable_after=2.0,
    close_timeout=0.2,
    renew_initial=0.05,
    renew_max=0.4,
    origin_retry_initial=0.2,
    origin_retry_max=1.0,
)


if not HAS_HOME_ASSISTANT:

    @pytest.fixture(name="caplog")
    def caplog_fixture(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
        """Capture debug records, as Home Assistant's test plugin does."""
        caplog.set_level(logging.DEBUG)
        return caplog


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let Home Assistant load custom_components/circle in every test (when it is there)."""
    if HAS_HOME_ASSISTANT:
        request.getfixturevalue("enable_custom_integrations")


@pytest.fixture
def sim_config() -> SimConfig:
    """Simulator settings; override in a module or a test to change its behaviour."""
    return SimConfig(ping_interval=FAST_PING)


@pytest.fixture
async def simulator(
    socket_enabled: None, sim_config: SimConfig
) -> AsyncGenerator[CircleSimulator]:
    """A running simulator on 127.0.0.1 and a random port."""
    sim = CircleSimulator(sim_config)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def session(socket_enabled: None) -> AsyncGenerator[aiohttp.ClientSession]:
    """A client session closed after the test."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.01
) -> Any:
    """Poll until `predicate()` is truthy; fail the test with a clear message otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if result := predicate():
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


class CableHarness:
    """A cable running against the simulator, recording everything it reports."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        sim: CircleSimulator,
        *,
        options: CableOptions = FAST_OPTIONS,
        room_ids: tuple[int, ...] = (),
        **auth_kwargs: Any,
    ) -> None:
        self.sim = sim
        self.saved_tokens: list[Any] = []
        auth_kwargs.setdefault("member_id", sim.member_id)
        self.auth = CircleAuth(
            session,
            sim.url,
            sim.app_token,
            on_tokens=self.saved_tokens.append,
            **auth_kwargs,
        )
        self.api = CircleMemberApi(session, sim.url, self.auth)
        self.cable = CircleCable(
            session,
            sim.cable_url,
            self.auth,
            sim.member_id,
            origin=sim.origin,
            room_ids=room_ids,
            options=options,
            token_check=member_token_check(session, sim.url),
        )
        self.events: list[CableEvent] = []
        self.states: list[ConnectionStatus] = []
        self.sub_changes: list[Subscription] = []
        self.cable.add_event_listener(self.events.append)
        self.cable.add_state_listener(self.states.append)
        self.cable.add_subscription_listener(self.sub_changes.append)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.cable.run())

    async def stop(self) -> None:
        await self.cable.stop()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.task, 5)

    def state_names(self) -> list[str]:
        return [s.state.value for s in self.states]

    def connected_count(self) -> int:
        return sum(1 for s in self.states if s.state is ConnectionState.CONNECTED)

    def all_confirmed(self) -> bool:
        return all(s.state == "confirmed" for s in self.cable.subscriptions)

    async def ready(self, connections: int = 1) -> None:
        """Wait until connected `connections` times and every subscription is confirmed."""
        await wait_for(
            lambda: self.connected_count() >= connections and self.all_confirmed()
        )

    def events_named(self, name: str) -> list[CableEvent]:
        return [e for e in self.events if e.name == name]


@pytest.fixture
async def harness_factory(
    session: aiohttp.ClientSession, simulator: CircleSimulator
) -> AsyncGenerator[Callable[..., CableHarness]]:
    """Build harnesses; every one is stopped at the end of the test."""
    made: list[CableHarness] = []

    def make(**kwargs: Any) -> CableHarness:
        harness = CableHarness(session, simulator, **kwargs)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.stop()


@pytest.fixture
async def cable_options(
    monkeypatch: pytest.MonkeyPatch, hass: HomeAssistant, simulator: CircleSimulator
) -> AsyncGenerator[CableOptions]:
    """Fast cable timings inside Home Assistant too.

    At the end every Circle entry is unloaded before the simulator stops, so that no cable is
    still connecting to a server that is shutting down.
    """
    monkeypatch.setattr(
        "custom_components.circle.coordinator.CABLE_OPTIONS", FAST_OPTIONS
    )
    yield FAST_OPTIONS
    for entry in hass.config_entries.async_entries("circle"):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    await asyncio.sleep(
        0.05
    )  # let the server finish accepting anything already in flight


def entry_data(sim: CircleSimulator, **overrides: Any) -> dict[str, Any]:
    """Config entry data pointing at the simulator."""
    return {
        "community_url": sim.url,
        "member": str(sim.member_id),
        "member_id": sim.member_id,
        "app_token": sim.app_token,
        "origin": None,
        "tokens": None,
        **overrides,
    }
