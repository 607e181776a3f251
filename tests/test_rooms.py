"""A device per chat room, against the simulator: entities, renames, rooms coming and going."""

from __future__ import annotations

from homeassistant.components.sensor import ATTR_STATE_CLASS
from homeassistant.const import ATTR_FRIENDLY_NAME, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.circle import async_remove_config_entry_device
from custom_components.circle.compat import async_get_device_by_identifier
from custom_components.circle.const import DOMAIN
from custom_components.circle.device import device_identifier, room_identifier
from tests.conftest import entry_data, wait_for
from tests.test_init import setup, state
from tests.test_sensor import connected

DM_UNREAD = "sensor.ada_lovelace_unread_messages"
DM_LAST = "sensor.ada_lovelace_last_message"
DM_NOTIFY = "notify.ada_lovelace"
GROUP_UNREAD = "sensor.analytical_engines_unread_messages"
GROUP_NOTIFY = "notify.analytical_engines"


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings."""


def room_device(hass: HomeAssistant, entry, uuid: str) -> dr.DeviceEntry | None:
    """The room's device, by the identifier built from Circle's room uuid."""
    return async_get_device_by_identifier(
        hass, room_identifier(entry, uuid), entry.entry_id
    )


def device_entities(hass: HomeAssistant, device_id: str) -> set[str]:
    registry = er.async_get(hass)
    return {e.entity_id for e in er.async_entries_for_device(registry, device_id)}


async def test_a_device_per_room_linked_to_the_account(
    hass: HomeAssistant, simulator
) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    account = async_get_device_by_identifier(
        hass, device_identifier(entry), entry.entry_id
    )
    assert account.model == "Circle member"
    dm = room_device(hass, entry, s["dm"].uuid)
    group = room_device(hass, entry, s["group"].uuid)
    assert dm.name == "Ada Lovelace" and group.name == "Analytical Engines"
    assert dm.via_device_id == account.id == group.via_device_id
    assert (dm.model, dm.model_id) == ("Circle chat", "direct")
    assert group.model_id == "group_chat"
    assert device_entities(hass, dm.id) == {DM_UNREAD, DM_LAST, DM_NOTIFY}
    assert device_entities(hass, group.id) == {
        GROUP_UNREAD,
        GROUP_NOTIFY,
        "sensor.analytical_engines_last_message",
    }
    # Direct and group chats are enabled by default; names are static and translated.
    assert state(hass, DM_UNREAD) == "0"
    attributes = hass.states.get(DM_UNREAD).attributes
    assert attributes[ATTR_FRIENDLY_NAME] == "Ada Lovelace Unread messages"
    assert attributes["room_uuid"] == s["dm"].uuid
    assert attributes["room_kind"] == "direct"
    assert ATTR_STATE_CLASS not in attributes
    assert hass.states.get(DM_NOTIFY).attributes[ATTR_FRIENDLY_NAME] == "Ada Lovelace"
    assert state(hass, DM_LAST) == STATE_UNKNOWN  # no message yet
    message = simulator.community.post_message(s["dm"], s["ada"].id, "hi")
    await wait_for(lambda: state(hass, DM_UNREAD) == "1")
    await wait_for(lambda: state(hass, DM_LAST) != STATE_UNKNOWN)
    assert state(hass, DM_LAST).startswith(message.sent_at[:19])


async def test_space_chats_are_disabled_by_default(
    hass: HomeAssistant, simulator
) -> None:
    s = simulator.seeded
    space = simulator.community.create_room(
        "space_chat", "Welcome space", [42, s["ada"].id], announce=False
    )
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    device = room_device(hass, entry, space.uuid)
    registry = er.async_get(hass)
    entries = er.async_entries_for_device(
        registry, device.id, include_disabled_entities=True
    )
    assert len(entries) == 3
    for entity in entries:
        assert entity.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        assert hass.states.get(entity.entity_id) is None


async def test_renaming_a_room_renames_its_device_only(
    hass: HomeAssistant, simulator
) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    device = room_device(hass, entry, s["group"].uuid)
    before = device_entities(hass, device.id)
    unique_ids = {er.async_get(hass).async_get(e).unique_id for e in before}
    simulator.community.update_room(s["group"], name="Difference Engines")
    await wait_for(
        lambda: room_device(hass, entry, s["group"].uuid).name == "Difference Engines"
    )
    await hass.async_block_till_done()
    renamed = room_device(hass, entry, s["group"].uuid)
    assert renamed.id == device.id
    assert device_entities(hass, device.id) == before  # entity ids unchanged
    assert {er.async_get(hass).async_get(e).unique_id for e in before} == unique_ids
    await wait_for(
        lambda: hass.states.get(GROUP_UNREAD).attributes[ATTR_FRIENDLY_NAME]
        == "Difference Engines Unread messages"
    )
    simulator.community.post_message(s["group"], s["ada"].id, "still here")
    await wait_for(lambda: state(hass, GROUP_UNREAD) == "1")


async def test_rooms_that_appear_and_rooms_left(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    room = simulator.community.create_room(
        "group_chat", "Compilers", [42, s["alan"].id]
    )
    await wait_for(lambda: room_device(hass, entry, room.uuid) is not None)
    await hass.async_block_till_done()
    device = room_device(hass, entry, room.uuid)
    assert device_entities(hass, device.id) == {
        "sensor.compilers_unread_messages",
        "sensor.compilers_last_message",
        "notify.compilers",
    }
    assert state(hass, "notify.compilers") == STATE_UNKNOWN
    simulator.community.delete_room(room)
    await wait_for(lambda: room_device(hass, entry, room.uuid) is None)
    await hass.async_block_till_done()
    assert er.async_get(hass).async_get("notify.compilers") is None
    assert hass.states.get("sensor.compilers_unread_messages") is None
    assert room_device(hass, entry, s["dm"].uuid) is not None


async def test_rooms_gone_while_down_lose_their_devices_at_setup(
    hass: HomeAssistant, simulator
) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    simulator.community.delete_room(s["group"])
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await connected(hass, entry)
    assert room_device(hass, entry, s["group"].uuid) is None
    assert er.async_get(hass).async_get(GROUP_UNREAD) is None
    assert room_device(hass, entry, s["dm"].uuid) is not None


async def test_incomplete_listing_removes_no_room_device(
    hass: HomeAssistant, simulator, monkeypatch
) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    monkeypatch.setattr(
        "custom_components.circle.client.api.CircleMemberApi.async_list_chat_rooms.__kwdefaults__",
        {"per_page": 1, "max_pages": 1},
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await connected(hass, entry)
    assert not entry.runtime_data.rooms_complete
    assert room_device(hass, entry, s["dm"].uuid) is not None
    assert room_device(hass, entry, s["group"].uuid) is not None


@pytest.mark.parametrize("missed", [1, 2])
async def test_a_room_device_goes_only_after_two_complete_listings_lack_it(
    hass: HomeAssistant, simulator, monkeypatch, missed: int
) -> None:
    """As the delivery core decides: one complete listing can miss a room that moved
    between its pages; a room is gone once two complete listings lacked it."""
    from custom_components.circle.client.api import CircleMemberApi

    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    device = room_device(hass, entry, s["group"].uuid)
    entities = device_entities(hass, device.id)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    listed = CircleMemberApi.async_list_chat_rooms
    lacking = {"left": missed}

    async def listing(self, **kwargs):
        rooms, complete = await listed(self, **kwargs)
        assert complete
        if lacking["left"] > 0:
            lacking["left"] -= 1
            rooms = [r for r in rooms if r.uuid != s["group"].uuid]
        return rooms, complete

    monkeypatch.setattr(CircleMemberApi, "async_list_chat_rooms", listing)
    removed = async_capture_events(hass, dr.EVENT_DEVICE_REGISTRY_UPDATED)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await connected(hass, entry)
    await wait_for(lambda: lacking["left"] == 0)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    removals = [e for e in removed if e.data["action"] == "remove"]
    if missed == 1:  # the setup listing lacked it, the session's next one has it
        assert removals == []  # never removed, not even for a moment
        assert room_device(hass, entry, s["group"].uuid).id == device.id
        assert all(registry.async_get(e) is not None for e in entities)
        assert state(hass, GROUP_UNREAD) == "0"
    else:
        assert room_device(hass, entry, s["group"].uuid) is None
        assert [e.data["device_id"] for e in removals] == [device.id]
        assert all(registry.async_get(e) is None for e in entities)
    assert room_device(hass, entry, s["dm"].uuid) is not None


async def test_remove_a_room_device_only_when_stale(
    hass: HomeAssistant, simulator
) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    registry = dr.async_get(hass)
    account = async_get_device_by_identifier(
        hass, device_identifier(entry), entry.entry_id
    )
    dm = room_device(hass, entry, s["dm"].uuid)
    assert not await async_remove_config_entry_device(hass, entry, account)
    assert not await async_remove_config_entry_device(hass, entry, dm)
    stale = registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={room_identifier(entry, "0000-gone")},
        name="Gone",
    )
    assert await async_remove_config_entry_device(hass, entry, stale)


async def test_legacy_room_sensors_keep_entity_id_and_history(
    hass: HomeAssistant, simulator
) -> None:
    """Sensors of earlier versions (account device, "Unread in …") move to the room device."""
    s = simulator.seeded
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id=f"1_{simulator.member_id}",
        data=entry_data(simulator),
    )
    entry.add_to_hass(hass)
    devices = dr.async_get(hass)
    account = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, entry.entry_id)}
    )
    registry = er.async_get(hass)
    legacy = {
        uuid: registry.async_get_or_create(
            "sensor",
            DOMAIN,
            f"1_42_room_{uuid}",
            config_entry=entry,
            device_id=account.id,
            suggested_object_id=f"circle_grace_hopper_unread_in_{slug}",
            original_name=f"Unread in {name}",
            translation_key="room_unread",
        )
        for uuid, slug, name in (
            (s["dm"].uuid, "ada_lovelace", "Ada Lovelace"),
            (s["group"].uuid, "analytical_engines", "Analytical Engines"),
            ("5a0c2b7e-0000-4000-8000-00000000dead", "gone", "Gone"),
        )
    }
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await connected(hass, entry)
    for uuid in (s["dm"].uuid, s["group"].uuid):
        moved = registry.async_get_entity_id("sensor", DOMAIN, f"1_42_room_{uuid}")
        assert moved == legacy[uuid].entity_id  # same entity id: the history continues
        now = registry.async_get(moved)
        assert now.device_id == room_device(hass, entry, uuid).id
        assert now.translation_key == "unread_messages"
        assert now.original_name == "Unread messages"
        assert state(hass, moved) == "0"
        # The attributes automations of earlier versions compared are still there.
        attributes = hass.states.get(moved).attributes
        assert attributes["room_uuid"] == uuid
        assert attributes["room_kind"] in ("direct", "group_chat")
    # A legacy sensor of a room that no longer exists is removed.
    assert (
        registry.async_get(legacy["5a0c2b7e-0000-4000-8000-00000000dead"].entity_id)
        is None
    )


async def test_migrated_chat_sensors_disabled_by_default_are_enabled(
    hass: HomeAssistant, simulator
) -> None:
    """Earlier versions disabled every room sensor by default; now direct and group chats
    are on: their migrated sensors are enabled, a space chat's stays off, a user's choice
    stays."""
    s = simulator.seeded
    space = simulator.community.create_room(
        "space_chat", "Welcome space", [42, s["ada"].id], announce=False
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id=f"1_{simulator.member_id}",
        data=entry_data(simulator),
    )
    entry.add_to_hass(hass)
    registry = er.async_get(hass)
    integration, user = (
        er.RegistryEntryDisabler.INTEGRATION,
        er.RegistryEntryDisabler.USER,
    )
    legacy = {
        uuid: registry.async_get_or_create(
            "sensor",
            DOMAIN,
            f"1_42_room_{uuid}",
            config_entry=entry,
            suggested_object_id=f"unread_in_{slug}",
            disabled_by=by,
        )
        for uuid, slug, by in (
            (s["dm"].uuid, "ada", integration),
            (s["group"].uuid, "engines", user),
            (space.uuid, "space", integration),
        )
    }
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await connected(hass, entry)
    dm = registry.async_get(legacy[s["dm"].uuid].entity_id)
    assert dm.disabled_by is None
    assert state(hass, dm.entity_id) == "0"  # added at once, no reload needed
    assert hass.states.get(dm.entity_id).attributes["room_kind"] == "direct"
    group = registry.async_get(legacy[s["group"].uuid].entity_id)
    assert group.disabled_by is user
    assert registry.async_get(legacy[space.uuid].entity_id).disabled_by is integration


async def test_logbook_lines_follow_the_language(
    hass: HomeAssistant, simulator
) -> None:
    """Logbook descriptions come from the translations (here German), never the text."""
    from custom_components.circle.logbook import async_describe_events

    hass.config.language = "de"
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    described = {}
    async_describe_events(
        hass, lambda _domain, event_type, fn: described.__setitem__(event_type, fn)
    )

    class FakeEvent:
        def __init__(self, event_type, data) -> None:
            self.event_type = event_type
            self.data = data

    line = described["circle_new_message"](
        FakeEvent(
            "circle_new_message",
            {"sender_name": "Ada", "room_name": "Maschinen", "text": "geheim"},
        )
    )
    assert line["message"] == "Neue Nachricht von Ada in Maschinen"
    notification = described["circle_new_notification"](
        FakeEvent("circle_new_notification", {"actor_name": "Al"})
    )
    assert notification["message"] == "Neue Benachrichtigung von Al"
