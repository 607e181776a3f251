"""Actions against the simulator: reply, mark read, and the per-room and total unread sensors."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
import voluptuous as vol

from custom_components.circle.const import DOMAIN
from custom_components.circle.services import MAX_MESSAGE_LENGTH
from tests.conftest import wait_for
from tests.test_init import CHATS, NOTIFICATIONS, setup, state
from tests.test_sensor import (  # noqa: F401 - the fixture is used by name
    connected,
    entity_registry_enabled_by_default,
)

MESSAGES = "sensor.circle_grace_hopper_unread_messages"


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings."""


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_send_message_by_name_and_reply(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    events = async_capture_events(hass, "circle_new_message")
    result = await hass.services.async_call(
        DOMAIN,
        "send_message",
        {
            "config_entry_id": entry.entry_id,
            "room": "ada lovelace",
            "message": "On my way!\nSee you",
        },
        blocking=True,
        return_response=True,
    )
    assert result["room_uuid"] == s["dm"].uuid and result["room_name"] == "Ada Lovelace"
    assert result["creation_uuid"] == s["dm"].messages[-1].creation_uuid
    assert s["dm"].messages[-1].body == "On my way!\nSee you"
    assert s["dm"].messages[-1].sender_id == 42
    root = simulator.community.post_message(s["group"], s["ada"].id, "Question?")
    await wait_for(lambda: len(events) == 1)
    await hass.services.async_call(
        DOMAIN,
        "send_message",
        {
            "config_entry_id": entry.entry_id,
            "room": s["group"].uuid,
            "message": "Answer",
            "reply_to": root.id,
        },
        blocking=True,
    )
    assert s["group"].messages[-1].parent_message_id == root.id
    # Answering, even in a thread, reads the room (as Circle's own unread state says).
    await wait_for(
        lambda: state(hass, "sensor.circle_grace_hopper_unread_in_analytical_engines")
        == "0"
    )
    assert simulator.community.unread_count(s["group"], 42) == 0
    await hass.async_block_till_done()
    # Our own messages are not echoed back as events ("ignore my own messages" is on).
    assert [e.data["text"] for e in events] == ["Question?"]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"room": "Nobody", "message": "x"}, "room_not_found"),
        ({"room": "Ada Lovelace", "message": "   "}, "empty_message"),
        (
            {"room": "Ada Lovelace", "message": "x" * (MAX_MESSAGE_LENGTH + 1)},
            "message_too_long",
        ),
    ],
)
async def test_send_message_bad_input(
    hass: HomeAssistant, simulator, data, key
) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN,
            "send_message",
            {"config_entry_id": entry.entry_id, **data},
            blocking=True,
        )
    assert info.value.translation_key == key


async def test_ambiguous_room_name(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    simulator.community.create_room(
        "group_chat", "Analytical Engines", [42, s["alan"].id], announce=False
    )
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN,
            "send_message",
            {
                "config_entry_id": entry.entry_id,
                "room": "Analytical Engines",
                "message": "x",
            },
            blocking=True,
        )
    assert info.value.translation_key == "room_ambiguous"


async def test_unknown_and_unloaded_entries(hass: HomeAssistant, simulator) -> None:
    entry = await setup(hass, simulator)
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN,
            "mark_notifications_read",
            {"config_entry_id": "nope"},
            blocking=True,
        )
    assert info.value.translation_key == "entry_not_found"
    other = MockConfigEntry(domain=DOMAIN, title="Other", data={})
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN,
            "mark_notifications_read",
            {"config_entry_id": other.entry_id},
            blocking=True,
        )
    assert info.value.translation_key == "entry_not_loaded"
    assert entry.state.value == "loaded"


@pytest.mark.parametrize(
    ("status", "retry", "key"),
    [
        (429, "30", "rate_limited"),
        (500, None, "action_failed"),
        (404, None, "action_failed"),
    ],
)
async def test_circle_errors_become_translated_errors(
    hass: HomeAssistant, simulator, status, retry, key
) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.add_fault("rest", status, retry_after=retry)
    with pytest.raises(HomeAssistantError) as info:
        await hass.services.async_call(
            DOMAIN,
            "send_message",
            {"config_entry_id": entry.entry_id, "room": "Ada Lovelace", "message": "x"},
            blocking=True,
        )
    assert info.value.translation_key == key
    assert not isinstance(info.value, ServiceValidationError)


