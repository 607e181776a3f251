"""The cable client against the simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
import json
import logging

import pytest

from custom_components.circle.client import (
    CableOptions,
    ChatRoomEvent,
    ChatThreadReadEvent,
    ConnectionState,
    MessageEvent,
    NewNotificationEvent,
    NotificationCountEvent,
)
from tests.conftest import FAST_OPTIONS, FAST_PING, wait_for
from tests.simulator import SimConfig
from tests.simulator.model import notification_stream
from tests.simulator.server import fault_frame

# The key tests run against both cable servers the simulator plays (test_client_anycable.py
# has the extended protocol's own).
FLAVOURS = pytest.mark.parametrize("sim_config", ["rails", "anycable"], indirect=True)


@pytest.fixture
def sim_config(request: pytest.FixtureRequest) -> SimConfig:
    """A fresh config per test (the simulator fills it in), of the flavour asked for."""
    return SimConfig(
        ping_interval=FAST_PING, flavour=getattr(request, "param", "rails")
    )


@FLAVOURS
async def test_connects_subscribes_after_welcome_and_sends_headers(
    harness_factory, simulator
) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    conn = simulator.connections[0]
    # Every subscribe came after the welcome: the server got only subscribes, all confirmed.
    sent = [json.loads(f) for f in conn.received]
    sent = [f for f in sent if f["command"] != "pong"]  # AnyCable's extended protocol
    assert {f["command"] for f in sent} == {"subscribe"}
    channels = {json.loads(f["identifier"])["channel"] for f in sent}
    assert channels == {
        "NotificationChannel",
        "ChatRoomChannel",
        "Chats::CommunityMemberThreadsChannel",
    }
    assert conn.token_kind == "access_token"
    assert conn.ws.ws_protocol == (
        "actioncable-v1-ext-json" if simulator.anycable else "actioncable-v1-json"
    )
    assert harness.state_names()[:2] == ["connecting", "connected"]


@FLAVOURS
@pytest.mark.parametrize(
    "envelope", ["event_data", "type_data", "event_flat", "type_flat"]
)
async def test_every_event_in_every_envelope(
    harness_factory, simulator, envelope
) -> None:
    simulator.config.envelope = envelope
    community = simulator.community
    s = simulator.seeded
    me = s["me"].id
    harness = harness_factory(room_ids=(s["space"].id, s["group"].id))
    harness.start()
    await harness.ready()

    dm_msg = community.post_message(s["dm"], s["ada"].id, "hi there")
    reply = community.post_message(s["group"], me, "root")
    thread_reply = community.post_message(
        s["group"], s["alan"].id, "a reply", parent_message_id=reply.id
    )
    space_msg = community.post_message(s["space"], s["ada"].id, "in the space")
    community.edit_message(s["group"], thread_reply, "an edited reply")
    community.delete_message(s["group"], thread_reply)
    community.notify(me)
    community.reset_notifications(me)
    new_room = community.create_room("group_chat", "New room", [me, s["ada"].id])
    community.update_room(new_room, name="Renamed")
    community.pin_room(new_room, me)
    community.pin_room(new_room, me, pinned=False)
    community.mark_room_read(s["dm"], me)
    community.read_thread(reply.chat_thread_id, me)
    community.delete_room(new_room)

    await wait_for(lambda: harness.events_named("chatRoomDeleted"))
    names = [e.name for e in harness.events]
    for expected in (
        "newMessage",
        "updatedMessage",
        "deletedMessage",
        "newNotification",
        "updateNewNotificationCount",
        "resetNewNotificationCount",
        "chatRoomCreated",
        "chatRoomUpdated",
        "chatRoomPinned",
        "chatRoomUnPinned",
        "chatRoomRead",
        "chatThreadRead",
        "chatRoomDeleted",
    ):
        assert expected in names, expected

    new_messages = [
        e for e in harness.events_named("newMessage") if isinstance(e, MessageEvent)
    ]
    ids = [e.message.id for e in new_messages if e.message]
    # Each message once, although each was broadcast on up to three channels.
    assert sorted(ids) == sorted({dm_msg.id, reply.id, thread_reply.id, space_msg.id})
    first = next(e for e in new_messages if e.message and e.message.id == dm_msg.id)
    assert first.message is not None
    assert first.message.body == "hi there"
    assert first.message.chat_room_uuid == s["dm"].uuid
    assert (
        first.message.sender is not None and first.message.sender.name == "Ada Lovelace"
    )
    assert first.message.sender.community_member_id == s["ada"].id
    threaded = next(
        e for e in new_messages if e.message and e.message.id == thread_reply.id
    )
    assert (
        threaded.message is not None and threaded.message.parent_message_id == reply.id
    )
    assert threaded.message.chat_thread_id == reply.chat_thread_id

    count = [e for e in harness.events if isinstance(e, NotificationCountEvent)]
    assert [e.count for e in count] == [1, 0]
    notification = next(
        e for e in harness.events if isinstance(e, NewNotificationEvent)
    )
    assert (
        notification.notification is not None
        and notification.notification.actor_name == "Ada"
    )
    read = next(
        e
        for e in harness.events
        if isinstance(e, ChatRoomEvent) and e.name == "chatRoomRead"
    )
    assert read.chat_room_uuid == s["dm"].uuid
    created = next(
        e
        for e in harness.events
        if isinstance(e, ChatRoomEvent) and e.name == "chatRoomCreated"
    )
    assert created.room is not None and created.room.name == "New room"
    pinned = next(e for e in harness.events if e.name == "chatRoomPinned")
    assert isinstance(pinned, ChatRoomEvent) and pinned.chat_room_id == new_room.id
    thread_read = next(e for e in harness.events if isinstance(e, ChatThreadReadEvent))
    assert thread_read.chat_thread_id == reply.chat_thread_id
    deleted = next(e for e in harness.events if e.name == "deletedMessage")
    assert isinstance(deleted, MessageEvent) and deleted.message is not None
    assert (
        deleted.message.id == thread_reply.id
        and deleted.message.chat_room_uuid == s["group"].uuid
    )
    room_events = [e for e in harness.events if e.room_id == s["space"].id]
    assert room_events and room_events[0].channel == "Chats::RoomChannel"


async def test_unknown_events_are_passed_on_by_name(harness_factory, simulator) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    simulator.publish(
        notification_stream(simulator.member_id), "brandNewThing", {"x": 1}
    )
    event = (await wait_for(lambda: harness.events_named("brandNewThing")))[0]
    assert event.data == {"x": 1}
    assert event.channel == "NotificationChannel"


@pytest.mark.parametrize(
    "sim_config", [SimConfig(ping_interval=0.2, subscriptions="reject")]
)
async def test_rejected_subscriptions_are_reported(harness_factory) -> None:
    harness = harness_factory()
    harness.start()
    await wait_for(
        lambda: len(
            {s.identifier for s in harness.sub_changes if s.state == "rejected"}
        )
        == 3
    )
    assert harness.cable.status.state is ConnectionState.CONNECTED


async def test_room_the_member_is_not_in_is_rejected(
    harness_factory, simulator
) -> None:
    outsider = simulator.community.create_room(
        "direct", "Not mine", [simulator.seeded["ada"].id, simulator.seeded["alan"].id]
    )
    harness = harness_factory(room_ids=(outsider.id,))
    harness.start()
    await wait_for(
        lambda: any(s.state == "rejected" for s in harness.cable.subscriptions)
    )
    states = {s.channel: s.state for s in harness.cable.subscriptions}
    assert states["Chats::RoomChannel"] == "rejected"
    assert states["NotificationChannel"] == "confirmed"


@pytest.mark.parametrize(
    "sim_config", [SimConfig(ping_interval=0.2, subscriptions="ignore")]
)
async def test_unanswered_subscriptions_time_out_and_are_retried(
    harness_factory, simulator
) -> None:
    harness = harness_factory()
    harness.start()
    await wait_for(lambda: any(s.state == "unanswered" for s in harness.sub_changes))
    simulator.config.subscriptions = "normal"
    await wait_for(harness.all_confirmed)
    sent = [json.loads(f) for f in simulator.connections[0].received]
    assert len(sent) > 3  # the three subscribes were sent again


async def test_follow_and_unfollow_room_while_connected(
    harness_factory, simulator
) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    space = simulator.seeded["space"]
    await harness.cable.async_follow_room(space.id)
    await wait_for(harness.all_confirmed)
    simulator.community.post_message(space, simulator.seeded["ada"].id, "hello space")
    await wait_for(lambda: harness.events_named("newMessage"))
    await harness.cable.async_unfollow_room(space.id)
    await wait_for(lambda: len(simulator.connections[0].subscriptions) == 3)
    simulator.community.post_message(space, simulator.seeded["ada"].id, "unheard")
    simulator.community.post_message(
        simulator.seeded["dm"], simulator.seeded["ada"].id, "heard"
    )
    await wait_for(lambda: len(harness.events_named("newMessage")) == 2)
    assert [e.message.body for e in harness.events_named("newMessage")] == [
        "hello space",
        "heard",
    ]


@FLAVOURS
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("drop", "dropped"),
        ("server_restart", "server_restart"),
        ("remote", "remote"),
        ("close_only", "closed"),
    ],
)
async def test_reconnects_and_restores_subscriptions(
    harness_factory, simulator, fault, reason
) -> None:
    space = simulator.seeded["space"]
    harness = harness_factory(room_ids=(space.id,))
    harness.start()
    await harness.ready()
    if fault == "drop":
        simulator.drop_connections()
    elif fault == "close_only":
        await simulator.disconnect_all(None)
    else:
        await simulator.disconnect_all(fault, reconnect=True)
    await harness.ready(connections=2)
    disconnected = [
        s for s in harness.states if s.state is ConnectionState.DISCONNECTED
    ]
    assert disconnected[0].reason == reason
    assert (
        disconnected[0].retry_in is not None
        and disconnected[0].retry_in <= FAST_OPTIONS.backoff_initial
    )
    assert len(simulator.connections[0].subscriptions) == 4
    simulator.community.post_message(
        space, simulator.seeded["ada"].id, "after reconnect"
    )
    await wait_for(lambda: harness.events_named("newMessage"))


@FLAVOURS
async def test_half_open_socket_is_detected(harness_factory, simulator) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    loop = asyncio.get_running_loop()
    silenced_at = loop.time()
    simulator.silence()
    await wait_for(lambda: any(s.reason == "stale" for s in harness.states))
    detected = loop.time() - silenced_at
    assert detected <= FAST_OPTIONS.stale_after + FAST_PING + 0.3
    await harness.ready(connections=2)


async def test_unauthorized_refreshes_once_then_reports_auth_failure(
    harness_factory, simulator
) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    # The token is revoked and the app token too: refresh works once (refresh token still good)...
    simulator.revoke_tokens("access")
    simulator.revoke_tokens("refresh")
    simulator.rotate_app_token()
    simulator.drop_connections()
    await wait_for(lambda: harness.cable.status.state is ConnectionState.AUTH_FAILED)
    assert harness.task is not None
    await asyncio.wait_for(harness.task, 2)
    # ... one unauthorized connect, one renewal attempt, no storm.
    cable_requests = [r for r in simulator.requests if r["path"] == "/cable"]
    assert len(cable_requests) <= 3
    assert harness.cable.status.reason == "auth_failed"


async def test_unauthorized_then_recovered_after_refresh(
    harness_factory, simulator
) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    simulator.revoke_tokens("access")  # the server will refuse the cached token
    simulator.drop_connections()
    await harness.ready(connections=2)
    assert "unauthorized" in [s.reason for s in harness.states]
    assert len(harness.saved_tokens) == 2  # minted, then refreshed after the refusal


async def test_reconnect_false_is_no_auth_verdict_but_slows_down(
    harness_factory, simulator
) -> None:
    """`reconnect: false` without `unauthorized` (a kick, a deploy): back, after a while."""
    harness = harness_factory()
    harness.start()
    await harness.ready()
    for connections in (2, 3):
        await simulator.disconnect_all("invalid_request", reconnect=False)
        await harness.ready(connections=connections)
    assert ConnectionState.AUTH_FAILED not in [s.state for s in harness.states]
    waits = [s.retry_in for s in harness.states if s.reason == "invalid_request"]
    assert len(waits) == 2
    assert all(w is not None and w >= FAST_OPTIONS.backoff_max for w in waits)


async def test_reconnect_false_after_a_stable_connection_retries_again(
    harness_factory, simulator
) -> None:
    harness = harness_factory(options=replace(FAST_OPTIONS, stable_after=0.3))
    harness.start()
    await harness.ready()
    await simulator.disconnect_all("invalid_request", reconnect=False)
    await harness.ready(connections=2)
    await asyncio.sleep(0.4)
    await simulator.disconnect_all("invalid_request", reconnect=False)
    await harness.ready(connections=3)
    assert harness.cable.status.state is ConnectionState.CONNECTED


async def test_origin_not_whitelisted(harness_factory, simulator, caplog) -> None:
    simulator.config.allowed_origins = {"https://elsewhere.example"}
    harness = harness_factory()
    harness.start()
    await wait_for(
        lambda: sum(s.reason == "origin_rejected" for s in harness.states) >= 2
    )
    warnings = [r for r in caplog.records if "whitelisted?" in r.getMessage()]
    assert [r.levelno for r in warnings][:2] == [logging.WARNING, logging.DEBUG]
    simulator.config.allowed_origins = {simulator.origin}
    await harness.ready()


async def test_handshake_429_honours_retry_after(harness_factory, simulator) -> None:
    simulator.add_fault("cable", 429, retry_after="0.7")
    harness = harness_factory()
    harness.start()
    await harness.ready()
    limited = next(s for s in harness.states if s.reason == "rate_limited")
    assert limited.retry_in is not None and limited.retry_in >= 0.7


async def test_server_errors_back_off(harness_factory, simulator) -> None:
    simulator.add_fault("cable", 503, count=3)
    harness = harness_factory()
    harness.start()
    await harness.ready()
    reasons = [
        s.reason for s in harness.states if s.state is ConnectionState.DISCONNECTED
    ]
    assert reasons == ["handshake_503"] * 3


async def test_token_app_rejected_at_start(harness_factory, simulator) -> None:
    harness = harness_factory()
    simulator.rotate_app_token()
    harness.start()
    await wait_for(lambda: harness.cable.status.state is ConnectionState.AUTH_FAILED)
    assert harness.cable.status.reason == "auth_failed"
    assert not [r for r in simulator.requests if r["path"] == "/cable"]


async def test_not_eligible_is_a_distinct_failure(harness_factory, simulator) -> None:
    simulator.config.eligible = False
    harness = harness_factory()
    harness.start()
    await wait_for(lambda: harness.cable.status.state is ConnectionState.AUTH_FAILED)
    assert harness.cable.status.reason == "not_eligible"


async def test_bad_frames_never_kill_the_connection(
    harness_factory, simulator, caplog
) -> None:
    caplog.set_level(logging.DEBUG, "custom_components.circle.client")
    harness = harness_factory()
    harness.start()
    await harness.ready()
    for kind in ("truncated", "non_json", "oversized", "malformed", "truncated"):
        simulator.send_raw(fault_frame(kind, ""))
    simulator.send_raw("[1, 2, 3]")
    simulator.send_raw(json.dumps({"type": "mystery"}))
    simulator.send_raw(json.dumps({"identifier": '{"channel":"Nope"}', "message": {}}))
    simulator.community.post_message(
        simulator.seeded["dm"], simulator.seeded["ada"].id, "still here"
    )
    await wait_for(lambda: harness.events_named("newMessage"))
    assert harness.connected_count() == 1  # never reconnected
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("not JSON" in w for w in warnings) == 1  # logged once per kind
    assert any("oversized" in w for w in warnings)
    assert any("unknown subscription" in w for w in warnings)


async def test_a_failing_listener_does_not_stop_delivery(
    harness_factory, simulator, caplog
) -> None:
    harness = harness_factory()

    def broken(event):
        raise RuntimeError("boom")

    harness.cable.add_event_listener(broken)
    later = []
    harness.cable.add_event_listener(later.append)
    harness.start()
    await harness.ready()
    simulator.community.notify(simulator.member_id)
    await wait_for(lambda: len(later) == 2)
    assert len(harness.events) == 2
    assert "in an event listener" in caplog.text


async def test_identifier_reserialised_by_server_still_routes(
    harness_factory, simulator
) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    conn = simulator.connections[0]
    # A server that re-encodes the identifier (spaces, other key order) still reaches us.
    ident = json.dumps(
        {"community_member_id": simulator.member_id, "channel": "ChatRoomChannel"}
    )
    await conn.ws.send_str(
        json.dumps(
            {
                "identifier": ident,
                "message": {"event": "chatRoomRead", "data": {"chat_room_uuid": "u1"}},
            }
        )
    )
    event = (await wait_for(lambda: harness.events_named("chatRoomRead")))[0]
    assert isinstance(event, ChatRoomEvent) and event.chat_room_uuid == "u1"


async def test_stop_while_backing_off_returns_promptly(
    harness_factory, simulator
) -> None:
    simulator.config.allowed_origins = {"https://elsewhere.example"}
    slow = replace(FAST_OPTIONS, backoff_initial=30.0, backoff_max=30.0)
    harness = harness_factory(options=slow)
    harness.start()
    await wait_for(lambda: any(s.reason == "origin_rejected" for s in harness.states))
    await asyncio.wait_for(harness.stop(), 1)
    assert harness.cable.status.state is ConnectionState.STOPPED


async def test_stays_up_across_token_refresh(
    harness_factory, simulator, sim_config
) -> None:
    # Tokens live 1 s and are refreshed 0.5 s early (the real margin is 5 minutes of 60).
    simulator.config.access_ttl = 1.0
    harness = harness_factory(
        refresh_margin=timedelta(seconds=0.5), min_refresh_interval=0.1
    )
    harness.start()
    await harness.ready()
    await wait_for(lambda: len(harness.saved_tokens) >= 3)
    assert harness.connected_count() == 1
    refreshes = [r for r in simulator.requests if r["path"].endswith("/refresh")]
    assert refreshes and all(r["bearer"] == "app_token" for r in refreshes)
    simulator.community.post_message(
        simulator.seeded["dm"], simulator.seeded["ada"].id, "x"
    )
    await wait_for(lambda: harness.events_named("newMessage"))


@pytest.mark.parametrize("sim_config", [SimConfig(ping_interval=3.0)])
async def test_half_open_detected_within_two_pings_and_a_second_with_real_timings(
    harness_factory, simulator
) -> None:
    """Circle's real cadence (pings every 3 s) and the client's default 6 s threshold."""
    harness = harness_factory(
        options=replace(FAST_OPTIONS, stale_after=CableOptions().stale_after)
    )
    harness.start()
    await harness.ready()
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    silenced_at = loop.time()
    simulator.silence()
    await wait_for(lambda: any(s.reason == "stale" for s in harness.states), timeout=10)
    assert loop.time() - silenced_at <= 2 * 3.0 + 1.0


async def test_binary_frames_are_read_as_text(
    harness_factory, simulator, caplog
) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    ident = next(iter(simulator.connections[0].subscriptions))
    frame = {"identifier": ident, "message": {"event": "brandNew", "data": {}}}
    await simulator.send_binary(json.dumps(frame).encode())
    await simulator.send_binary(b"\xff\xfe")
    await wait_for(lambda: harness.events_named("brandNew"))
    await simulator.send_binary(
        json.dumps({"type": "disconnect", "reason": "remote"}).encode()
    )
    await harness.ready(connections=2)
    assert "not UTF-8" in caplog.text


async def test_handshake_401_refreshes_and_retries(harness_factory, simulator) -> None:
    simulator.add_fault("cable", 401)
    harness = harness_factory()
    harness.start()
    await harness.ready()
    assert "unauthorized" in [s.reason for s in harness.states]


@pytest.mark.parametrize(("status", "retry"), [(429, "0.3"), (500, None)])
async def test_renewal_failing_after_unauthorized_backs_off(
    harness_factory, simulator, status, retry
) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    simulator.revoke_tokens("access")
    simulator.add_fault("refresh", status, retry_after=retry)
    simulator.drop_connections()
    await harness.ready(connections=2)
    # The refusal renews at once; the failed renewal is retried fast, never before
    # Retry-After (0.3 s clamped up to 1 s), and it is no verdict.
    assert [s.retry_in for s in harness.states if s.reason == "unauthorized"] == [0.0]
    waits = [
        s.retry_in
        for s in harness.states
        if s.reason in ("rate_limited", "token_unavailable")
    ]
    assert len(waits) == 1
    assert waits[0] == (1.0 if retry else FAST_OPTIONS.renew_initial)
    assert ConnectionState.AUTH_FAILED not in [s.state for s in harness.states]


async def test_member_not_found_is_fatal(harness_factory, simulator) -> None:
    harness = harness_factory()
    simulator.community.members.pop(42)
    harness.start()
    await wait_for(lambda: harness.cable.status.state is ConnectionState.AUTH_FAILED)
    assert harness.cable.status.reason == "member_not_found"


async def test_odd_control_frames_and_failing_listeners(
    harness_factory, simulator, caplog
) -> None:
    harness = harness_factory(options=replace(FAST_OPTIONS, dedupe_size=2))

    def broken(_):
        raise RuntimeError("boom")

    harness.cable.add_state_listener(broken)
    harness.cable.add_subscription_listener(broken)
    harness.start()
    await harness.ready()
    conn = simulator.connections[0]
    await conn.ws.send_str(
        json.dumps({"type": "confirm_subscription", "identifier": 42})
    )
    await conn.ws.send_str(
        json.dumps({"type": "welcome"})
    )  # a second welcome changes nothing
    for text in ("a", "b", "c", "a"):
        simulator.community.post_message(
            simulator.seeded["dm"], simulator.seeded["ada"].id, text
        )
    await wait_for(lambda: len(harness.events_named("newMessage")) == 4)
    assert harness.connected_count() == 1
    assert "in a state listener" in caplog.text
    assert "in a subscription listener" in caplog.text
    assert len(harness.cable.hub.seen) == 2  # bounded memory


async def test_follow_twice_and_unfollow_unknown(harness_factory, simulator) -> None:
    harness = harness_factory()
    await harness.cable.async_follow_room(5)  # before connecting: just remembered
    await harness.cable.async_follow_room(5)
    await harness.cable.async_unfollow_room(6)
    assert sum(s.room_id == 5 for s in harness.cable.subscriptions) == 1
    await harness.cable.async_unfollow_room(5)
    assert not any(s.room_id == 5 for s in harness.cable.subscriptions)


@pytest.mark.parametrize(
    ("accepted", "expected"),
    [
        (("chat_room_id",), "chat_room_id"),
        (("id",), "id"),
        (("chat_room_uuid",), "chat_room_uuid"),
    ],
)
async def test_room_channel_parameter_falls_back_and_is_remembered(
    harness_factory, simulator, accepted, expected
) -> None:
    """The parameter of Chats::RoomChannel is a guess: try each, keep the one that works."""
    simulator.config.room_params = accepted
    space = simulator.seeded["space"]
    harness = harness_factory(room_ids=(space.id,))
    learned: list[str] = []
    harness.cable.book.room_uuids[space.id] = space.uuid
    harness.cable.book.on_room_param = learned.append
    harness.start()
    await harness.ready()
    room_subs = [s for s in harness.cable.subscriptions if s.room_id == space.id]
    assert [s.param for s in room_subs] == [expected]
    assert harness.cable.room_param == expected
    assert learned == [expected]
    # Only the final answer counts as a rejection: nothing was reported as refused.
    assert not [
        s for s in harness.sub_changes if s.state == "rejected" and s.param == expected
    ]
    simulator.community.post_message(space, simulator.seeded["ada"].id, "via the room")
    await wait_for(lambda: harness.events_named("newMessage"))


async def test_room_channel_refused_with_every_parameter_is_rejected_once(
    harness_factory, simulator, caplog
) -> None:
    simulator.config.room_params = ()
    space = simulator.seeded["space"]
    harness = harness_factory(room_ids=(space.id,))
    harness.cable.book.room_uuids[space.id] = space.uuid
    harness.start()
    await wait_for(
        lambda: any(
            s.room_id == space.id and s.state == "rejected"
            for s in harness.cable.subscriptions
        )
    )
    tried = {s.param for s in harness.sub_changes if s.room_id == space.id}
    assert tried == {"chat_room_id", "id", "chat_room_uuid"}
    assert caplog.text.count("Circle rejected the subscription") == 1


async def test_a_room_answered_late_still_tries_the_parameter_another_room_taught(
    harness_factory, simulator
) -> None:
    """Real Rails answers from a worker pool: room B's refusal of `chat_room_id` can come after
    room A was confirmed with `id`. B must still try `id` (it used to skip it and give up)."""
    simulator.config.room_params = ("id",)
    space, group = simulator.seeded["space"], simulator.seeded["group"]
    simulator.config.answer_delays = {group.id: 0.3}
    harness = harness_factory(room_ids=(space.id, group.id))
    harness.start()
    await harness.ready()
    rooms = {s.room_id: s for s in harness.cable.subscriptions if s.room_id}
    assert {room: sub.param for room, sub in rooms.items()} == {
        space.id: "id",
        group.id: "id",
    }
    assert {sub.state for sub in rooms.values()} == {"confirmed"}
    assert harness.cable.room_param == "id"


async def test_remembered_room_parameter_is_tried_first(
    harness_factory, simulator
) -> None:
    simulator.config.room_params = ("id",)
    space = simulator.seeded["space"]
    harness = harness_factory(room_ids=(space.id,))
    harness.cable.room_param = "id"
    book = harness.cable.book
    book.subs.clear()
    book.canonical.clear()
    book.add(book.room_sub(space.id))
    harness.start()
    await harness.ready()
    sent = [json.loads(f) for f in simulator.connections[0].received]
    assert [json.loads(f["identifier"]).get("id") for f in sent] == [space.id]


async def test_disconnect_reason_is_sanitised(harness_factory, simulator) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    simulator.send_raw(
        json.dumps(
            {
                "type": "disconnect",
                "reason": "\x1b[31m<script>" + "x" * 500,
                "reconnect": True,
            }
        )
    )
    await wait_for(lambda: harness.cable.reconnects >= 1)
    reasons = [s.reason for s in harness.states if s.state == "disconnected"]
    reason = reasons[0]
    assert reason is not None and len(reason) <= 100
    assert all(c.isalnum() or c in "_ .:-" for c in reason)


async def test_a_room_subscription_confirmed_late_is_taken_back(
    harness_factory, simulator
) -> None:
    """Circle confirms `chat_room_id` after the timeout: the cable has moved on, then adopts it."""
    simulator.config.room_params = ("chat_room_id",)
    original = simulator._enqueue
    loop = asyncio.get_running_loop()

    def slow_room_confirm(conn, text) -> None:
        frame = json.loads(text)
        if frame.get("type") == "confirm_subscription" and "chat_room_id" in frame.get(
            "identifier", ""
        ):
            loop.call_later(1.0, original, conn, text)
        else:
            original(conn, text)

    simulator._enqueue = slow_room_confirm
    space = simulator.seeded["space"]
    harness = harness_factory(room_ids=(space.id,))
    harness.cable.book.room_uuids[space.id] = space.uuid
    harness.start()
    await wait_for(
        lambda: any(
            s.room_id == space.id and s.state == "confirmed"
            for s in harness.cable.subscriptions
        ),
    )
    room = [s for s in harness.cable.subscriptions if s.room_id == space.id]
    assert [s.param for s in room] == ["chat_room_id"]
    assert harness.cable.room_param == "chat_room_id"
    posted = simulator.community.post_message(space, simulator.seeded["ada"].id, "late")
    await wait_for(
        lambda: any(
            e.data.get("id") == posted.id for e in harness.events_named("newMessage")
        )
    )
