"""The fault matrix: traffic keeps flowing while each fault hits; afterwards every message was
delivered exactly once, the sensors equal the simulator's truth, and the integration is back."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
import random

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.circle.const import DOMAIN
from custom_components.circle.coordinator import DELIVERY_CONFIG
from tests.conftest import wait_for
from tests.simulator.server import fault_frame
from tests.test_init import CHATS, NOTIFICATIONS, connected, setup


@pytest.fixture(autouse=True)
def _fast(cable_options, monkeypatch) -> None:
    """Fast cable timings and resync retries."""
    monkeypatch.setattr(
        "custom_components.circle.coordinator.DELIVERY_CONFIG",
        replace(DELIVERY_CONFIG, resync_initial=0.05),
    )


class Traffic:
    """Messages from others and notification changes, every few milliseconds."""

    def __init__(self, simulator) -> None:
        self.sim = simulator
        self.posted: list[int] = []
        self.rng = random.Random(7)
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        s = self.sim.seeded
        c = self.sim.community
        while True:
            roll = self.rng.random()
            if roll < 0.7:
                room, sender = self.rng.choice(
                    [
                        (s["dm"], s["ada"]),
                        (s["group"], s["alan"]),
                        (s["group"], s["ada"]),
                    ]
                )
                self.posted.append(
                    c.post_message(room, sender.id, f"m{len(self.posted)}").id
                )
            elif roll < 0.85:
                c.notify(42)
            elif roll < 0.92:
                c.reset_notifications(42)
            else:
                unread = c.unread_rooms(42)
                if unread:
                    c.mark_room_read(self.rng.choice(unread), 42)
            await asyncio.sleep(0.02)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


async def _bad_frames(hass, simulator, entry) -> None:
    for kind in ("truncated", "non_json", "oversized", "malformed", "raw"):
        simulator.send_raw(fault_frame(kind, "\x00garbage"))
        await asyncio.sleep(0.05)


async def _ha_restart(hass, simulator, entry) -> None:
    assert await hass.config_entries.async_unload(entry.entry_id)
    await asyncio.sleep(0.3)  # traffic goes on while Home Assistant is down
    assert await hass.config_entries.async_setup(entry.entry_id)


FAULTS = {
    "drop_without_close": lambda hass, sim, entry: sim.drop_connections(),
    "server_restart": lambda hass, sim, entry: sim.disconnect_all(
        "server_restart", True
    ),
    "remote_close": lambda hass, sim, entry: sim.disconnect_all("remote", True),
    "half_open": lambda hass, sim, entry: sim.silence(),
    "token_expiry": lambda hass, sim, entry: (
        sim.expire_access_tokens(),
        sim.drop_connections(),
    ),
    "refresh_rejected": lambda hass, sim, entry: (
        sim.revoke_tokens("refresh"),
        sim.revoke_tokens("access"),
        sim.drop_connections(),
    ),
    "refresh_429": lambda hass, sim, entry: (
        sim.add_fault("refresh", 429, retry_after="0.3"),
        sim.revoke_tokens("access"),
        sim.drop_connections(),
    ),
    "rest_429": lambda hass, sim, entry: (
        sim.add_fault("rest", 429, retry_after="0.3"),
        sim.drop_connections(),
    ),
    "rest_5xx_burst": lambda hass, sim, entry: (
        sim.add_fault("rest", 503, count=4),
        sim.drop_connections(),
    ),
    "subscription_rejected": lambda hass, sim, entry: (
        setattr(sim.config, "subscriptions", "reject"),
        sim.drop_connections(),
    ),
    "bad_frames": _bad_frames,
    "ha_restart": _ha_restart,
}


async def _heal(simulator, fault: str) -> None:
    if fault == "subscription_rejected":
        await asyncio.sleep(0.3)
        simulator.config.subscriptions = "normal"
        simulator.drop_connections()


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_nothing_lost_nothing_doubled(
    hass: HomeAssistant, simulator, fault
) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    events = async_capture_events(hass, "circle_new_message")
    traffic = Traffic(simulator)
    traffic.start()
    await asyncio.sleep(0.3)
    result = FAULTS[fault](hass, simulator, entry)
    if asyncio.iscoroutine(result):
        await result
    elif isinstance(result, tuple):
        for item in result:
            if asyncio.iscoroutine(item):
                await item
    await asyncio.sleep(0.4)
    await _heal(simulator, fault)
    await asyncio.sleep(0.3)
    await traffic.stop()
    await connected(hass, entry)
    expected = set(traffic.posted)
    assert len(expected) > 10

    def delivered() -> Counter[int]:
        return Counter(e.data["message_id"] for e in events)

    await wait_for(lambda: set(delivered()) >= expected, timeout=10)
    await asyncio.sleep(0.2)
    await hass.async_block_till_done()
    counts = delivered()
    assert set(counts) == expected, "only the posted messages"
    assert max(counts.values()) == 1, (
        f"duplicates: {[k for k, v in counts.items() if v > 1]}"
    )
    for room in {e.data["room_uuid"] for e in events}:
        ids = [e.data["message_id"] for e in events if e.data["room_uuid"] == room]
        assert ids == sorted(ids), "out of order"
    truth = simulator.community
    await wait_for(
        lambda: hass.states.get(NOTIFICATIONS).state
        == str(truth.members[42].new_notifications_count)
        and hass.states.get(CHATS).state == str(len(truth.unread_rooms(42))),
    )
    if fault not in ("bad_frames",):
        assert entry.runtime_data.cable.reconnects >= 1 or fault == "ha_restart"


async def test_app_token_revoked_during_traffic_asks_for_reauth(
    hass: HomeAssistant, simulator
) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    traffic = Traffic(simulator)
    traffic.start()
    await asyncio.sleep(0.2)
    simulator.rotate_app_token()
    simulator.revoke_tokens("refresh")
    simulator.revoke_tokens("access")
    simulator.drop_connections()
    await wait_for(lambda: hass.config_entries.flow.async_progress_by_handler(DOMAIN))
    await traffic.stop()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flows[0]["context"]["source"] == "reauth"
    cable_calls = [r for r in simulator.requests if r["path"] == "/cable"]
    await asyncio.sleep(0.5)
    assert len([r for r in simulator.requests if r["path"] == "/cable"]) == len(
        cable_calls
    ), "no reconnect storm"