async def test_refused_token_is_an_auth_error(hass: HomeAssistant, simulator) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.add_fault("rest", 401, count=2)
    with pytest.raises(HomeAssistantError) as info:
        await hass.services.async_call(
            DOMAIN,
            "mark_notifications_read",
            {"config_entry_id": entry.entry_id},
            blocking=True,
        )
    assert info.value.translation_key == "auth_failed"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_mark_read_drops_the_badges_to_zero(
    hass: HomeAssistant, simulator
) -> None:
    s = simulator.seeded
    community = simulator.community
    community.post_message(s["dm"], s["ada"].id, "one")
    community.post_message(s["dm"], s["ada"].id, "two")
    community.post_message(s["group"], s["alan"].id, "three")
    community.notify(42)
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    assert state(hass, MESSAGES) == "3"
    assert state(hass, "sensor.circle_grace_hopper_unread_in_ada_lovelace") == "2"
    community.post_message(s["group"], s["ada"].id, "four")
    await wait_for(lambda: state(hass, MESSAGES) == "4")
    assert state(hass, "sensor.circle_grace_hopper_unread_in_analytical_engines") == "2"
    await hass.services.async_call(
        DOMAIN,
        "mark_chat_read",
        {"config_entry_id": entry.entry_id, "room": "Ada Lovelace"},
        blocking=True,
    )
    assert state(hass, MESSAGES) == "2" and state(hass, CHATS) == "1"
    assert community.unread_count(s["dm"], 42) == 0
    await hass.services.async_call(
        DOMAIN, "mark_chat_read", {"config_entry_id": entry.entry_id}, blocking=True
    )
    await hass.services.async_call(
        DOMAIN,
        "mark_notifications_read",
        {"config_entry_id": entry.entry_id},
        blocking=True,
    )
    assert (
        state(hass, MESSAGES) == "0"
        and state(hass, CHATS) == "0"
        and state(hass, NOTIFICATIONS) == "0"
    )
    assert (
        community.unread_rooms(42) == []
        and community.members[42].new_notifications_count == 0
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_room_entities_follow_the_rooms(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    registry = er.async_get(hass)
    room_entities = lambda: sorted(  # noqa: E731
        e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if "_unread_in_" in e.entity_id
    )
    assert room_entities() == [
        "sensor.circle_grace_hopper_unread_in_ada_lovelace",
        "sensor.circle_grace_hopper_unread_in_analytical_engines",
    ]
    room = simulator.community.create_room("direct", "Alan Turing", [42, s["alan"].id])
    await wait_for(
        lambda: "sensor.circle_grace_hopper_unread_in_alan_turing" in room_entities()
    )
    simulator.community.post_message(room, s["alan"].id, "hi")
    await wait_for(
        lambda: state(hass, "sensor.circle_grace_hopper_unread_in_alan_turing") == "1"
    )
    attributes = hass.states.get(
        "sensor.circle_grace_hopper_unread_in_alan_turing"
    ).attributes
    assert attributes["room_uuid"] == room.uuid
    # Writing in a room reads it.
    simulator.community.post_message(room, 42, "hello back")
    await wait_for(
        lambda: state(hass, "sensor.circle_grace_hopper_unread_in_alan_turing") == "0"
    )
    simulator.community.delete_room(room)
    await wait_for(
        lambda: "sensor.circle_grace_hopper_unread_in_alan_turing"
        not in room_entities()
    )
    assert hass.states.get("sensor.circle_grace_hopper_unread_in_alan_turing") is None


async def test_longest_message_is_sent(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    text = "x" * MAX_MESSAGE_LENGTH
    await hass.services.async_call(
        DOMAIN,
        "send_message",
        {"config_entry_id": entry.entry_id, "room": "Ada Lovelace", "message": text},
        blocking=True,
    )
    assert s["dm"].messages[-1].body == text


@pytest.mark.parametrize("reply_to", [0, -3, "abc"])
async def test_reply_to_must_be_a_positive_id(
    hass: HomeAssistant, simulator, reply_to
) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    before = len(s["dm"].messages)
    with pytest.raises(vol.Invalid):
        await hass.services.async_call(
            DOMAIN,
            "send_message",
            {
                "config_entry_id": entry.entry_id,
                "room": "Ada Lovelace",
                "message": "x",
                "reply_to": reply_to,
            },
            blocking=True,
        )
    assert len(s["dm"].messages) == before


async def test_send_message_to_a_room_uuid_not_listed_yet(
    hass: HomeAssistant, simulator
) -> None:
    """A room uuid the last listing lacked (a new room) goes to Circle as it is."""
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    del entry.runtime_data.session.core.rooms[s["dm"].uuid]
    result = await hass.services.async_call(
        DOMAIN,
        "send_message",
        {"config_entry_id": entry.entry_id, "room": s["dm"].uuid, "message": "hi"},
        blocking=True,
        return_response=True,
    )
    assert result["room_uuid"] == s["dm"].uuid
    assert s["dm"].messages[-1].body == "hi"
