"""Reauthentication, reconfiguration and removal of a running entry, through Home Assistant.

Every entry here is really set up against the simulator over loopback: the flows act on a
running session, and the tests check that the new credentials and addresses are used at once
(no restart), that the old session stops, that the tokens it held are revoked at the server
that issued them, and that no token ever reaches another server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
import logging
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.circle.compat import async_get_device_by_identifier
from custom_components.circle.const import DOMAIN, ledger_store_key
from custom_components.circle.store import async_get_runtime_store, runtime_store_key
from tests.conftest import FAST_PING, entry_data, wait_for
from tests.simulator import CircleSimulator, SimConfig


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings for every test here."""


@pytest.fixture
async def other_server(socket_enabled: None) -> AsyncGenerator[CircleSimulator]:
    """A second Circle server (a test server the user moves to)."""
    sim = CircleSimulator(SimConfig(ping_interval=FAST_PING))
    await sim.start()
    yield sim
    await sim.stop()


async def setup(hass: HomeAssistant, simulator: CircleSimulator) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id="1_42",
        version=2,
        minor_version=2,
        data=entry_data(simulator, server_url=simulator.url),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await running(hass, entry)
    return entry


async def running(hass: HomeAssistant, entry: MockConfigEntry) -> Any:
    """Wait until the entry's session is connected, subscribed and live."""
    await wait_for(
        lambda: entry.state is ConfigEntryState.LOADED
        and entry.runtime_data.cable is not None
        and entry.runtime_data.connection.state == "connected"
        and all(s.state == "confirmed" for s in entry.runtime_data.cable.subscriptions)
        and entry.runtime_data.session.core.phase == "live"
    )
    await hass.async_block_till_done()
    return entry.runtime_data


def revoked(sim: CircleSimulator, tokens: Any) -> bool:
    """Both tokens of a set are revoked at `sim`."""
    return (
        sim.refresh_tokens[tokens.refresh_token].revoked
        and sim.access_tokens[tokens.access_token].revoked
    )


def foreign(sim: CircleSimulator) -> list[dict[str, Any]]:
    """Requests to `sim` that carried a bearer it never issued."""
    return [r for r in sim.requests if r["bearer"] == "unknown"]


async def test_reauth_of_a_running_entry_takes_effect_at_once(
    hass: HomeAssistant, simulator: CircleSimulator
) -> None:
    entry = await setup(hass, simulator)
    old = entry.runtime_data
    old_tokens = old.auth.tokens
    new_app_token = simulator.rotate_app_token()  # the admin replaced the token
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"app_token": new_app_token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    new = await running(hass, entry)
    assert new is not old
    assert old.session_task is not None and old.session_task.done()
    assert len(simulator.connections) == 1  # the old cable is closed
    # The new session uses the new app token and the tokens the flow minted with it.
    assert new.app_token == new_app_token == entry.data["app_token"]
    assert new.auth.tokens.access_token != old_tokens.access_token
    assert simulator.check_access(new.auth.tokens.access_token)[0] == 42
    # The old session's tokens are revoked (with the new app token: the same server).
    await wait_for(lambda: revoked(simulator, old_tokens))


async def test_reconfigure_of_a_running_entry_moves_to_the_new_server_at_once(
    hass: HomeAssistant, simulator: CircleSimulator, other_server: CircleSimulator
) -> None:
    entry = await setup(hass, simulator)
    old = entry.runtime_data
    old_tokens = old.auth.tokens
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "community_url": other_server.url,
            "member": "42",
            "app_token": other_server.app_token,
            "advanced": {"server_url": other_server.url},
        },
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    new = await running(hass, entry)
    assert new is not old and new.server_url == other_server.url
    await wait_for(lambda: not simulator.connections)
    assert len(other_server.connections) == 1
    # The old server revoked its tokens (asked with its own app token); the new server
    # never saw a token it did not issue.
    await wait_for(lambda: revoked(simulator, old_tokens))
    assert foreign(other_server) == []
    assert foreign(simulator) == []


async def test_a_renewal_racing_a_reconfiguration_never_reaches_the_new_server(
    hass: HomeAssistant, simulator: CircleSimulator, other_server: CircleSimulator
) -> None:
    """The old session renews while the user moves to another server: its tokens are
    refused by the store, and the next setup sends nothing of the old server's."""
    entry = await setup(hass, simulator)
    old = entry.runtime_data
    simulator.config.latency = 0.3  # the old server's renewal is in flight ...
    renewal = asyncio.ensure_future(
        old.auth.async_invalidate(old.auth.tokens.access_token)
    )
    await asyncio.sleep(0.05)
    result = await entry.start_reconfigure_flow(hass)  # ... while this completes
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "community_url": other_server.url,
            "member": "42",
            "app_token": other_server.app_token,
            "advanced": {"server_url": other_server.url},
        },
    )
    assert result["reason"] == "reconfigure_successful"
    renewed = await renewal  # the old server answered after the new one was saved
    await hass.async_block_till_done()
    runtime = await async_get_runtime_store(hass, entry.entry_id)
    assert runtime.data["server_url"] == other_server.url
    assert runtime.tokens(other_server.url)["access_token"] != renewed
    assert renewed in simulator.access_tokens
    # Restart: the new server gets only its own tokens.
    simulator.config.latency = 0
    assert await hass.config_entries.async_reload(entry.entry_id)
    await running(hass, entry)
    assert foreign(other_server) == []


