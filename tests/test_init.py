"""The integration through Home Assistant's machinery, against the simulator over loopback."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
import functools

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.circle.client import CircleAuth
from custom_components.circle.const import DOMAIN
from custom_components.circle.coordinator import DELIVERY_CONFIG
from custom_components.circle.device import device_identifier
from tests.conftest import entry_data, wait_for

NOTIFICATIONS = "sensor.circle_grace_hopper_unread_notifications"
CHATS = "sensor.circle_grace_hopper_unread_chats"
CONNECTION = "binary_sensor.circle_grace_hopper_connection"
CHAT_EVENT = "event.circle_grace_hopper_chat_message"
NOTIFICATION_EVENT = "event.circle_grace_hopper_notification"


async def setup(
    hass: HomeAssistant, simulator, options=None, **data
) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id=f"1_{simulator.member_id}",
        data=entry_data(simulator, **data),
        options=options or {},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def connected(hass, entry) -> None:
    coordinator = entry.runtime_data
    await wait_for(
        lambda: coordinator.cable is not None
        and coordinator.connection.state == "connected"
        and all(s.state == "confirmed" for s in coordinator.cable.subscriptions)
        # ... and the resync and backfill that follow are done.
        and coordinator.session.core.phase == "live"
        and coordinator.synced
    )
    await hass.async_block_till_done()


def device_of(hass, entry) -> dr.DeviceEntry:
    """The account's device (looked up as current Home Assistant wants it)."""
    (device,) = [
        d
        for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        if d.identifiers == {device_identifier(entry)}
    ]
    return device


def stored_tokens(entry) -> dict:
    """The tokens in the entry's runtime store."""
    return entry.runtime_data.runtime.data["tokens"]


