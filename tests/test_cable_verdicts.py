"""Connection verdicts against the simulator over loopback: a refusal is not a bad token.

AnyCable answers a disallowed Origin with 403 (Rails: 404); a CDN's challenge can too. Only the
member API's word on a freshly renewed token may send the user to re-enter credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import replace
import logging

from aiohttp import web
import pytest

from custom_components.circle.client import ConnectionState
from custom_components.circle.client.cable_socket import CableSocket
from tests.conftest import FAST_OPTIONS, wait_for


def mints_and_refreshes(simulator) -> int:
    return sum(
        1
        for r in simulator.requests
        if r["path"].endswith(("/auth_token", "/access_token/refresh"))
    )


def checks(simulator) -> int:
    return sum(1 for r in simulator.requests if r["path"].endswith("/community_member"))


def refused_origin(simulator) -> None:
    simulator.config.origin_refusal_status = 403
    simulator.config.allowed_origins = {"https://elsewhere.example"}


async def test_403_with_a_token_the_member_api_accepts_is_the_origin(
    harness_factory, simulator, caplog
) -> None:
    """Renew once, ask REST, then: Origin refused, no verdict; back once it is allowed."""
    refused_origin(simulator)
    harness = harness_factory()
    harness.start()
    await wait_for(lambda: harness.cable.origin_refused)
    assert harness.cable.verdict == "origin_refused"
    assert harness.cable.status.reason == "origin_refused"
    # One mint, one renewal after the first 403: never a reauthentication.
    assert mints_and_refreshes(simulator) == 2
    assert checks(simulator) >= 1
    warning = next(r for r in caplog.records if "refused the Origin" in r.getMessage())
    assert simulator.origin in warning.getMessage()
    # Retries keep coming (each one asks the member API again), never a verdict.
    await wait_for(lambda: checks(simulator) >= 3)
    assert ConnectionState.AUTH_FAILED not in [s.state for s in harness.states]
    assert mints_and_refreshes(simulator) == 2
    simulator.config.allowed_origins = {simulator.origin}
    await harness.ready()
    assert harness.cable.verdict is None
    assert not harness.cable.origin_refused


async def test_403_and_the_member_api_rejects_the_fresh_token_is_a_verdict(
    harness_factory, simulator
) -> None:
    refused_origin(simulator)
    simulator.add_fault("rest", 401, count=1)
    harness = harness_factory()
    harness.start()
    await wait_for(lambda: harness.cable.status.state is ConnectionState.AUTH_FAILED)
    assert harness.cable.status.reason == "auth_failed"
    assert harness.task is not None
    await asyncio.wait_for(harness.task, 2)
    assert checks(simulator) == 1
    assert mints_and_refreshes(simulator) == 2  # the verdict came with a renewed token


@pytest.mark.parametrize(("status", "retry"), [(503, None), (429, "1")])
async def test_403_with_the_member_api_unreachable_is_no_verdict(
    harness_factory, simulator, status, retry
) -> None:
    refused_origin(simulator)
    simulator.add_fault("rest", status, count=2, retry_after=retry)
    harness = harness_factory()
    harness.start()
    await wait_for(lambda: harness.cable.origin_refused, timeout=15)
    failed = [s for s in harness.states if s.reason == "token_check_failed"]
    assert len(failed) == 2
    if retry:
        assert all(s.retry_in is not None and s.retry_in >= 1.0 for s in failed)
    assert ConnectionState.AUTH_FAILED not in [s.state for s in harness.states]


async def test_two_403s_then_normal_answers_cost_a_normal_reconnect(
    harness_factory, simulator
) -> None:
    """A CDN's challenge: two 403s, then Circle answers; back at once, no reauth."""
    harness = harness_factory()
    harness.start()
    await harness.ready()
    simulator.add_fault("cable", 403, count=2)
    loop = asyncio.get_running_loop()
    dropped_at = loop.time()
    simulator.drop_connections()
    await harness.ready(connections=2)
    # Scaled timings: the first Origin retry waits at most origin_retry_initial.
    assert loop.time() - dropped_at < 2 * FAST_OPTIONS.origin_retry_initial + 1.5
    assert ConnectionState.AUTH_FAILED not in [s.state for s in harness.states]
    assert harness.cable.verdict is None


