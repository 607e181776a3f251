"""What `scripts/develop` adds to the live demo once the Circle entry is set up.

More chat rooms (so the inbox has several), the README's reply automation, an automation from the
shipped "reply from the phone" blueprint whose "phone" is Home Assistant's own notification
drawer, and the README's chat inbox as the default dashboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from .stack import LiveStack

README = Path(__file__).resolve().parents[2] / "README.md"

# The README's "reply from Home Assistant" automation.
REPLY_AUTOMATION: dict[str, Any] = {
    "id": "circle_auto_reply",
    "alias": "Circle: reply to direct messages",
    "triggers": [
        {
            "trigger": "event",
            "event_type": "circle_new_message",
            "event_data": {"room_kind": "direct"},
        }
    ],
    "conditions": [
        {
            "condition": "template",
            "value_template": "{{ not trigger.event.data.backfilled }}",
        }
    ],
    "actions": [
        {
            "action": "circle.reply",
            "target": {"device_id": "{{ trigger.event.data.room_device_id }}"},
            "data": {
                "message_id": "{{ trigger.event.data.message_id }}",
                "message": "Thanks {{ trigger.event.data.sender_name }}, Home Assistant got it.",
            },
        }
    ],
    "mode": "queued",
}

BLUEPRINT_AUTOMATION_ID = "circle_phone"
BLUEPRINT_PATH = "circle/reply_from_phone.yaml"
# The legacy notify action that posts to Home Assistant's notification drawer; it takes the
# mobile app's `data` (actions, tag) and ignores it, so the blueprint runs unchanged.
DEMO_PHONE = "notify.persistent_notification"

INBOX_SECTION = "### A chat inbox on a dashboard"


def readme_inbox_card(readme: Path = README) -> dict[str, Any]:
    """The README's chat inbox card, read from the README itself so the two never differ."""
    section = readme.read_text(encoding="utf-8").split(INBOX_SECTION, 1)[1]
    block = section.split("```yaml\n", 1)[1].split("\n```", 1)[0]
    card = yaml.safe_load(block)
    if not isinstance(card, dict):
        raise TypeError(f"the README's {INBOX_SECTION!r} block is not a card")
    return card


# Rooms the demo adds next to the simulator's seeded ones, each with a first message or two.
EXTRA_ROOMS = [
    ("group_chat", "COBOL committee", ["Ada Lovelace", "Alan Turing"]),
    ("direct", "Alan Turing", ["Alan Turing"]),
    ("group_chat", "Compiler club", ["Alan Turing"]),
]
FIRST_MESSAGES = {
    "COBOL committee": ["Draft 2 of the spec is in.", "Can we meet on Thursday?"],
    "Alan Turing": ["Lunch tomorrow?"],
    "Compiler club": ["The A-0 notes are up."],
}


async def install(stack: LiveStack) -> None:
    """Rooms, automations and the dashboard, through the simulator's and Home Assistant's APIs."""
    await _add_rooms(stack)
    await _save_automation(stack, REPLY_AUTOMATION["id"], REPLY_AUTOMATION)
    await _save_automation(
        stack,
        BLUEPRINT_AUTOMATION_ID,
        {
            "alias": "Circle: direct messages to the notification drawer",
            "description": "The shipped reply_from_phone blueprint, with Home Assistant's"
            " notification drawer as the phone.",
            "use_blueprint": {
                "path": BLUEPRINT_PATH,
                "input": {
                    "circle_account": await account_device_id(stack),
                    "notify_action": DEMO_PHONE,
                },
            },
        },
    )
    await _save_dashboard(stack)


async def _add_rooms(stack: LiveStack) -> None:
    async with stack.session.get(stack.sim["url"] + "/_sim/state") as resp:
        members = {m["name"]: m["id"] for m in (await resp.json())["members"]}
    for kind, name, others in EXTRA_ROOMS:
        room = await stack.sim_control(
            "create_room",
            kind=kind,
            name=name,
            member_ids=[members[o] for o in others],
        )
        for text in FIRST_MESSAGES[name]:
            await stack.sim_control(
                "message",
                room_uuid=room["uuid"],
                sender_id=members[others[0]],
                text=text,
            )


async def _save_automation(
    stack: LiveStack, automation_id: str, config: dict[str, Any]
) -> None:
    async with stack.session.post(
        f"{stack.url}/api/config/automation/config/{automation_id}",
        json=config,
        headers=stack.headers,
    ) as resp:
        resp.raise_for_status()


async def account_device_id(stack: LiveStack) -> str:
    """The Circle account's device (the one the room devices hang from)."""
    devices = await device_list(stack)
    return next(
        d["id"]
        for d in devices
        if stack.entry_id in d["config_entries"] and d["via_device_id"] is None
    )


async def device_list(stack: LiveStack) -> list[dict[str, Any]]:
    async with await stack.websocket() as ws:
        await ws.send_json({"id": 1, "type": "config/device_registry/list"})
        return list((await ws.receive_json())["result"])


def dashboard(entry_id: str, prefix: str = "circle_grace_hopper") -> dict[str, Any]:
    """The inbox first, then the account's badges and its two mark-read buttons."""
    buttons = [
        ("Mark notifications read", "mdi:bell-check", "circle.mark_notifications_read"),
    ]
    return {
        "title": "Circle",
        "views": [
            {
                "title": "Circle",
                "path": "circle",
                "cards": [
                    readme_inbox_card(),
                    {
                        "type": "entities",
                        "title": "Circle account",
                        "entities": [
                            {"entity": entity, "name": name}
                            for entity, name in (
                                (
                                    f"sensor.{prefix}_unread_notifications",
                                    "Notifications",
                                ),
                                (f"sensor.{prefix}_unread_chats", "Unread chats"),
                                (f"sensor.{prefix}_unread_messages", "Unread messages"),
                                (f"event.{prefix}_chat_message", "Last chat message"),
                                (f"binary_sensor.{prefix}_connection", "Connection"),
                            )
                        ],
                    },
                    *(
                        {
                            "type": "button",
                            "name": name,
                            "icon": icon,
                            "tap_action": {
                                "action": "perform-action",
                                "perform_action": action,
                                "data": {"config_entry_id": entry_id},
                            },
                        }
                        for name, icon, action in buttons
                    ),
                ],
            }
        ],
    }


async def _save_dashboard(stack: LiveStack) -> None:
    async with await stack.websocket() as ws:
        await ws.send_json(
            {
                "id": 1,
                "type": "lovelace/config/save",
                "config": dashboard(stack.entry_id),
            }
        )
        result = await ws.receive_json()
    if not result.get("success"):
        raise RuntimeError(f"could not save the demo dashboard: {result}")
