"""Hostile input through the whole integration, over real sockets, inside Home Assistant.

Every hostile frame of `test_hostile_frames` goes through the live cable: afterwards the
integration is connected (or reconnecting), nothing logged a traceback or a secret, and the
entities still follow Circle (no entity is left "available" on frozen data). A second test runs
setup, a token refresh, a reconnect, the actions and diagnostics at DEBUG level and searches
every log line, repr, repair issue and event for the app token, access and refresh tokens.
"""

from __future__ import annotations

from dataclasses import replace
import functools
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.circle.client import CircleAuth
from custom_components.circle.const import DOMAIN
from custom_components.circle.coordinator import DELIVERY_CONFIG
from tests.conftest import wait_for
from tests.test_hostile_frames import FRAMES
from tests.test_init import CHATS, CONNECTION, NOTIFICATIONS, connected, setup, state


@pytest.fixture(autouse=True)
def _fast(cable_options, monkeypatch) -> None:
    monkeypatch.setattr(
        "custom_components.circle.coordinator.DELIVERY_CONFIG",
        replace(DELIVERY_CONFIG, resync_initial=0.05),
    )


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.exc_info or r.levelno >= logging.ERROR
        if r.name.startswith("custom_components.circle")
    ]


async def test_every_hostile_frame_through_the_live_integration(
    hass: HomeAssistant, simulator, caplog
) -> None:
    assert len(FRAMES) >= 50
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    coordinator = entry.runtime_data
    for frame_id, raw, _kind, _detail in FRAMES:
        reconnects = coordinator.reconnects
        rx = coordinator.cable.frames_received
        simulator.send_raw(raw)
        # A ping through the same socket: once it is counted, the frame before it was read.
        simulator.send_raw('{"type":"ping","message":1}')
        await wait_for(
            lambda rx=rx, reconnects=reconnects: coordinator.cable.frames_received
            >= rx + 2
            or coordinator.reconnects > reconnects,
        )
        if (
            coordinator.reconnects > reconnects
            or coordinator.connection.state != "connected"
        ):
            await connected(hass, entry)  # a disconnect frame: back by itself
        assert not coordinator.session_task.done(), frame_id
        assert not tracebacks(caplog), frame_id
    # Still following Circle: a real message and a count after all that.
    await connected(hass, entry)
    events = async_capture_events(hass, "circle_new_message")
    s = simulator.seeded
    simulator.community.notify(42)
    simulator.community.post_message(s["group"], s["alan"].id, "still here")
    await wait_for(lambda: any(e.data["text"] == "still here" for e in events))
    await wait_for(lambda: state(hass, NOTIFICATIONS) == "1")
    assert state(hass, CONNECTION) == "on"
    assert "SECRETVALUE" not in caplog.text
    # Unknown shapes were reported once, by their keys.
    warned = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "unknown shape" in r.getMessage()
    ]
    assert len(warned) <= 1


async def test_no_secret_anywhere_at_debug_level(
    hass: HomeAssistant, simulator, caplog, hass_client, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)
    simulator.config.access_ttl = 2.0
    monkeypatch.setattr(
        "custom_components.circle.wiring.CircleAuth",
        functools.partial(CircleAuth, min_refresh_interval=0.1),
    )
    fired: list[Any] = []
    hass.bus.async_listen("*", lambda event: fired.append(event))
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    coordinator = entry.runtime_data
    first = coordinator.auth.tokens.access_token
    # A refresh, a reconnect, a rejected subscription's repair issue.
    await wait_for(lambda: coordinator.auth.tokens.access_token != first)
    simulator.drop_connections()
    await wait_for(lambda: coordinator.reconnects >= 1)
    await connected(hass, entry)
    s = simulator.seeded
    await hass.services.async_call(
        DOMAIN,
        "send_message",
        {"entity_id": "notify.ada_lovelace", "message": "hello"},
        blocking=True,
        return_response=True,
    )
    await hass.services.async_call(
        DOMAIN, "mark_read", {"config_entry_id": entry.entry_id}, blocking=True
    )
    await hass.services.async_call(
        DOMAIN,
        "mark_notifications_read",
        {"config_entry_id": entry.entry_id},
        blocking=True,
    )
    simulator.add_fault("rest", 401, count=1)  # a refused token, renewed once
    simulator.community.post_message(s["dm"], s["ada"].id, "after")
    await wait_for(lambda: state(hass, CHATS) == "1")
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    secrets = {simulator.app_token, *simulator.access_tokens, *simulator.refresh_tokens}
    assert len(secrets) >= 3
    places = {
        "log": caplog.text,
        "diagnostics": str(diagnostics),
        "events": str([(e.event_type, e.data) for e in fired]),
        "reprs": " ".join(
            repr(o)
            for o in (
                coordinator.auth,
                coordinator.auth.tokens,
                coordinator.api,
                coordinator.cable,
                coordinator.session,
                coordinator.session.core,
            )
        ),
        "issues": str(
            [
                issue.translation_placeholders
                for issue in ir.async_get(hass).issues.values()
            ]
        ),
        "states": str(
            [(st.entity_id, st.attributes) for st in hass.states.async_all()]
        ),
    }
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a token in {place}"
    assert not tracebacks(caplog)
