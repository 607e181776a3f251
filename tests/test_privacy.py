"""What reaches the recorder's database, as the README's privacy section says."""

from __future__ import annotations

from homeassistant.components.recorder import get_instance
from homeassistant.components.recorder.db_schema import (
    EventData,
    StateAttributes,
    States,
)
from homeassistant.components.recorder.util import session_scope
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.circle.const import CONF_INCLUDE_TEXT
from tests.conftest import wait_for
from tests.test_init import CHAT_EVENT, setup
from tests.test_sensor import connected

TEXT = "Door code is 4711"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock, enable_custom_integrations) -> None:
    """The recorder first (its database before Home Assistant), then the integration."""


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings."""


def _database(hass: HomeAssistant) -> tuple[str, str]:
    """Every recorded event data and every recorded state and attribute, as text."""
    with session_scope(hass=hass, read_only=True) as session:
        events = " ".join(r.shared_data or "" for r in session.query(EventData))
        states = " ".join(
            [r.shared_attrs or "" for r in session.query(StateAttributes)]
            + [r.state or "" for r in session.query(States)]
        )
    return events, states


async def _recorded(hass: HomeAssistant, simulator, options) -> tuple[str, str]:
    s = simulator.seeded
    entry = await setup(hass, simulator, options=options)
    await connected(hass, entry)
    events = async_capture_events(hass, "circle_new_message")
    simulator.community.post_message(s["dm"], s["ada"].id, TEXT)
    await wait_for(lambda: events)
    await hass.async_block_till_done()
    # The event entity, which every user sees, carries ids and names, never the text.
    attributes = hass.states.get(CHAT_EVENT).attributes
    assert attributes["sender_id"] == s["ada"].id
    assert attributes["room_uuid"] == s["dm"].uuid
    assert "text" not in attributes and TEXT not in str(attributes)
    await async_wait_recording_done(hass)
    return await get_instance(hass).async_add_executor_job(_database, hass)


async def test_with_text_only_the_bus_event_records_it(
    hass: HomeAssistant, simulator
) -> None:
    events, states = await _recorded(hass, simulator, None)
    assert TEXT in events  # the circle_new_message bus event (option on, the default)
    assert "Ada Lovelace" in events
    assert TEXT not in states
    # Names shown by the event entity stay out of the recorder.
    assert '"sender_name"' not in states and '"room_name"' not in states
    assert '"sender_id"' in states


async def test_without_text_no_message_text_is_recorded(
    hass: HomeAssistant, simulator
) -> None:
    events, states = await _recorded(hass, simulator, {CONF_INCLUDE_TEXT: False})
    assert TEXT not in events and TEXT not in states
    assert '"room_uuid"' in events  # the event itself is still recorded