def state(hass, entity_id) -> str:
    return hass.states.get(entity_id).state


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings for every test here."""


async def test_setup_shows_counts_and_unloads_cleanly(hass, simulator) -> None:
    s = simulator.seeded
    simulator.community.post_message(s["dm"], s["ada"].id, "before setup")
    simulator.community.notify(42)
    entry = await setup(hass, simulator)
    assert entry.state is ConfigEntryState.LOADED
    await connected(hass, entry)
    assert state(hass, NOTIFICATIONS) == "1"
    assert state(hass, CHATS) == "1"
    assert hass.states.get(CHATS).attributes["rooms"] == ["Ada Lovelace"]
    assert state(hass, CONNECTION) == STATE_ON
    device = device_of(hass, entry)
    assert device.name == "Circle Grace Hopper"
    assert device.identifiers == {(DOMAIN, entry.unique_id)}
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    # Tokens were persisted into the runtime store, not the entry.
    assert stored_tokens(entry)["access_token"] in simulator.access_tokens
    assert "tokens" not in entry.data
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    await wait_for(lambda: not simulator.connections)


async def test_push_updates_reach_sensors_and_events_fire_once(hass, simulator) -> None:
    s = simulator.seeded
    entry = await setup(
        hass, simulator, options={"followed_rooms": [str(s["group"].id)]}
    )
    await connected(hass, entry)
    messages = async_capture_events(hass, "circle_new_message")
    notifications = async_capture_events(hass, "circle_new_notification")
    community = simulator.community
    community.notify(42, actor_name="Alan Turing")
    await wait_for(lambda: state(hass, NOTIFICATIONS) == "1")
    # The group message arrives on ChatRoomChannel and Chats::RoomChannel: one event.
    community.post_message(s["group"], s["ada"].id, "hello group")
    await wait_for(lambda: state(hass, CHATS) == "1")
    await wait_for(lambda: len(messages) == 1)
    await asyncio.sleep(0.2)
    await hass.async_block_till_done()
    assert len(messages) == 1
    event = messages[0].data
    assert event["config_entry_id"] == entry.entry_id
    assert event["device_id"] == device_of(hass, entry).id
    assert event["room_name"] == "Analytical Engines"
    assert event["room_kind"] == "group_chat"
    assert event["sender_name"] == "Ada Lovelace"
    assert event["text"] == "hello group"
    assert event["room_uuid"] == s["group"].uuid
    assert (
        len(notifications) == 1 and notifications[0].data["actor_name"] == "Alan Turing"
    )
    chat_state = hass.states.get(CHAT_EVENT)
    assert chat_state.attributes["event_type"] == "new_message"
    assert chat_state.attributes["sender_name"] == "Ada Lovelace"
    assert (
        hass.states.get(NOTIFICATION_EVENT).attributes["event_type"]
        == "new_notification"
    )
    # Reading the room elsewhere clears it; resetting clears the badge.
    community.mark_room_read(s["group"], 42)
    community.reset_notifications(42)
    await wait_for(
        lambda: state(hass, CHATS) == "0" and state(hass, NOTIFICATIONS) == "0"
    )
    # Own messages neither count nor fire by default; a reply does not make a room unread.
    community.post_message(s["dm"], 42, "mine")
    root = community.post_message(s["group"], s["alan"].id, "root")
    community.post_message(
        s["group"], s["ada"].id, "a reply", parent_message_id=root.id
    )
    await wait_for(lambda: len(messages) == 3)
    assert [m.data["text"] for m in messages[1:]] == ["root", "a reply"]
    assert state(hass, CHATS) == "1"
    community.edit_message(s["group"], root, "root, edited")
    community.delete_room(s["group"])
    await wait_for(lambda: state(hass, CHATS) == "0")
    assert hass.states.get(CHAT_EVENT).attributes["event_type"] == "message_updated"


async def test_options_text_off_and_own_messages_on(hass, simulator) -> None:
    s = simulator.seeded
    entry = await setup(
        hass, simulator, options={"include_text": False, "ignore_own_messages": False}
    )
    await connected(hass, entry)
    messages = async_capture_events(hass, "circle_new_message")
    simulator.community.post_message(s["dm"], 42, "mine")
    await wait_for(lambda: len(messages) == 1)
    assert "text" not in messages[0].data
    assert messages[0].data["own"] is True


async def test_new_room_and_rename(hass, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    room = simulator.community.create_room("direct", "Alan Turing", [42, s["alan"].id])
    simulator.community.post_message(room, s["alan"].id, "hi")
    await wait_for(
        lambda: hass.states.get(CHATS).attributes["rooms"] == ["Alan Turing"]
    )
    simulator.community.update_room(room, name="Alan T.")
    await wait_for(lambda: hass.states.get(CHATS).attributes["rooms"] == ["Alan T."])


async def test_reconnect_resyncs_what_was_missed(hass, simulator) -> None:
    s = simulator.seeded
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.silence()
    # While the socket is half-open, things change that the cable never tells us.
    simulator.community.notify(42)
    simulator.community.notify(42)
    simulator.community.post_message(s["dm"], s["ada"].id, "missed")
    await wait_for(
        lambda: state(hass, NOTIFICATIONS) == "2" and state(hass, CHATS) == "1",
    )
    assert entry.runtime_data.cable.reconnects >= 1


async def test_token_refresh_keeps_the_cable_and_the_entry(
    hass, simulator, monkeypatch
) -> None:
    simulator.config.access_ttl = 1.0
    monkeypatch.setattr(
        "custom_components.circle.client.auth.DEFAULT_REFRESH_MARGIN",
        timedelta(seconds=0.5),
    )
    monkeypatch.setattr(
        "custom_components.circle.wiring.CircleAuth",
        functools.partial(CircleAuth, min_refresh_interval=0.1),
    )
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    coordinator = entry.runtime_data
    data = dict(entry.data)
    updates = []
    monkeypatch.setattr(
        hass.config_entries,
        "async_update_entry",
        lambda *args, **kwargs: updates.append(kwargs),
    )
    seen = {stored_tokens(entry)["access_token"]}
    for _ in range(3):  # several renewals: every one stored, none in the entry
        await wait_for(lambda: stored_tokens(entry)["access_token"] not in seen)
        seen.add(stored_tokens(entry)["access_token"])
    assert updates == []
    assert dict(entry.data) == data
    assert entry.runtime_data is coordinator  # not reloaded
    assert coordinator.cable.reconnects == 0


async def test_stored_token_is_reused_after_restart(hass, simulator) -> None:
    tokens = simulator.issue_tokens(42)
    entry = await setup(hass, simulator, tokens=tokens)
    await connected(hass, entry)
    assert not any(r["path"].endswith("auth_token") for r in simulator.requests)


@pytest.fixture
def short_grace(monkeypatch) -> timedelta:
    """A grace period of 0.5 s, waited for in real time (firing HA's clock forward would
    also fire the sockets' own timers)."""
    grace = timedelta(seconds=0.5)
    monkeypatch.setattr(
        "custom_components.circle.coordinator.DELIVERY_CONFIG",
        replace(DELIVERY_CONFIG, grace=grace.total_seconds()),
    )
    return grace


async def test_availability_grace_period(hass, simulator, short_grace) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.config.allowed_origins = {"https://elsewhere.example"}
    simulator.drop_connections()
    await wait_for(lambda: state(hass, CONNECTION) == STATE_OFF)
    assert state(hass, NOTIFICATIONS) == "0"  # still shown during the grace period
    issues = ir.async_get(hass)
    await wait_for(
        lambda: issues.async_get_issue(DOMAIN, f"origin_rejected_{entry.entry_id}")
    )
    await wait_for(lambda: state(hass, NOTIFICATIONS) == STATE_UNAVAILABLE)
    assert state(hass, CONNECTION) == STATE_OFF
    simulator.config.allowed_origins = {simulator.origin}
    await wait_for(lambda: state(hass, NOTIFICATIONS) == "0")
    assert issues.async_get_issue(DOMAIN, f"origin_rejected_{entry.entry_id}") is None


async def test_short_drop_keeps_entities_available(
    hass, simulator, short_grace
) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.drop_connections()
    await wait_for(lambda: entry.runtime_data.cable.reconnects >= 1)
    await connected(hass, entry)
    await asyncio.sleep(
        0.7
    )  # past the grace period: the timer was cancelled on reconnect
    assert state(hass, NOTIFICATIONS) == "0"


async def test_log_once_when_lost_and_once_when_back(
    hass, simulator, caplog, short_grace
) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.config.allowed_origins = {"https://elsewhere.example"}
    simulator.drop_connections()
    await wait_for(lambda: state(hass, NOTIFICATIONS) == STATE_UNAVAILABLE)
    await asyncio.sleep(1.0)  # several more failed attempts, no more lines
    simulator.config.allowed_origins = {simulator.origin}
    await wait_for(lambda: state(hass, NOTIFICATIONS) == "0")
    assert caplog.text.count("Connection to Circle lost") == 1
    assert caplog.text.count("Connection to Circle restored") == 1


async def test_auth_failure_starts_reauth(hass, simulator) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.rotate_app_token()
    simulator.revoke_tokens("access")
    simulator.revoke_tokens("refresh")
    simulator.drop_connections()
    await wait_for(lambda: hass.config_entries.flow.async_progress_by_handler(DOMAIN))
    flow = hass.config_entries.flow.async_progress_by_handler(DOMAIN)[0]
    assert flow["context"]["source"] == "reauth"
    await hass.async_block_till_done()
    assert state(hass, NOTIFICATIONS) == STATE_UNAVAILABLE


async def test_not_eligible_mid_session_creates_repair_issue(hass, simulator) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    simulator.config.eligible = False
    simulator.revoke_tokens("access")
    simulator.drop_connections()
    issues = ir.async_get(hass)
    await wait_for(
        lambda: issues.async_get_issue(DOMAIN, f"not_eligible_{entry.entry_id}")
    )


async def test_rejected_subscription_creates_repair_issue(hass, simulator) -> None:
    simulator.config.subscriptions = "reject"
    entry = await setup(hass, simulator)
    issues = ir.async_get(hass)
    issue = await wait_for(
        lambda: issues.async_get_issue(
            DOMAIN, f"subscription_rejected_{entry.entry_id}"
        )
    )
    assert "NotificationChannel" in issue.translation_placeholders["channel"]
    simulator.config.subscriptions = "normal"
    simulator.drop_connections()
    await wait_for(
        lambda: issues.async_get_issue(
            DOMAIN, f"subscription_rejected_{entry.entry_id}"
        )
        is None
    )


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("app_token", ConfigEntryState.SETUP_ERROR),
        ("not_eligible", ConfigEntryState.SETUP_ERROR),
        ("member", ConfigEntryState.SETUP_ERROR),
        ("down", ConfigEntryState.SETUP_RETRY),
        ("rest_5xx", ConfigEntryState.SETUP_RETRY),
        ("rest_401", ConfigEntryState.SETUP_ERROR),
        ("rate_limited", ConfigEntryState.SETUP_RETRY),
    ],
)
async def test_setup_errors(hass, simulator, fault, expected) -> None:
    data = {}
    if fault == "app_token":
        data["app_token"] = "wrong"
    elif fault == "not_eligible":
        simulator.config.eligible = False
    elif fault == "member":
        data.update(member="999", member_id=999)
    elif fault == "down":
        data["community_url"] = "http://127.0.0.1:9"
    elif fault == "rest_5xx":
        simulator.add_fault("rest", 503, count=2)
    elif fault == "rest_401":
        # The member call succeeds, the resync finds the token refused for good.
        simulator.add_fault("rest", 401, count=0)
        entry = await setup(hass, simulator)
        await connected(hass, entry)
        simulator.add_fault("rest", 401, count=1000)
        simulator.rotate_app_token()
        simulator.revoke_tokens("refresh")
        simulator.drop_connections()  # the read-back after the reconnect is refused
        await wait_for(
            lambda: hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        )
        assert entry.runtime_data.status.auth_failed
        assert not entry.runtime_data.available
        return
    elif fault == "rate_limited":
        simulator.add_fault("rest", 429, retry_after="30", count=1)
    entry = await setup(hass, simulator, **data)
    assert entry.state is expected
    if fault == "app_token":
        assert hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    if fault == "not_eligible":
        assert ir.async_get(hass).async_get_issue(
            DOMAIN, f"not_eligible_{entry.entry_id}"
        )


