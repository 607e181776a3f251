"""End to end: the simulator and a real Home Assistant as processes, talking over loopback."""

from __future__ import annotations

import asyncio

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
        sent = await stack.sim_control("message", room_uuid=dm, text="Are you there?")

        async def replied() -> bool:
            async with stack.session.get(stack.sim["url"] + "/_sim/state") as resp:
                rooms = (await resp.json())["rooms"]
            messages = next(r for r in rooms if r["uuid"] == dm)["messages"]
            return any(
                m["sender_id"] == stack.sim["member_id"]
                and m["parent_message_id"] == sent["id"]
                for m in messages
            )

        async with asyncio.timeout(5):
            while not await replied():
                await asyncio.sleep(0.05)
        async with await stack.websocket() as ws:
            await ws.send_json({"id": 1, "type": "lovelace/config"})
            dashboard = (await ws.receive_json())["result"]
        buttons = [c for c in dashboard["views"][0]["cards"] if c["type"] == "button"]
        assert {b["tap_action"]["perform_action"] for b in buttons} == {
            "circle.mark_read",
            "circle.mark_notifications_read",
        }
        assert all(
            b["tap_action"]["data"]["config_entry_id"] == stack.entry_id
            for b in buttons
        )
    finally:
        await stack.stop()
