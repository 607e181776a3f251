"""Missed messages are fired after reconnects and restarts, once each, in order, bounded."""

from __future__ import annotations

from dataclasses import replace

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.circle.coordinator import DELIVERY_CONFIG
from tests.conftest import wait_for
from tests.test_init import CONNECTION, connected, setup


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings."""


async def _gap(hass, simulator, entry, post) -> None:
    """Take the socket half-open, change things, and wait for the reconnect."""
    reconnects = entry.runtime_data.cable.reconnects
    simulator.silence()
    post()
    await wait_for(lambda: entry.runtime_data.cable.reconnects > reconnects)
    await connected(hass, entry)


async def test_messages_missed_during_a_gap_are_fired_once_in_order(
    hass: HomeAssistant, simulator
) -> None:
    s = simulator.seeded
    community = simulator.community
    community.post_message(
        s["dm"], s["ada"].id, "history"
    )  # before the first start: not news
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    events = async_capture_events(hass, "circle_new_message")
    community.post_message(s["group"], s["alan"].id, "live")
    await wait_for(lambda: len(events) == 1)
    posted = []

    def post() -> None:
        posted.append(community.post_message(s["dm"], s["ada"].id, "missed 1").id)
        posted.append(community.post_message(s["group"], s["alan"].id, "missed 2").id)
        posted.append(community.post_message(s["dm"], s["ada"].id, "missed 3").id)
        community.post_message(s["dm"], 42, "my own")  # ignored like a live one

    await _gap(hass, simulator, entry, post)
    await wait_for(lambda: len(events) == 4)
    await hass.async_block_till_done()
    backfilled = [e.data for e in events[1:]]
    assert [e["message_id"] for e in backfilled] == posted
    assert [e["text"] for e in backfilled] == ["missed 1", "missed 2", "missed 3"]
    assert all(e["backfilled"] for e in backfilled) and not events[0].data["backfilled"]
    assert backfilled[0]["room_name"] == "Ada Lovelace"
    # A second reconnect with nothing new fires nothing.
    await _gap(hass, simulator, entry, lambda: None)
    await hass.async_block_till_done()
    assert len(events) == 4
    assert "history" not in [e.data.get("text") for e in events]


async def test_restart_counts_as_a_gap(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    seen = simulator.community.post_message(s["dm"], s["ada"].id, "seen live")
    ledger = entry.runtime_data.session.core.ledger
    await wait_for(lambda: ledger.handed_over(s["dm"].uuid, seen.id))
    assert await hass.config_entries.async_unload(entry.entry_id)
    missed = simulator.community.post_message(
        s["dm"], s["ada"].id, "while Home Assistant was down"
    )
    events = async_capture_events(hass, "circle_new_message")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await connected(hass, entry)
    await wait_for(lambda: len(events) == 1)
    assert events[0].data["message_id"] == missed.id and events[0].data["backfilled"]


async def test_backfill_is_bounded_by_count_and_age(
    hass: HomeAssistant, simulator, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(
        "custom_components.circle.coordinator.DELIVERY_CONFIG",
        replace(DELIVERY_CONFIG, per_room=3),
    )
    s = simulator.seeded
    entry = await setup(hass, simulator, options={"backfill_hours": 1})
    await connected(hass, entry)
    events = async_capture_events(hass, "circle_new_message")

    def post() -> None:
        old = simulator.community.post_message(s["group"], s["alan"].id, "too old")
        old.sent_at = "2020-01-01T00:00:00.000Z"
        for i in range(5):
            simulator.community.post_message(s["dm"], s["ada"].id, f"burst {i}")

    await _gap(hass, simulator, entry, post)
    await wait_for(lambda: len(events) == 3)
    await hass.async_block_till_done()
    assert [e.data["text"] for e in events] == ["burst 2", "burst 3", "burst 4"]
    assert "Skipped" in caplog.text
    # What was skipped is never replayed later.
    await _gap(hass, simulator, entry, lambda: None)
    await hass.async_block_till_done()
    assert len(events) == 3


async def test_backfill_off(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator, options={"backfill_hours": 0})
    await connected(hass, entry)
    events = async_capture_events(hass, "circle_new_message")
    await _gap(
        hass,
        simulator,
        entry,
        lambda: simulator.community.post_message(s["dm"], s["ada"].id, "x"),
    )
    await hass.async_block_till_done()
    assert events == []


async def test_held_messages_are_released_when_the_backfill_cannot_run(
    hass: HomeAssistant, simulator, monkeypatch
) -> None:
    monkeypatch.setattr(
        "custom_components.circle.coordinator.DELIVERY_CONFIG",
        replace(DELIVERY_CONFIG, hold_max=1.0, resync_initial=30),
    )
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    core = entry.runtime_data.session.core
    events = async_capture_events(hass, "circle_new_message")
    mark = core.ledger.watermarks[s["dm"].uuid]
    simulator.add_fault(
        "rest", 503, count=1000
    )  # no resync, so no backfill, for a while
    simulator.drop_connections()
    # Connected again, while the resync keeps failing.
    await wait_for(lambda: core.phase == "syncing" and core.failures > 0)
    held = simulator.community.post_message(s["dm"], s["ada"].id, "held back")
    await wait_for(lambda: core.status.held_messages == 1)
    assert events == []  # waiting for the backfill
    # The connection sensor says that delivery is held, and why.
    await hass.async_block_till_done()
    state = hass.states.get(CONNECTION)
    assert state is not None
    assert state.attributes["delivery_held"] == "rest_unavailable"
    assert (state.attributes["held_rooms"], state.attributes["held_messages"]) == (1, 1)
    since = dt_util.parse_datetime(state.attributes["held_since"])
    assert since is not None and abs((dt_util.utcnow() - since).total_seconds()) < 5
    await wait_for(lambda: len(events) == 1)
    assert events[0].data["text"] == "held back" and not events[0].data["backfilled"]
    # The watermark still marks the start of the gap until a backfill has really run.
    assert core.ledger.watermarks[s["dm"].uuid] == mark
    simulator.faults.clear()
    simulator.drop_connections()
    await wait_for(lambda: core.phase == "live" and entry.runtime_data.synced)
    assert core.ledger.watermarks[s["dm"].uuid] >= held.id
    await hass.async_block_till_done()
    assert len(events) == 1  # the held message is not fired twice
    state = hass.states.get(CONNECTION)
    assert state is not None and state.attributes["delivery_held"] is None
    assert state.attributes["held_since"] is None


async def test_a_lost_ledger_is_noticed_and_backfilled(
    hass: HomeAssistant, simulator, caplog
) -> None:
    """A store that existed and is gone is not a first start: warn, then fetch the window."""
    from homeassistant.helpers.storage import Store

    from custom_components.circle.const import ledger_store_key

    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    assert entry.runtime_data.runtime.ledger_started
    assert await hass.config_entries.async_unload(entry.entry_id)
    await Store(hass, 1, ledger_store_key(entry.entry_id)).async_remove()
    missed = simulator.community.post_message(
        s["dm"], s["ada"].id, "while the store was lost"
    )
    events = async_capture_events(hass, "circle_new_message")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await connected(hass, entry)
    await wait_for(lambda: any(e.data["message_id"] == missed.id for e in events))
    assert "record of delivered Circle messages was lost" in caplog.text
    assert all(e.data["backfilled"] for e in events)