async def test_update_entity_asks_the_core_and_a_failing_read_keeps_values(
    hass, simulator
) -> None:
    """`homeassistant.update_entity` goes through the core: no REST read around it."""
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    coordinator = entry.runtime_data
    simulator.add_fault("rest", 429, retry_after="30")
    requests = len(simulator.requests)
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert state(hass, NOTIFICATIONS) != STATE_UNAVAILABLE
    assert len(simulator.requests) == requests  # the read comes later, spaced
    assert coordinator.session.core.planner.verify_at is not None


async def test_options_change_reloads_but_token_change_does_not(
    hass, simulator
) -> None:
    """One reload path: the options flow reloads; nothing else listens to entry updates."""
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    coordinator = entry.runtime_data
    assert not entry.update_listeners
    hass.config_entries.async_update_entry(entry, title="Renamed")
    await hass.async_block_till_done()
    assert entry.runtime_data is coordinator
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"include_text": False, "ignore_own_messages": True, "backfill_hours": 24},
    )
    await hass.async_block_till_done()
    assert entry.options["include_text"] is False
    assert entry.runtime_data is not coordinator
    assert entry.runtime_data.options["include_text"] is False
    await connected(hass, entry)
    # The same options again: no reload.
    coordinator = entry.runtime_data
    result = await hass.config_entries.options.async_init(entry.entry_id)
    await hass.config_entries.options.async_configure(
        result["flow_id"], dict(entry.options)
    )
    await hass.async_block_till_done()
    assert entry.runtime_data is coordinator


