"""Through Home Assistant: a 403 Origin refusal is a repair issue, never a reauthentication."""

from __future__ import annotations

import asyncio

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.circle.const import DOMAIN
from tests.conftest import wait_for
from tests.test_init import CONNECTION, connected, setup


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings for every test here."""


def attribute(hass, name: str):
    return hass.states.get(CONNECTION).attributes.get(name)


async def test_origin_refused_with_403_raises_a_repair_then_clears_it(
    hass, hass_client, simulator
) -> None:
    """AnyCable's 403: the member API vouches for the token → repair issue, no reauth."""
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    assert attribute(hass, "origin") == "accepted"
    simulator.config.origin_refusal_status = 403
    simulator.config.allowed_origins = {"https://elsewhere.example"}
    simulator.drop_connections()
    issues = ir.async_get(hass)
    issue_id = f"origin_rejected_{entry.entry_id}"
    issue = await wait_for(lambda: issues.async_get_issue(DOMAIN, issue_id))
    assert issue.translation_placeholders["origin"] == simulator.url
    await hass.async_block_till_done()
    assert hass.states.get(CONNECTION).state == STATE_OFF
    assert attribute(hass, "origin") == "refused"
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["connection"]["origin"] == "refused"
    # Several retries later: still no reauthentication flow, the entry stays loaded.
    coordinator = entry.runtime_data
    retries = coordinator.reconnects
    await wait_for(lambda: coordinator.reconnects >= retries + 3)
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert not coordinator.status.auth_failed
    # The community allows the Origin: back by itself, the issue goes away.
    simulator.config.allowed_origins = {simulator.origin}
    await connected(hass, entry)
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get(CONNECTION).state == STATE_ON
    assert attribute(hass, "origin") == "accepted"
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


async def test_403_with_a_token_the_member_api_rejects_starts_reauth(
    hass, simulator
) -> None:
    """The member API's word: a fresh token rejected by REST too → reauthentication."""
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.config.origin_refusal_status = 403
    simulator.config.allowed_origins = {"https://elsewhere.example"}
    simulator.add_fault("rest", 401, count=1)
    simulator.drop_connections()
    await wait_for(lambda: hass.config_entries.flow.async_progress_by_handler(DOMAIN))
    flow = hass.config_entries.flow.async_progress_by_handler(DOMAIN)[0]
    assert flow["context"]["source"] == "reauth"
    # It was the cable's verdict, with the member API's word on the renewed token.
    connection = entry.runtime_data.connection
    assert connection.reason == "auth_failed"
    assert "cable and the member API" in str(connection.error)
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, f"origin_rejected_{entry.entry_id}") is None


async def test_two_403s_then_normal_answers_are_a_normal_reconnect(
    hass, simulator
) -> None:
    """A CDN or firewall challenge (issue 22 #10): back at once, no reauth, no issue left."""
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.add_fault("cable", 403, count=2)
    loop = asyncio.get_running_loop()
    dropped = loop.time()
    simulator.drop_connections()
    coordinator = entry.runtime_data
    await wait_for(lambda: coordinator.reconnects >= 2)
    await connected(hass, entry)
    assert loop.time() - dropped < 5.0
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, f"origin_rejected_{entry.entry_id}") is None
    assert attribute(hass, "origin") == "accepted"