async def test_with_real_timings_two_403s_are_back_within_a_minute(
    harness_factory, simulator
) -> None:
    """Default timings: renew, check, first Origin retry after 2.5-5 s."""
    options = replace(FAST_OPTIONS, origin_retry_initial=5.0, origin_retry_max=300.0)
    harness = harness_factory(options=options)
    simulator.add_fault("cable", 403, count=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    harness.start()
    await harness.ready()
    assert loop.time() - started <= 6.0
    assert [s.reason for s in harness.states if s.retry_in is not None][:2] == [
        "unauthorized",
        "origin_refused",
    ]


async def test_origin_retries_are_at_most_origin_retry_max_apart(
    harness_factory, simulator
) -> None:
    refused_origin(simulator)
    harness = harness_factory()
    harness.start()
    await wait_for(
        lambda: sum(
            s.reason == "origin_refused" and s.retry_in is not None
            for s in harness.states
        )
        >= 5,
        timeout=20,
    )
    waits = [
        s.retry_in
        for s in harness.states
        if s.reason == "origin_refused" and s.retry_in is not None
    ]
    assert all(w <= FAST_OPTIONS.origin_retry_max for w in waits)


async def test_token_expired_renews_and_reconnects_at_once(
    harness_factory, simulator
) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    tokens = len(harness.saved_tokens)
    await simulator.disconnect_all("token_expired", reconnect=False)
    await harness.ready(connections=2)
    expired = [s for s in harness.states if s.reason == "token_expired"]
    assert [s.retry_in for s in expired] == [0.0]
    assert len(harness.saved_tokens) == tokens + 1


@pytest.mark.parametrize(
    "reason",
    [
        "server_restart",
        "remote",
        "no_pong",
        "too_slow",
        "idle_timeout",
        "invalid_request",
    ],
)
async def test_other_reasons_reconnect_with_backoff(
    harness_factory, simulator, reason, caplog
) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    tokens = len(harness.saved_tokens)
    await simulator.disconnect_all(reason, reconnect=True)
    await harness.ready(connections=2)
    waits = [s.retry_in for s in harness.states if s.reason == reason]
    assert len(waits) == 1
    assert waits[0] is not None and waits[0] <= FAST_OPTIONS.backoff_max
    assert len(harness.saved_tokens) == tokens  # no renewal
    assert "unknown reason" not in caplog.text


async def test_unknown_reason_reconnects_and_is_logged_once(
    harness_factory, simulator, caplog
) -> None:
    harness = harness_factory()
    harness.start()
    await harness.ready()
    for connections in (2, 3):
        await simulator.disconnect_all("quota <b>exceeded</b>", reconnect=True)
        await harness.ready(connections=connections)
    logged = [r for r in caplog.records if "unknown reason" in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.WARNING, logging.DEBUG]
    assert "<b>" not in caplog.text  # sanitised
    assert ConnectionState.AUTH_FAILED not in [s.state for s in harness.states]


@pytest.fixture
async def redirector(socket_enabled: None) -> AsyncGenerator[dict[str, object]]:
    """A loopback server whose /cable answers 302 to another origin (with a query)."""
    hits: dict[str, object] = {"cable": 0, "elsewhere": 0}

    async def cable(_request: web.Request) -> web.Response:
        hits["cable"] = int(hits["cable"]) + 1  # type: ignore[call-overload]
        raise web.HTTPFound(f"{hits['base']}/elsewhere/cable?token=hunter2")

    async def elsewhere(_request: web.Request) -> web.Response:
        hits["elsewhere"] = int(hits["elsewhere"]) + 1  # type: ignore[call-overload]
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/cable", cable)
    app.router.add_get("/elsewhere/cable", elsewhere)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hits["base"] = f"http://127.0.0.1:{port}"
    hits["url"] = f"ws://127.0.0.1:{port}/cable"
    yield hits
    await runner.cleanup()


async def test_a_handshake_redirect_is_not_followed(
    harness_factory, redirector, caplog
) -> None:
    harness = harness_factory()
    harness.cable._url = str(redirector["url"])
    harness.start()
    await wait_for(lambda: sum(s.reason == "redirected" for s in harness.states) >= 2)
    await harness.stop()
    assert redirector["elsewhere"] == 0
    message = next(
        r.getMessage() for r in caplog.records if "redirect to" in r.getMessage()
    )
    assert f"{redirector['base']}/elsewhere/cable" in message
    assert "hunter2" not in caplog.text and "token=" not in message
    waits = [s.retry_in for s in harness.states if s.reason == "redirected"]
    assert all(w is not None and w <= FAST_OPTIONS.backoff_max for w in waits)
    assert ConnectionState.AUTH_FAILED not in [s.state for s in harness.states]


async def test_idle_watchdog_never_wakes_while_frames_flow(
    harness_factory, simulator, monkeypatch
) -> None:
    """No ticking: pings push the deadline; idle, the watchdog does not wake at all.

    And a silent socket is still called stale between `stale_after` and 9/8 of it.
    """
    calls = {"deadline": 0, "subscriptions": 0}
    next_wakes: list[float] = []
    called_stale: list[float] = []  # when the deadline called the socket stale
    on_deadline, retry = CableSocket._on_deadline, CableSocket._retry_subscriptions

    def counting_deadline(sock: CableSocket) -> None:
        calls["deadline"] += 1
        on_deadline(sock)
        if sock._stale.is_set() and not called_stale:
            called_stale.append(asyncio.get_running_loop().time())

    async def counting_retry(sock: CableSocket, now: float) -> float:
        calls["subscriptions"] += 1
        next_wakes.append(await retry(sock, now))
        return next_wakes[-1]

    # Patched on the class: the live socket's bound methods (its timer) look them up there.
    monkeypatch.setattr(CableSocket, "_on_deadline", counting_deadline)
    monkeypatch.setattr(CableSocket, "_retry_subscriptions", counting_retry)
    harness = harness_factory()
    harness.start()
    await harness.ready()
    cable = harness.cable
    # Settled: the watchdog's last turn found no subscribe left to time out.
    await wait_for(lambda: bool(next_wakes) and next_wakes[-1] == float("inf"))
    calls.update(deadline=0, subscriptions=0)
    await asyncio.sleep(6 * FAST_OPTIONS.stale_after)  # pings every 0.2 s
    assert calls == {"deadline": 0, "subscriptions": 0}  # was 8 wakes per period
    assert harness.connected_count() == 1
    simulator.silence()
    assert cable._socket is not None
    last_frame = cable._socket.last_frame
    await wait_for(lambda: any(s.reason == "stale" for s in harness.states))
    # Measured when the deadline decided, not when this test saw the state (the close and
    # the poll after it added loop latency to a 0.1 s margin).
    detected = called_stale[0] - last_frame
    assert (
        FAST_OPTIONS.stale_after <= detected <= FAST_OPTIONS.stale_after * 9 / 8 + 0.1
    )
    assert calls["deadline"] >= 1


async def test_a_cable_waiting_for_a_token_wakes_when_one_comes(
    harness_factory, simulator
) -> None:
    """A token renewed elsewhere (the refresher, a REST call) ends the wait at once."""
    options = replace(FAST_OPTIONS, renew_initial=30.0, renew_max=30.0)
    harness = harness_factory(options=options)
    # Every mint fails until the test says so: no background renewal can end the wait
    # before the test sees it.
    simulator.add_fault("mint", 503, count=1_000)
    harness.start()
    await wait_for(lambda: harness.cable.status.reason == "token_unavailable")
    assert harness.cable.status.retry_in == 30.0
    simulator.faults.clear()
    loop = asyncio.get_running_loop()
    renewed_at = loop.time()
    await harness.auth.async_get_access_token()  # e.g. the member API renewed it
    await harness.ready()
    assert loop.time() - renewed_at < 2.0
