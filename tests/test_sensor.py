"""Entities against the simulator: room sensors, recorder, device id, unload and removal."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
import logging
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder.db_schema import StateAttributes
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    EVENT_HOMEASSISTANT_STOP,
    EVENT_STATE_CHANGED,
    STATE_OFF,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.circle.const import (
    AVAILABILITY_GRACE,
    DOMAIN,
    ISSUE_MEMBER_NOT_FOUND,
    ISSUE_NOT_ELIGIBLE,
    ISSUE_ORIGIN_REJECTED,
    ISSUE_SUBSCRIPTION_REJECTED,
    ledger_store_key,
)
from tests.conftest import wait_for
from tests.test_init import CHATS, CONNECTION, NOTIFICATIONS, device_of, setup, state


async def connected(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Wait until the cable is up and the counts and missed messages are read back."""
    coordinator = entry.runtime_data
    await wait_for(
        lambda: coordinator.connection.state == "connected" and coordinator.synced
    )
    await hass.async_block_till_done()


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create every entity enabled, also those disabled by default."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings."""


async def test_room_names_stay_out_of_the_recorder(
    hass: HomeAssistant, simulator
) -> None:
    s = simulator.seeded
    simulator.community.post_message(s["dm"], s["ada"].id, "hello")
    changes = async_capture_events(hass, EVENT_STATE_CHANGED)
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    assert hass.states.get(CHATS).attributes["rooms"] == ["Ada Lovelace"]
    event = next(e for e in changes if e.data["entity_id"] == CHATS)
    recorded = StateAttributes.shared_attrs_bytes_from_event(event, None)
    assert b"Ada Lovelace" not in recorded
    assert b"rooms" not in recorded
    assert b"friendly_name" in recorded


async def test_connection_counters_stay_out_of_the_recorder(
    hass: HomeAssistant, simulator
) -> None:
    """Reconnects, hold details and the sync error change often: shown, not recorded."""
    changes = async_capture_events(hass, EVENT_STATE_CHANGED)
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.drop_connections()
    await wait_for(lambda: entry.runtime_data.reconnects >= 1)
    await connected(hass, entry)
    attributes = hass.states.get(CONNECTION).attributes
    assert attributes["reconnects"] >= 1
    assert {"held_messages", "held_rooms", "held_since", "sync_error"} <= set(
        attributes
    )
    event = [e for e in changes if e.data["entity_id"] == CONNECTION][-1]
    recorded = StateAttributes.shared_attrs_bytes_from_event(event, None)
    for key in (
        "reconnects",
        "held_messages",
        "held_rooms",
        "held_since",
        "sync_error",
    ):
        assert key.encode() not in recorded
    assert b"delivery_held" in recorded and b"synced" in recorded


async def test_events_use_the_cached_device_id(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    device = device_of(hass, entry)
    messages = async_capture_events(hass, "circle_new_message")
    with patch.object(
        dr.DeviceRegistry,
        "async_get_device",
        side_effect=AssertionError("device registry looked up for an event"),
    ):
        simulator.community.post_message(s["dm"], s["ada"].id, "one")
        simulator.community.post_message(s["dm"], s["ada"].id, "two")
        await wait_for(lambda: len(messages) == 2)
    assert {m.data["device_id"] for m in messages} == {device.id}


@pytest.mark.freeze_time("2026-11-30 12:00:00+00:00", tick=True)
async def test_grace_period_on_a_frozen_clock(
    hass: HomeAssistant, simulator, freezer: FrozenDateTimeFactory
) -> None:
    """Entities ride out a drop for AVAILABILITY_GRACE, then go unavailable."""
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.config.allowed_origins = {"https://elsewhere.example"}
    simulator.drop_connections()
    await wait_for(lambda: state(hass, CONNECTION) == STATE_OFF)
    freezer.tick(AVAILABILITY_GRACE / 2)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert state(hass, NOTIFICATIONS) == "0"
    freezer.tick(AVAILABILITY_GRACE / 2 + timedelta(seconds=5))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert state(hass, NOTIFICATIONS) == STATE_UNAVAILABLE
    assert state(hass, CONNECTION) == STATE_OFF
    simulator.config.allowed_origins = {simulator.origin}
    await wait_for(lambda: state(hass, NOTIFICATIONS) == "0")


async def test_unload_after_home_assistant_stopped(
    hass: HomeAssistant, simulator, caplog: pytest.LogCaptureFixture
) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    await wait_for(lambda: not simulator.connections)
    assert "Unable to remove unknown job listener" not in caplog.text
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.exc_info
    ]


async def test_removing_the_entry_deletes_its_ledger_and_issues(
    hass: HomeAssistant, simulator, hass_storage
) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    issues = ir.async_get(hass)
    keys = (
        ISSUE_NOT_ELIGIBLE,
        ISSUE_SUBSCRIPTION_REJECTED,
        ISSUE_ORIGIN_REJECTED,
        ISSUE_MEMBER_NOT_FOUND,
    )
    for key in keys:
        ir.async_create_issue(
            hass,
            DOMAIN,
            f"{key}_{entry.entry_id}",
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=key,
        )
    other = "other_entry_id"
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"{ISSUE_NOT_ELIGIBLE}_{other}",
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_NOT_ELIGIBLE,
    )
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert ledger_store_key(entry.entry_id) in hass_storage
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert ledger_store_key(entry.entry_id) not in hass_storage
    for key in keys:
        assert issues.async_get_issue(DOMAIN, f"{key}_{entry.entry_id}") is None
    assert issues.async_get_issue(DOMAIN, f"{ISSUE_NOT_ELIGIBLE}_{other}") is not None


async def test_unload_removes_the_entities_before_closing_the_cable(
    hass: HomeAssistant, simulator, monkeypatch
) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    coordinator = entry.runtime_data
    seen: list[State | None] = []
    stop = type(coordinator).async_stop

    async def async_stop(self) -> None:
        seen.append(hass.states.get(NOTIFICATIONS))
        await stop(self)

    monkeypatch.setattr(type(coordinator), "async_stop", async_stop)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    # The entity was gone (only the registry's placeholder was left) when the cable closed.
    assert len(seen) == 1 and seen[0].attributes.get("restored") is True
    await wait_for(lambda: not simulator.connections)