async def test_home_assistant_stop_closes_the_cable(hass, simulator) -> None:
    """No stop listener of our own: the entry's background task ends with Home Assistant."""
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    await hass.async_stop()
    await wait_for(lambda: not simulator.connections)


async def test_diagnostics_are_redacted(hass, simulator, hass_client) -> None:
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = str(diagnostics)
    for secret in (
        simulator.app_token,
        *simulator.access_tokens,
        *simulator.refresh_tokens,
        "Grace Hopper",
    ):
        assert secret not in text
    assert diagnostics["connection"]["state"] == "connected"
    assert {s["state"] for s in diagnostics["subscriptions"]} == {"confirmed"}
    assert diagnostics["entry"]["data"]["app_token"] == "**REDACTED**"


async def test_logbook_describes_without_text(hass, simulator) -> None:
    from homeassistant.helpers.integration_platform import (
        async_process_integration_platforms,
    )
    from homeassistant.setup import async_setup_component

    from custom_components.circle.logbook import async_describe_events

    described = {}
    async_describe_events(
        hass, lambda domain, event_type, fn: described.__setitem__(event_type, fn)
    )

    class FakeEvent:
        def __init__(self, event_type, data):
            self.event_type = event_type
            self.data = data

    line = described["circle_new_message"](
        FakeEvent(
            "circle_new_message",
            {"sender_name": "Ada", "room_name": "DM", "text": "secret"},
        )
    )
    assert line["message"] == "New message from Ada in DM"
    direct = described["circle_new_message"](
        FakeEvent(
            "circle_new_message",
            {"sender_name": "Ada", "room_name": "Ada", "room_kind": "direct"},
        )
    )
    assert direct["message"] == "New message from Ada"  # not "from Ada in Ada"
    assert (
        described["circle_message_deleted"](FakeEvent("circle_message_deleted", {}))[
            "message"
        ]
        == "Message deleted"
    )
    assert (
        described["circle_new_notification"](
            FakeEvent("circle_new_notification", {"actor_name": "Al"})
        )["message"]
        == "New notification from Al"
    )
    assert (
        described["circle_new_notification"](FakeEvent("circle_new_notification", {}))[
            "message"
        ]
        == "New notification"
    )
    # Home Assistant's logbook machinery finds the platform and gets every bus event.
    registered: dict[str, str] = {}
    assert await async_setup_component(hass, DOMAIN, {})
    await async_process_integration_platforms(
        hass,
        "logbook",
        lambda hass, _domain, platform: platform.async_describe_events(
            hass,
            lambda domain, event_type, _fn: registered.__setitem__(event_type, domain),
        ),
        wait_for_platforms=True,
    )
    assert registered == dict.fromkeys(
        (
            "circle_new_message",
            "circle_message_updated",
            "circle_message_deleted",
            "circle_new_notification",
        ),
        DOMAIN,
    )


