"""The reply-from-phone blueprint in a real Home Assistant, against the simulator."""

from __future__ import annotations

from pathlib import Path
import shutil

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

from custom_components.circle.compat import async_get_device_by_identifier
from custom_components.circle.device import device_identifier
from tests.conftest import wait_for
from tests.test_init import setup
from tests.test_rooms import room_device
from tests.test_sensor import connected

BLUEPRINT = (
    Path(__file__).resolve().parents[1]
    / "blueprints/automation/circle/reply_from_phone.yaml"
)


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings."""


async def start(hass: HomeAssistant, simulator, tmp_path, phones=("phone",), **inputs):
    """The Circle entry, and an automation from the blueprint per fake phone."""
    hass.config.config_dir = str(tmp_path)
    target = Path(hass.config.path("blueprints/automation/circle"))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(BLUEPRINT, target / BLUEPRINT.name)
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    account = async_get_device_by_identifier(
        hass, device_identifier(entry), entry.entry_id
    )
    calls = [async_mock_service(hass, "notify", f"mobile_app_{p}") for p in phones]
    config = {
        "automation": [
            {
                "alias": phone,
                "use_blueprint": {
                    "path": "circle/reply_from_phone.yaml",
                    "input": {
                        "circle_account": account.id,
                        "notify_action": f"notify.mobile_app_{phone}",
                        **inputs,
                    },
                },
            }
            for phone in phones
        ]
    }
    assert await async_setup_component(hass, "automation", config)
    await hass.async_block_till_done()
    return (entry, *calls)


def actions(call) -> dict[str, str]:
    return {a["title"]: a["action"] for a in call.data["data"]["actions"]}


async def test_reply_from_the_phone_reaches_the_room(
    hass: HomeAssistant, simulator, tmp_path
) -> None:
    s = simulator.seeded
    entry, phone = await start(hass, simulator, tmp_path)
    simulator.community.post_message(s["dm"], s["ada"].id, "Dinner at 8?")
    await wait_for(lambda: len(phone) == 1)
    call = phone[0]
    assert call.data["title"] == "Ada Lovelace"
    assert call.data["message"] == "Dinner at 8?"
    buttons = actions(call)
    assert set(buttons) == {"Reply", "Mark read"}
    assert call.data["data"]["actions"][0]["behavior"] == "textInput"
    hass.bus.async_fire(
        "mobile_app_notification_action",
        {"action": buttons["Reply"], "reply_text": "Yes, see you"},
    )
    await wait_for(lambda: s["dm"].messages[-1].body == "Yes, see you")
    sent = s["dm"].messages[-1]
    assert (sent.sender_id, sent.parent_message_id) == (42, None)
    # Group messages are left out (direct messages only, by default).
    simulator.community.post_message(s["group"], s["ada"].id, "group talk")
    simulator.community.post_message(s["dm"], s["ada"].id, "Bring wine?")
    await wait_for(lambda: len(phone) == 2)
    await hass.async_block_till_done()
    assert phone[1].data["message"] == "Bring wine?"
    assert entry.runtime_data.data.unread_counts[s["dm"].uuid] == 1
    hass.bus.async_fire(
        "mobile_app_notification_action", {"action": actions(phone[1])["Mark read"]}
    )
    await wait_for(lambda: simulator.community.unread_count(s["dm"], 42) == 0)


async def test_reply_in_a_thread_stays_in_the_thread(
    hass: HomeAssistant, simulator, tmp_path
) -> None:
    s = simulator.seeded
    entry, phone = await start(
        hass, simulator, tmp_path, direct_only=False, reply_label="Antworten"
    )
    group = room_device(hass, entry, s["group"].uuid)
    # The member asks (no notification for the member's own message); Ada answers in the thread.
    root = simulator.community.post_message(s["group"], 42, "Question")
    simulator.community.post_message(s["group"], s["ada"].id, "In thread", root.id)
    await wait_for(lambda: len(phone) == 1)
    assert phone[0].data["title"] == "Ada Lovelace · Analytical Engines"
    action = actions(phone[0])["Antworten"]
    assert action == f"CIRCLE_REPLY|automation.phone|{group.id}|{root.id}"
    hass.bus.async_fire(
        "mobile_app_notification_action", {"action": action, "reply_text": "Agreed"}
    )
    await wait_for(lambda: s["group"].messages[-1].body == "Agreed")
    assert s["group"].messages[-1].parent_message_id == root.id
    # An action naming no Circle room changes nothing and sends nothing.
    before = len(s["group"].messages)
    hass.bus.async_fire(
        "mobile_app_notification_action",
        {"action": "CIRCLE_REPLY|automation.phone|not-a-device|0", "reply_text": "x"},
    )
    await hass.async_block_till_done()
    assert len(s["group"].messages) == before


async def test_two_phones_one_reply_posts_once(
    hass: HomeAssistant, simulator, tmp_path
) -> None:
    """Two automations of the blueprint (phone and tablet): each answers only its buttons."""
    s = simulator.seeded
    _entry, phone, tablet = await start(
        hass, simulator, tmp_path, phones=("phone", "tablet")
    )
    simulator.community.post_message(s["dm"], s["ada"].id, "Dinner at 8?")
    await wait_for(lambda: len(phone) == 1 and len(tablet) == 1)
    assert actions(phone[0])["Reply"] != actions(tablet[0])["Reply"]
    before = len(s["dm"].messages)
    hass.bus.async_fire(
        "mobile_app_notification_action",
        {"action": actions(tablet[0])["Reply"], "reply_text": "On my way"},
    )
    await wait_for(lambda: s["dm"].messages[-1].body == "On my way")
    await hass.async_block_till_done()
    sent = [
        r
        for r in simulator.requests
        if r["method"] == "POST" and r["path"].endswith("/chat_room_messages")
    ]
    assert len(s["dm"].messages) == before + 1
    assert len(sent) == 1
    # The old format (no automation named) is answered by neither.
    hass.bus.async_fire(
        "mobile_app_notification_action",
        {"action": f"CIRCLE_READ|{actions(phone[0])['Mark read'].split('|')[2]}"},
    )
    await hass.async_block_till_done()
    assert not any(r["path"].endswith("mark_all_as_read") for r in simulator.requests)
