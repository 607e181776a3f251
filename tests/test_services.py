"""Actions against the simulator: rooms targeted by device or notify entity, never by name."""

from __future__ import annotations

from homeassistant.auth.models import User
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
)
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
import voluptuous as vol

from custom_components.circle.const import CONF_ALLOW_NON_ADMIN, DOMAIN
from custom_components.circle.messaging import (
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_MESSAGE_LINES,
)
from tests.conftest import wait_for
from tests.test_init import CHATS, NOTIFICATIONS, device_of, setup, state
from tests.test_rooms import DM_NOTIFY, GROUP_NOTIFY, GROUP_UNREAD, room_device
from tests.test_sensor import connected

MESSAGES = "sensor.circle_grace_hopper_unread_messages"


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings."""


async def send(hass: HomeAssistant, target: dict, message: str, **extra):
    return await hass.services.async_call(
        DOMAIN,
        "send_message",
        {**target, "message": message, **extra},
        blocking=True,
        return_response=True,
    )


async def test_send_by_notify_entity_returns_the_new_message(
    hass: HomeAssistant, simulator
) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    events = async_capture_events(hass, "circle_new_message")
    result = await send(hass, {"entity_id": DM_NOTIFY}, "On my way!\nSee you")
    sent = s["dm"].messages[-1]
    assert (sent.body, sent.sender_id) == ("On my way!\nSee you", 42)
    assert result["id"] == sent.id and result["room_uuid"] == s["dm"].uuid
    assert result["creation_uuid"] == sent.creation_uuid
    assert result["sent_at"].startswith(sent.sent_at[:19])
    # By the room's device too.
    device = room_device(hass, entry, s["group"].uuid)
    root = simulator.community.post_message(s["group"], s["ada"].id, "Question?")
    await wait_for(lambda: len(events) == 1)
    answer = await hass.services.async_call(
        DOMAIN,
        "reply",
        {"device_id": device.id, "message": "Answer", "message_id": root.id},
        blocking=True,
        return_response=True,
    )
    reply = s["group"].messages[-1]
    assert (reply.body, reply.parent_message_id) == ("Answer", root.id)
    assert answer["id"] == reply.id and answer["parent_message_id"] == root.id
    await wait_for(lambda: state(hass, GROUP_UNREAD) == "0")
    await hass.async_block_till_done()
    assert [e.data["text"] for e in events] == ["Question?"]


async def test_notify_send_message_posts_to_the_room(
    hass: HomeAssistant, simulator
) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": GROUP_NOTIFY, "title": "Door", "message": "Someone rang"},
        blocking=True,
    )
    assert s["group"].messages[-1].body == "Door\nSomeone rang"
    assert s["group"].messages[-1].sender_id == 42


async def test_a_renamed_room_is_still_the_target(
    hass: HomeAssistant, simulator
) -> None:
    """A stranger's room with the old name changes nothing: targets are ids."""
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.community.update_room(s["group"], name="Difference Engines")
    simulator.community.create_room(
        "group_chat", "Analytical Engines", [42, s["alan"].id]
    )
    await wait_for(lambda: len(entry.runtime_data.rooms) == 3)
    await send(hass, {"entity_id": GROUP_NOTIFY}, "still you")
    assert s["group"].messages[-1].body == "still you"


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ("   ", "empty_message"),
        ("x" * (MAX_MESSAGE_CHARS + 1), "message_too_long"),
        ("😀" * (MAX_MESSAGE_BYTES // 4 + 1), "message_too_large"),
        ("a\n" * MAX_MESSAGE_LINES + "a", "message_too_many_lines"),
    ],
    ids=["empty", "chars", "bytes", "lines"],
)
async def test_bounded_text(hass: HomeAssistant, simulator, message, key) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    before = len(s["dm"].messages)
    with pytest.raises(ServiceValidationError) as info:
        await send(hass, {"entity_id": DM_NOTIFY}, message)
    assert info.value.translation_key == key
    assert len(s["dm"].messages) == before


