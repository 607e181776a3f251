"""Config entry migration: a version 1 entry keeps working exactly as before."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.circle.const import DOMAIN
from tests.conftest import entry_data, wait_for
from tests.simulator import CircleSimulator


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Migrated entries start a cable: keep it fast."""


def v1_data(simulator: CircleSimulator) -> dict:
    """What version 1 of the flow stored: one address for everything."""
    data = entry_data(simulator, origin=None)
    data.pop("server_url", None)
    return data


async def test_v1_entry_is_migrated_and_loads(
    hass: HomeAssistant, simulator: CircleSimulator
) -> None:
    """The old address becomes the Circle server too; the entry loads against it."""
    data = v1_data(simulator)
    entry = MockConfigEntry(
        domain=DOMAIN, title="Grace Hopper", unique_id="1_42", version=1, data=data
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (2, 1)
    assert entry.data["server_url"] == entry.data["community_url"] == simulator.url
    for key, value in data.items():
        if key != "tokens":  # refreshed by the setup itself
            assert entry.data[key] == value
    coordinator = entry.runtime_data
    assert coordinator.community_url == simulator.url
    assert coordinator.member is not None and coordinator.member.id == 42
    # The cable goes to the same host as before, with the same Origin.
    await wait_for(lambda: simulator.connections)
    assert entry.runtime_data.available


@pytest.mark.parametrize("minor_version", [1, 2])
async def test_v2_entry_is_left_alone(
    hass: HomeAssistant, simulator: CircleSimulator, minor_version: int
) -> None:
    """Version 2 is current; a later minor version (a downgrade) is compatible."""
    data = entry_data(
        simulator, server_url=simulator.url, community_url="https://grace.circle.so"
    )
    simulator.config.allowed_origins.add("https://grace.circle.so")
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="1_42",
        version=2,
        minor_version=minor_version,
        data=data,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (2, minor_version)
    assert entry.data["community_url"] == "https://grace.circle.so"
    assert entry.data["server_url"] == simulator.url


async def test_future_version_is_refused(
    hass: HomeAssistant, simulator: CircleSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A downgrade must not run an entry it does not understand."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id="1_42",
        version=3,
        data=entry_data(simulator, server_url=simulator.url),
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert (
        "Cannot downgrade the Circle entry Grace Hopper from version 3" in caplog.text
    )
    assert simulator.requests == []