async def test_tokens_of_another_server_are_discarded_at_setup(
    hass: HomeAssistant, simulator: CircleSimulator, other_server: CircleSimulator
) -> None:
    """A store holding the old server's tokens (the entry was edited elsewhere): fresh mint."""
    entry = await setup(hass, simulator)
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.config_entries.async_update_entry(
        entry,
        data={
            **entry.data,
            "server_url": other_server.url,
            "community_url": other_server.url,
            "app_token": other_server.app_token,
        },
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    new = await running(hass, entry)
    assert foreign(other_server) == []
    assert other_server.requests[0]["path"].endswith("/auth_token")
    assert new.auth.tokens.access_token in other_server.access_tokens


async def test_reauth_of_a_stopped_entry_revokes_the_stored_tokens(
    hass: HomeAssistant, simulator: CircleSimulator
) -> None:
    """No session holds them: the flow revokes what the store kept, then the entry loads."""
    entry = await setup(hass, simulator)
    stored = entry.runtime_data.auth.tokens
    assert await hass.config_entries.async_unload(entry.entry_id)
    new_app_token = simulator.rotate_app_token()
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"app_token": new_app_token}
    )
    assert result["reason"] == "reauth_successful"
    await wait_for(lambda: revoked(simulator, stored))
    new = await running(hass, entry)
    assert new.auth.tokens.access_token != stored.access_token


async def test_removal_revokes_the_tokens_and_deletes_the_stores(
    hass: HomeAssistant, simulator: CircleSimulator, hass_storage: dict[str, Any]
) -> None:
    entry = await setup(hass, simulator)
    tokens = entry.runtime_data.auth.tokens
    await hass.config_entries.async_unload(entry.entry_id)
    key = runtime_store_key(entry.entry_id)
    assert hass_storage[key]["data"]["tokens"]["access_token"] == tokens.access_token
    assert await hass.config_entries.async_remove(entry.entry_id)
    await wait_for(lambda: revoked(simulator, tokens))
    assert not simulator.connections
    assert key not in hass_storage
    assert ledger_store_key(entry.entry_id) not in hass_storage


@pytest.mark.parametrize("fault", ["error", "slow"])
async def test_a_failing_revocation_never_blocks_removal(
    hass: HomeAssistant,
    simulator: CircleSimulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Well above the bound below, so a removal that awaited the revocation fails; the bound
    # leaves room for the unload itself (the cable's close alone may wait close_timeout).
    monkeypatch.setattr("custom_components.circle.revocation.REVOKE_TIMEOUT", 2.0)
    entry = await setup(hass, simulator)
    tokens = entry.runtime_data.auth.tokens
    if fault == "error":
        simulator.add_fault("revoke", 500, count=10)
    else:
        simulator.config.latency = 5.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await hass.config_entries.async_remove(entry.entry_id)
    assert loop.time() - started < 1.0
    assert hass.config_entries.async_get_entry(entry.entry_id) is None
    await wait_for(lambda: "Could not revoke the old Circle tokens" in caplog.text)
    ours = "\n".join(
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("custom_components.circle")
    )
    assert "Could not revoke" in ours
    for secret in (tokens.access_token, tokens.refresh_token, simulator.app_token):
        assert secret not in ours
    simulator.config.latency = 0


async def test_removing_and_adding_the_account_again_keeps_the_device_id(
    hass: HomeAssistant, simulator: CircleSimulator
) -> None:
    """Automations filter bus events on `device_id`: the id must outlive the entry."""
    devices = dr.async_get(hass)

    async def add() -> str:
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USER}
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {
                "community_url": simulator.url,
                "member": "42",
                "app_token": simulator.app_token,
                "advanced": {"server_url": simulator.url},
            },
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        entry = result["result"]
        await hass.async_block_till_done()
        await running(hass, entry)
        (device,) = [
            d
            for d in dr.async_entries_for_config_entry(devices, entry.entry_id)
            if d.identifiers == {(DOMAIN, "1_42")}
        ]
        assert entry.runtime_data.device_id == device.id
        return entry.entry_id

    first = await add()
    first_device = async_get_device_by_identifier(hass, (DOMAIN, "1_42"), first).id
    assert await hass.config_entries.async_remove(first)
    await hass.async_block_till_done()
    assert dr.async_entries_for_config_entry(devices, first) == []
    second = await add()
    assert second != first
    assert (
        async_get_device_by_identifier(hass, (DOMAIN, "1_42"), second).id
        == first_device
    )