async def test_longest_message_is_sent(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    await send(hass, {"entity_id": DM_NOTIFY}, "x" * MAX_MESSAGE_CHARS)
    assert s["dm"].messages[-1].body == "x" * MAX_MESSAGE_CHARS


async def test_targets_that_are_not_rooms(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    account = room_device(hass, entry, "x")  # None: no such room device
    assert account is None
    cases = [
        ({"entity_id": "sensor.circle_grace_hopper_unread_chats"}, None),
        ({"device_id": "no-such-device"}, None),
        ({"entity_id": [DM_NOTIFY, GROUP_NOTIFY]}, "one_room"),
        ({}, "one_room"),
    ]
    for target, key in cases:
        with pytest.raises(ServiceValidationError) as info:
            await send(hass, target, "x")
        assert info.value.translation_key == (key or "room_not_found")
    # A room the member left: a clear error, never another room.
    device = room_device(hass, entry, s["group"].uuid)
    entry.runtime_data.session.core.state  # noqa: B018 - the rooms in use
    simulator.community.delete_room(s["group"])
    await wait_for(lambda: s["group"].uuid not in entry.runtime_data.data.unread_counts)
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN,
            "send_message",
            {"device_id": device.id, "message": "x"},
            blocking=True,
        )
    assert info.value.translation_key in ("room_gone", "room_not_found")


@pytest.mark.parametrize("message_id", [0, -3, "abc"])
async def test_reply_needs_a_positive_id(
    hass: HomeAssistant, simulator, message_id
) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    with pytest.raises(vol.Invalid):
        await hass.services.async_call(
            DOMAIN,
            "reply",
            {"entity_id": DM_NOTIFY, "message": "x", "message_id": message_id},
            blocking=True,
        )


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
        await send(hass, {"entity_id": DM_NOTIFY}, "x")
    assert info.value.translation_key == key
    assert not isinstance(info.value, ServiceValidationError)


async def test_refused_token_is_an_auth_error(hass: HomeAssistant, simulator) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.add_fault("rest", 401, count=2)
    with pytest.raises(HomeAssistantError) as info:
        await hass.services.async_call(
            DOMAIN, "mark_notifications_read", {}, blocking=True
        )
    assert info.value.translation_key == "auth_failed"


async def test_mark_read_and_get_unread(hass: HomeAssistant, simulator) -> None:
    s = simulator.seeded
    community = simulator.community
    community.post_message(s["dm"], s["ada"].id, "one")
    community.post_message(s["dm"], s["ada"].id, "two")
    community.post_message(s["group"], s["alan"].id, "three")
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    assert state(hass, MESSAGES) == "3"
    unread = await hass.services.async_call(
        DOMAIN, "get_unread", {"messages": 2}, blocking=True, return_response=True
    )
    assert unread["total"] == 2
    first, second = unread["rooms"]
    assert (first["room_uuid"], first["unread"], first["kind"]) == (
        s["dm"].uuid,
        2,
        "direct",
    )
    assert first["device_id"] == room_device(hass, entry, s["dm"].uuid).id
    assert [m["text"] for m in first["messages"]] == ["one", "two"]
    assert first["messages"][0]["sender_id"] == s["ada"].id
    assert second["name"] == "Analytical Engines"
    await hass.services.async_call(
        DOMAIN, "mark_read", {"entity_id": DM_NOTIFY}, blocking=True
    )
    assert state(hass, MESSAGES) == "1" and state(hass, CHATS) == "1"
    assert community.unread_count(s["dm"], 42) == 0
    await hass.services.async_call(DOMAIN, "mark_read", {}, blocking=True)
    assert state(hass, MESSAGES) == "0" and community.unread_rooms(42) == []
    unread = await hass.services.async_call(
        DOMAIN, "get_unread", {}, blocking=True, return_response=True
    )
    assert unread == {"rooms": [], "total": 0}


async def test_mark_one_or_every_notification_read(
    hass: HomeAssistant, simulator
) -> None:
    community = simulator.community
    first = community.notify(42)
    second = community.notify(42)
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    await hass.services.async_call(
        DOMAIN,
        "mark_notifications_read",
        {"config_entry_id": entry.entry_id, "notification_id": first.id},
        blocking=True,
    )
    assert first.read_at is not None and second.read_at is None
    await hass.services.async_call(DOMAIN, "mark_notifications_read", {}, blocking=True)
    assert second.read_at is not None
    assert state(hass, NOTIFICATIONS) == "0"
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            DOMAIN,
            "mark_notifications_read",
            {"notification_id": 999_999},
            blocking=True,
        )


@pytest.mark.parametrize(
    ("domain", "service", "data"),
    [
        (DOMAIN, "send_message", {"entity_id": DM_NOTIFY, "message": "x"}),
        (DOMAIN, "reply", {"entity_id": DM_NOTIFY, "message": "x", "message_id": 1}),
        (DOMAIN, "mark_read", {"entity_id": DM_NOTIFY}),
        (DOMAIN, "mark_notifications_read", {}),
        ("notify", "send_message", {"entity_id": DM_NOTIFY, "message": "x"}),
    ],
)
async def test_only_administrators_act_as_the_member(
    hass: HomeAssistant, simulator, hass_admin_user: User, domain, service, data
) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    user = await hass.auth.async_create_user("Housemate", group_ids=["system-users"])
    root = simulator.community.post_message(s["dm"], s["ada"].id, "hi")
    await hass.async_block_till_done()
    before = len(s["dm"].messages)
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            domain, service, data, blocking=True, context=Context(user_id=user.id)
        )
    assert len(s["dm"].messages) == before
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "get_unread",
            {},
            blocking=True,
            return_response=True,
            context=Context(user_id=user.id),
        )
    if service in ("send_message", "reply") or domain == "notify":
        await hass.services.async_call(
            domain,
            service,
            {**data, "message_id": root.id} if service == "reply" else data,
            blocking=True,
            context=Context(user_id=hass_admin_user.id),
        )
        assert len(s["dm"].messages) == before + 1
    # The option lets every user send.
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_ALLOW_NON_ADMIN: True}
    )
    await hass.async_block_till_done()
    entry = hass.config_entries.async_get_entry(entry.entry_id)
    await connected(hass, entry)
    await hass.services.async_call(
        DOMAIN,
        "send_message",
        {"entity_id": DM_NOTIFY, "message": "from the housemate"},
        blocking=True,
        context=Context(user_id=user.id),
    )
    assert s["dm"].messages[-1].body == "from the housemate"


