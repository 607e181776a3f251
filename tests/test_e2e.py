"""End to end: the simulator and a real Home Assistant as processes, talking over loopback."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.e2e import demo
from tests.e2e.stack import LiveStack

NOTIFICATIONS = "sensor.circle_grace_hopper_unread_notifications"
CHATS = "sensor.circle_grace_hopper_unread_chats"


async def test_message_and_notification_reach_home_assistant(
    socket_enabled, tmp_path
) -> None:
    stack = LiveStack(tmp_path / "config")
    await stack.start()
    try:
        assert (await stack.state(NOTIFICATIONS))["state"] == "0"
        async with await stack.websocket() as ws:
            await ws.send_json(
                {
                    "id": 1,
                    "type": "subscribe_events",
                    "event_type": "circle_new_message",
                }
            )
            assert (await ws.receive_json())["success"]
            loop = asyncio.get_running_loop()
            started = loop.time()
            sent = await stack.sim_control(
                "message", room_uuid=await _dm_uuid(stack), text="Hello from e2e"
            )
            await stack.sim_control("notification", actor_name="Alan Turing")
            event = await asyncio.wait_for(ws.receive_json(), 2)
            assert event["event"]["event_type"] == "circle_new_message"
            data = event["event"]["data"]
            assert data["message_id"] == sent["id"]
            assert data["text"] == "Hello from e2e"
            assert data["sender_name"] == "Ada Lovelace"
            assert data["config_entry_id"] == stack.entry_id
            await stack.wait_state(
                NOTIFICATIONS, "1", timeout=2 - (loop.time() - started)
            )
            await stack.wait_state(CHATS, "1", timeout=2 - (loop.time() - started))
            assert (await stack.state(CHATS))["attributes"]["rooms"] == ["Ada Lovelace"]
    finally:
        await stack.stop()
    assert stack.hass_proc is not None and stack.hass_proc.returncode is not None
    assert stack.sim_proc is not None and stack.sim_proc.returncode is not None


async def _dm_uuid(stack: LiveStack) -> str:
    async with stack.session.get(stack.sim["url"] + "/_sim/state") as resp:
        rooms = (await resp.json())["rooms"]
    return next(
        r["uuid"]
        for r in rooms
        if r["kind"] == "direct" and r["name"] == "Ada Lovelace"
    )


async def test_demo_replies_from_home_assistant_and_has_a_dashboard(
    socket_enabled, tmp_path
) -> None:
    stack = LiveStack(tmp_path / "config", demo=True)
    await stack.start()
    try:
        await stack.wait_state(
            "automation.circle_reply_to_direct_messages", "on", timeout=10
        )
        dm = await _dm_uuid(stack)
        async with await stack.websocket() as drawer:
            await drawer.send_json(
                {"id": 1, "type": "persistent_notification/subscribe"}
            )
            assert (await drawer.receive_json())["success"]
            sent = await stack.sim_control(
                "message", room_uuid=dm, text="Are you there?"
            )
            async with asyncio.timeout(5):
                while not await _replied_in(stack, dm, sent["id"]):
                    await asyncio.sleep(0.05)
                # The blueprint's automation puts the message in the notification drawer.
                while ("Ada Lovelace", "Are you there?") not in await _drawer(drawer):
                    pass
        await _assert_rooms_and_blueprint(stack, dm)
        await _assert_dashboard(stack)
    finally:
        await stack.stop()


async def _replied_in(stack: LiveStack, room_uuid: str, parent_id: int) -> bool:
    """Whether the member answered in the thread of `parent_id`."""
    async with stack.session.get(stack.sim["url"] + "/_sim/state") as resp:
        rooms = (await resp.json())["rooms"]
    messages = next(r for r in rooms if r["uuid"] == room_uuid)["messages"]
    return any(
        m["sender_id"] == stack.sim["member_id"] and m["parent_message_id"] == parent_id
        for m in messages
    )


async def _drawer(ws: aiohttp.ClientWebSocketResponse) -> set[tuple[str, str]]:
    event = (await ws.receive_json())["event"]
    return {(n.get("title"), n["message"]) for n in event["notifications"].values()}


async def _assert_rooms_and_blueprint(stack: LiveStack, dm: str) -> None:
    """A device and a notify entity per room; the phone blueprint's Reply answers in the room."""
    account = await demo.account_device_id(stack)
    rooms = {
        d["name"]: d["id"]
        for d in await demo.device_list(stack)
        if d["via_device_id"] == account
    }
    extra = {name for _, name, _ in demo.EXTRA_ROOMS}
    assert {"Ada Lovelace", "Analytical Engines"} | extra <= set(rooms)
    for name in rooms:
        notify = await stack.state(f"notify.{name.lower().replace(' ', '_')}")
        assert notify is not None and notify["attributes"]["friendly_name"] == name
    async with stack.session.get(
        f"{stack.url}/api/config/automation/config/{demo.BLUEPRINT_AUTOMATION_ID}",
        headers=stack.headers,
    ) as resp:
        blueprint = (await resp.json())["use_blueprint"]
    assert blueprint == {
        "path": demo.BLUEPRINT_PATH,
        "input": {"circle_account": account, "notify_action": demo.DEMO_PHONE},
    }
    automation = "automation.circle_direct_messages_to_the_notification_drawer"
    assert (await stack.state(automation))["attributes"]["id"] == (
        demo.BLUEPRINT_AUTOMATION_ID
    )
    before = await _member_messages(stack, dm)
    async with stack.session.post(
        f"{stack.url}/api/events/mobile_app_notification_action",
        json={
            # The blueprint's buttons name their automation (two phones, one reply).
            "action": f"CIRCLE_REPLY|{automation}|{rooms['Ada Lovelace']}|0",
            "reply_text": "Typed on the phone",
        },
        headers=stack.headers,
    ) as resp:
        resp.raise_for_status()
    async with asyncio.timeout(5):
        while not await _member_messages(stack, dm) - before:
            await asyncio.sleep(0.05)


async def _member_messages(stack: LiveStack, room_uuid: str) -> set[int]:
    """The member's messages outside threads (the demo's auto-replies are in threads)."""
    async with stack.session.get(stack.sim["url"] + "/_sim/state") as resp:
        rooms = (await resp.json())["rooms"]
    messages = next(r for r in rooms if r["uuid"] == room_uuid)["messages"]
    return {
        m["id"]
        for m in messages
        if m["sender_id"] == stack.sim["member_id"] and m["parent_message_id"] is None
    }


async def _assert_dashboard(stack: LiveStack) -> None:
    """The README's inbox card word for word, then the account's mark-read button."""
    async with await stack.websocket() as ws:
        await ws.send_json({"id": 1, "type": "lovelace/config"})
        dashboard = (await ws.receive_json())["result"]
    cards = dashboard["views"][0]["cards"]
    assert cards[0] == demo.readme_inbox_card()
    assert cards[0]["cards"][0]["type"] == "markdown"
    assert cards[0]["cards"][1]["tap_action"]["perform_action"] == "circle.mark_read"
    button = next(c for c in cards if c["type"] == "button")
    assert button["tap_action"]["perform_action"] == "circle.mark_notifications_read"
    assert button["tap_action"]["data"]["config_entry_id"] == stack.entry_id
    # The card's template renders the demo's unread rooms (names, counts; no message text).
    async with stack.session.post(
        stack.url + "/api/template",
        json={"template": cards[0]["cards"][0]["content"]},
        headers=stack.headers,
    ) as resp:
        rendered = await resp.text()
    assert "**COBOL committee** · " in rendered
    assert "Draft 2 of the spec" not in rendered