async def test_failed_resync_is_retried_after_retry_after(
    hass, simulator, monkeypatch
) -> None:
    """A failing read-back keeps the values shown, says so on the connection sensor, retries."""
    monkeypatch.setattr(
        "custom_components.circle.coordinator.DELIVERY_CONFIG",
        replace(DELIVERY_CONFIG, resync_initial=0.05),
    )
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    coordinator = entry.runtime_data
    simulator.add_fault("rest", 503, count=2)
    simulator.add_fault("rest", 429, retry_after="0.2", count=1)
    simulator.community.notify(42)
    simulator.drop_connections()
    await wait_for(lambda: coordinator.sync_error is not None)
    # No flapping: the entities keep their last values while the resync fails.
    assert state(hass, NOTIFICATIONS) != STATE_UNAVAILABLE
    assert hass.states.get(CONNECTION).attributes["synced"] is False
    await wait_for(lambda: coordinator.synced and state(hass, NOTIFICATIONS) == "1")
    assert all(f.count == 0 for f in simulator.faults)
    assert hass.states.get(CONNECTION).attributes["synced"] is True


async def test_room_channel_parameter_is_learned_and_kept(hass, simulator) -> None:
    """Circle's room parameter is unknown: the one that works is stored with the entry."""
    s = simulator.seeded
    simulator.config.room_params = ("chat_room_uuid",)
    entry = await setup(
        hass, simulator, options={"followed_rooms": [str(s["group"].id)]}
    )
    await connected(hass, entry)
    runtime = entry.runtime_data.runtime
    assert runtime.room_param(simulator.url) == "chat_room_uuid"
    assert "room_param" not in entry.data
    issues = ir.async_get(hass)
    assert not issues.async_get_issue(DOMAIN, f"subscription_rejected_{entry.entry_id}")
    assert await hass.config_entries.async_reload(entry.entry_id)
    await connected(hass, entry)
    room = [s for s in entry.runtime_data.cable.subscriptions if s.room_id]
    assert [sub.param for sub in room] == ["chat_room_uuid"]