async def test_rooms_by_area_floor_and_label(hass: HomeAssistant, simulator) -> None:
    """The target selector's areas, floors and labels reach the rooms in them, only those."""
    from homeassistant.helpers import (
        area_registry as ar,
        device_registry as dr,
        entity_registry as er,
        floor_registry as fr,
        label_registry as lr,
    )

    s = simulator.seeded
    community = simulator.community
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    floor = fr.async_get(hass).async_create("Upstairs")
    kitchen = ar.async_get(hass).async_create("Kitchen", floor_id=floor.floor_id)
    empty = ar.async_get(hass).async_create("Attic")
    devices = dr.async_get(hass)
    dm = room_device(hass, entry, s["dm"].uuid)
    devices.async_update_device(dm.id, area_id=kitchen.id)
    # The account's device (badges, no room) in the same area is skipped, not an error.
    account = device_of(hass, entry)
    devices.async_update_device(account.id, area_id=kitchen.id)
    result = await send(hass, {"area_id": kitchen.id}, "by area")
    assert s["dm"].messages[-1].body == "by area"
    assert result["room_uuid"] == s["dm"].uuid
    await send(hass, {"floor_id": floor.floor_id}, "by floor")
    assert s["dm"].messages[-1].body == "by floor"
    # A label on the group's notify entity: mark_read reaches that room alone.
    label = lr.async_get(hass).async_create("Work")
    er.async_get(hass).async_update_entity(GROUP_NOTIFY, labels={label.label_id})
    community.post_message(s["dm"], s["ada"].id, "dm")
    community.post_message(s["group"], s["alan"].id, "group")
    await wait_for(lambda: state(hass, MESSAGES) == "2")
    await hass.services.async_call(
        DOMAIN, "mark_read", {"label_id": label.label_id}, blocking=True
    )
    assert community.unread_count(s["group"], 42) == 0
    assert community.unread_count(s["dm"], 42) == 1
    # An area without a room: a clear error, nothing sent.
    before = len(s["dm"].messages)
    with pytest.raises(ServiceValidationError) as info:
        await send(hass, {"area_id": empty.id}, "nowhere")
    assert info.value.translation_key == "no_room_in_target"
    assert len(s["dm"].messages) == before


async def test_empty_target_and_target_with_account_are_refused(
    hass: HomeAssistant, simulator
) -> None:
    """An empty target never means "every room"; rooms and an account together are refused."""
    s = simulator.seeded
    community = simulator.community
    community.post_message(s["dm"], s["ada"].id, "one")
    community.post_message(s["group"], s["alan"].id, "two")
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    for target in ({"device_id": []}, {"entity_id": "none"}, {"area_id": []}):
        with pytest.raises(ServiceValidationError) as info:
            await hass.services.async_call(DOMAIN, "mark_read", target, blocking=True)
        assert info.value.translation_key == "empty_target"
        with pytest.raises(ServiceValidationError) as info:
            await send(hass, target, "x")
        assert info.value.translation_key == "empty_target"
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN,
            "mark_read",
            {
                "device_id": [room_device(hass, entry, s["dm"].uuid).id],
                "config_entry_id": entry.entry_id,
            },
            blocking=True,
        )
    assert info.value.translation_key == "target_and_account"
    assert community.unread_count(s["dm"], 42) == 1
    assert community.unread_count(s["group"], 42) == 1
    assert not any(r["path"].endswith("mark_all_as_read") for r in simulator.requests)
    # The account alone, no target: every room read.
    await hass.services.async_call(
        DOMAIN, "mark_read", {"config_entry_id": entry.entry_id}, blocking=True
    )
    assert community.unread_rooms(42) == []


async def test_sends_nobody_asks_an_id_for_return_at_once(
    hass: HomeAssistant, simulator
) -> None:
    """With the cable silent, a send without a response neither waits for the echo nor
    reads the room back; one with a response still finds its id."""
    import time

    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.silence()  # the member's own message never comes back on the cable

    def reads() -> int:
        return sum(
            r["method"] == "GET" and r["path"].endswith("/chat_room_messages")
            for r in simulator.requests
        )

    before = reads()
    started = time.monotonic()
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": DM_NOTIFY, "message": "quick"},
        blocking=True,
    )
    assert (
        await hass.services.async_call(
            DOMAIN,
            "send_message",
            {"entity_id": DM_NOTIFY, "message": "quick too"},
            blocking=True,
        )
        is None
    )
    assert time.monotonic() - started < 1.5  # one id wait alone is 3 s
    assert [m.body for m in s["dm"].messages[-2:]] == ["quick", "quick too"]
    assert reads() == before
    # Asked for, the id is found (here by reading the room back).
    result = await send(hass, {"entity_id": DM_NOTIFY}, "with id")
    assert result["id"] == s["dm"].messages[-1].id
    assert reads() == before + 1
