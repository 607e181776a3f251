"""What the README and the blueprint promise works in Home Assistant."""

from __future__ import annotations

from pathlib import Path
import re
import shutil

from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service
import yaml

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINT = ROOT / "blueprints" / "automation" / "circle" / "notify_new_message.yaml"


def readme_yaml_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    assert first_block is not None
    commands = [
        line.split("#")[0].strip()
        for line in first_block.group(1).splitlines()
        if line.strip()
    ]
    assert commands == ["scripts/develop", "scripts/test"]
    for command in commands:
        assert (ROOT / command).stat().st_mode & 0o111
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


async def test_readme_automations_are_valid_and_fire(hass: HomeAssistant) -> None:
    blocks = [yaml.safe_load(b) for b in readme_yaml_blocks() if "automation:" in b]
    assert blocks, "the README shows at least one automation"
    calls = async_mock_service(hass, "notify", "notify")
    replies = async_mock_service(hass, "circle", "reply")
    automations = [a for config in blocks for a in config["automation"]]
    assert await async_setup_component(hass, "automation", {"automation": automations})
    await hass.async_block_till_done()
    assert len(hass.states.async_entity_ids("automation")) == len(automations) >= 2
    hass.bus.async_fire(
        "circle_new_message",
        {
            "room_kind": "direct",
            "sender_name": "Ada",
            "text": "Hi",
            "room_name": "Ada",
            "config_entry_id": "entry-1",
            "room_uuid": "room-1",
            "room_device_id": "device-room-1",
            "message_id": 7,
            "backfilled": False,
        },
    )
    hass.bus.async_fire(
        "circle_new_message",
        {"room_kind": "group_chat", "sender_name": "Al", "text": "x"},
    )
    await hass.async_block_till_done()
    assert [c.data["message"] for c in calls] == ["Hi"]
    assert calls[0].data["title"] == "Circle: Ada"
    # A templated target stays a string on newer releases, a list on older ones.
    assert [
        (cv.ensure_list(c.data["device_id"]), c.data["message_id"]) for c in replies
    ] == [(["device-room-1"], 7)]


ADA = ("Ada", 7, "DM", "dev-dm", "direct")
AL = ("Al", 8, "Group", "dev-group", "group_chat")
# A stranger who took Ada's name, in a room of the DM's name: names are not identity.
FAKE_ADA = ("Ada", 666, "DM", "dev-other", "group_chat")


@pytest.mark.parametrize(
    ("inputs", "events", "expected"),
    [
        ({}, [ADA, AL], ["Ada", "Al · Group"]),
        ({"rooms": ["dev-group"]}, [ADA, AL, FAKE_ADA], ["Al · Group"]),
        ({"senders": ["7"]}, [ADA, AL, FAKE_ADA], ["Ada"]),
        ({"senders": [" 8 "]}, [ADA, AL], ["Al · Group"]),
        ({"direct_only": True}, [ADA, AL], ["Ada"]),
        ({"skip_backfilled": True}, [(*ADA, True), AL], ["Al · Group"]),
        ({}, [(*ADA, True)], ["Ada"]),
    ],
)
async def test_blueprint_loads_and_filters(
    hass: HomeAssistant, tmp_path, inputs, events, expected
) -> None:
    hass.config.config_dir = str(tmp_path)
    target = Path(hass.config.path("blueprints/automation/circle"))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(BLUEPRINT, target / BLUEPRINT.name)
    calls = async_mock_service(hass, "notify", "phone")
    config = {
        "automation": {
            "use_blueprint": {
                "path": "circle/notify_new_message.yaml",
                "input": {
                    "circle_account": "device-1",
                    "notify_action": "notify.phone",
                    **inputs,
                },
            }
        }
    }
    assert await async_setup_component(hass, "automation", config)
    await hass.async_block_till_done()
    assert hass.states.async_entity_ids("automation")
    for sender, sender_id, room, room_device, kind, *backfilled in events:
        hass.bus.async_fire(
            "circle_new_message",
            {
                "device_id": "device-1",
                "sender_name": sender,
                "sender_id": sender_id,
                "room_name": room,
                "room_device_id": room_device,
                "room_kind": kind,
                "text": "t",
                "backfilled": bool(backfilled and backfilled[0]),
            },
        )
    hass.bus.async_fire(
        "circle_new_message",
        {"device_id": "other", "sender_name": "Ada", "room_name": "DM"},
    )
    await hass.async_block_till_done()
    assert [c.data["title"] for c in calls] == expected
