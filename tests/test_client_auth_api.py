"""Tokens and the member API against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import dataclasses
from datetime import UTC, datetime, timedelta
import logging
import time

import pytest

from custom_components.circle.client import (
    CircleApiError,
    CircleAuth,
    CircleAuthenticationError,
    CircleConnectionError,
    CircleMemberApi,
    CircleMemberNotFoundError,
    CircleNotEligibleError,
    CircleRateLimitError,
    StaticAccessToken,
    TokenSet,
    auth as auth_module,
)
from custom_components.circle.client.auth import decode_jwt_claims
from custom_components.circle.client.http import retry_after_seconds
from tests.conftest import wait_for
from tests.simulator import SimConfig


def make_auth(session, simulator, **kwargs) -> tuple[CircleAuth, list[TokenSet]]:
    saved: list[TokenSet] = []
    kwargs.setdefault("member_id", simulator.member_id)
    auth = CircleAuth(
        session, simulator.url, simulator.app_token, on_tokens=saved.append, **kwargs
    )
    return auth, saved


async def test_mint_by_member_id_and_by_email(session, simulator) -> None:
    auth, saved = make_auth(session, simulator)
    token = await auth.async_get_access_token()
    claims = decode_jwt_claims(token)
    assert claims["community_member_id"] == simulator.member_id
    assert saved[0].refresh_token and saved[0].community_id == 1
    by_email = CircleAuth(
        session, simulator.url, simulator.app_token, email="grace@example.com"
    )
    assert (
        decode_jwt_claims(await by_email.async_get_access_token())[
            "community_member_id"
        ]
        == 42
    )
    assert by_email.member_id == 42
    # A valid token is reused: no second mint.
    assert await auth.async_get_access_token() == token
    assert sum(r["path"].endswith("auth_token") for r in simulator.requests) == 2


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (lambda sim: sim.rotate_app_token(), CircleAuthenticationError),
        (lambda sim: setattr(sim.config, "eligible", False), CircleNotEligibleError),
        (lambda sim: sim.community.members.pop(42), CircleMemberNotFoundError),
        (
            # Circle's 422 is "error creating the token, contact support": temporary.
            lambda sim: (
                sim.community.members.pop(42),
                setattr(sim.config, "mint_not_found_status", 422),
            ),
            CircleConnectionError,
        ),
        (
            lambda sim: sim.add_fault("mint", 429, retry_after="12"),
            CircleRateLimitError,
        ),
        (lambda sim: sim.add_fault("mint", 502), CircleConnectionError),
        (lambda sim: sim.add_fault("mint", 400), CircleApiError),
    ],
)
async def test_mint_errors_are_typed(session, simulator, setup, error) -> None:
    auth, _ = make_auth(session, simulator)
    setup(simulator)
    with pytest.raises(error) as info:
        await auth.async_get_access_token()
    if error is CircleRateLimitError:
        assert info.value.retry_after == 12


async def test_cannot_connect(session, socket_enabled) -> None:
    auth = CircleAuth(session, "http://127.0.0.1:9", "app", member_id=1)
    with pytest.raises(CircleConnectionError):
        await auth.async_get_access_token()


async def test_timeout_is_a_connection_error(session, simulator) -> None:
    simulator.config.latency = 0.5
    auth = CircleAuth(
        session, simulator.url, simulator.app_token, member_id=42, request_timeout=0.1
    )
    with pytest.raises(CircleConnectionError, match="Timed out"):
        await auth.async_get_access_token()


@pytest.mark.parametrize("bearer", ["app_token", "refresh_token", "either"])
async def test_refresh_with_either_bearer_variant(session, simulator, bearer) -> None:
    simulator.config.refresh_bearer = bearer
    auth, saved = make_auth(session, simulator)
    first = await auth.async_get_access_token()
    refreshed = await auth.async_invalidate(first)
    assert refreshed != first
    assert saved[1].refresh_token == saved[0].refresh_token  # Circle does not rotate it
    refreshes = [r for r in simulator.requests if r["path"].endswith("/refresh")]
    assert refreshes[-1]["bearer"] == ("app_token" if bearer == "either" else bearer)
    # The working variant is remembered: the next refresh needs a single call.
    before = len(refreshes)
    await auth.async_invalidate(refreshed)
    assert (
        len([r for r in simulator.requests if r["path"].endswith("/refresh")])
        == before + 1
    )
    assert not any(r["path"].endswith("auth_token") for r in simulator.requests[1:])


async def test_concurrent_callers_share_one_refresh(session, simulator) -> None:
    auth, saved = make_auth(session, simulator)
    first = await auth.async_get_access_token()
    results = await asyncio.gather(*(auth.async_invalidate(first) for _ in range(10)))
    assert len(set(results)) == 1
    assert len(saved) == 2
    assert sum(r["path"].endswith("/refresh") for r in simulator.requests) == 1


async def test_refresh_before_expiry(session, simulator) -> None:
    simulator.config.access_ttl = 200  # inside the 5-minute margin: due at once
    auth, saved = make_auth(session, simulator)
    first = await auth.async_get_access_token()
    # Renew now, then wait: not again within 30 s of the last renewal.
    assert 29 < auth.seconds_until_refresh() <= 30
    assert await auth.async_get_access_token() == first
    assert len(saved) == 1
    auth.schedule.last_renewal -= 31  # the spacing has passed
    assert auth.seconds_until_refresh() == 0
    await auth.async_get_access_token()
    assert len(saved) == 2
    assert sum(r["path"].endswith("/refresh") for r in simulator.requests) == 1
    # A second fresh token already due: the spacing doubles.
    assert 59 < auth.seconds_until_refresh() <= 60


@pytest.mark.parametrize("fault", ["revoked", "expired"])
async def test_rejected_refresh_token_leads_to_a_new_mint(
    session, simulator, fault
) -> None:
    auth, saved = make_auth(session, simulator)
    first = await auth.async_get_access_token()
    if fault == "revoked":
        simulator.revoke_tokens("refresh")
    else:
        simulator.expire_refresh_tokens()
    await auth.async_invalidate(first)
    assert saved[1].refresh_token != saved[0].refresh_token
    assert sum(r["path"].endswith("auth_token") for r in simulator.requests) == 2


async def test_refresh_token_near_its_end_is_reminted(session, simulator) -> None:
    simulator.config.refresh_ttl = 3600  # within the one-day re-mint margin
    auth, saved = make_auth(session, simulator)
    first = await auth.async_get_access_token()
    await auth.async_invalidate(first)
    assert not any(r["path"].endswith("/refresh") for r in simulator.requests)
    assert len(saved) == 2


async def test_refresh_rate_limited(session, simulator) -> None:
    auth, _ = make_auth(session, simulator)
    first = await auth.async_get_access_token()
    simulator.add_fault("refresh", 429, retry_after="30")
    with pytest.raises(CircleRateLimitError) as info:
        await auth.async_invalidate(first)
    assert info.value.retry_after == 30
    assert auth.tokens is not None and auth.tokens.access_token == first


async def test_stored_tokens_are_reused_and_round_trip(session, simulator) -> None:
    auth, saved = make_auth(session, simulator)
    await auth.async_get_access_token()
    restored = TokenSet.from_dict(saved[0].as_dict())
    assert restored == saved[0]
    again, saved_again = make_auth(session, simulator, tokens=restored)
    assert await again.async_get_access_token() == saved[0].access_token
    assert saved_again == []
    assert TokenSet.from_dict({"nothing": 1}) is None


def test_token_expiry_from_jwt_when_answer_has_none() -> None:
    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    import base64
    import json

    payload = (
        base64.urlsafe_b64encode(
            json.dumps({"exp": exp, "community_member_id": 7}).encode()
        )
        .decode()
        .rstrip("=")
    )
    tokens = TokenSet.from_response(
        {"access_token": f"h.{payload}.s", "refresh_token": "r"}
    )
    assert int(tokens.access_token_expires_at.timestamp()) == exp
    assert tokens.community_member_id == 7
    assert "h." not in repr(tokens) and "'r'" not in repr(tokens)
    with pytest.raises(CircleApiError):
        TokenSet.from_response({"refresh_token": "r"})
    assert decode_jwt_claims("garbage") == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5),
        ("0.3", 1),
        ("0", 1),
        ("-1", 1),
        ("1e308", 3600),
        ("inf", 3600),
        ("-inf", 1),
        ("nan", 3600),
        ("3599", 3599),
        (None, 60),
        ("", 60),
        ("soon", 60),
        ("Sat, 28 Nov 2099 12:00:00 GMT", 3600),
        ("Sat, 28 Nov 2000 12:00:00 GMT", 1),
        ("Mon, 01 Jan 0001 00:00:00 GMT", 1),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 3600),
        ("x" * 10_000, 60),
    ],
)
def test_retry_after_is_clamped(value, expected) -> None:
    assert retry_after_seconds(value) == expected


async def test_revoke(session, simulator) -> None:
    auth, _ = make_auth(session, simulator)
    token = await auth.async_get_access_token()
    await auth.async_revoke()
    assert simulator.check_access(token)[0] is None
    assert auth.tokens is None
    await auth.async_revoke()  # nothing left: no call


async def test_member_api_calls(session, simulator) -> None:
    auth, _ = make_auth(session, simulator)
    api = CircleMemberApi(session, simulator.url, auth)
    s = simulator.seeded
    community = simulator.community
    community.post_message(s["dm"], s["ada"].id, "one")
    community.post_message(s["group"], s["alan"].id, "two\nlines")
    community.notify(42)
    member = await api.async_get_member()
    assert (member.id, member.name) == (42, "Grace Hopper")
    assert "grace@" not in repr(member)
    assert await api.async_get_new_notifications_count() == 1
    assert sorted(await api.async_get_unread_chat_room_uuids()) == sorted(
        [s["dm"].uuid, s["group"].uuid]
    )
    rooms = {r.uuid: r for r in await api.async_get_chat_rooms(per_page=1)}
    assert rooms[s["dm"].uuid].unread_messages_count == 1
    assert rooms[s["group"].uuid].name == "Analytical Engines"
    assert (await api.async_get_chat_room(s["dm"].uuid)).id == s["dm"].id
    page = await api.async_get_messages(s["group"].uuid)
    assert [m.body for m in page.messages] == ["two\nlines"]
    await api.async_mark_chat_room_read(s["dm"].uuid)
    assert await api.async_get_unread_chat_room_uuids() == [s["group"].uuid]
    sent = await api.async_send_message(s["group"].uuid, "hello\nworld")
    assert sent.creation_uuid and sent.sent_at is not None
    page = await api.async_get_messages(
        s["group"].uuid, around_id=page.messages[0].id, previous=0, following=5
    )
    assert [m.body for m in page.messages] == ["two\nlines", "hello\nworld"]
    assert (
        page.messages[1].sender is not None
        and page.messages[1].sender.community_member_id == 42
    )
    await api.async_reset_new_notifications_count()
    assert await api.async_get_new_notifications_count() == 0
    community.notify(42)
    await api.async_mark_all_notifications_read()
    assert await api.async_get_new_notifications_count() == 0
    assert await api.async_get_unread_chat_thread_ids() == []


async def test_expired_token_is_renewed_once_and_retried(session, simulator) -> None:
    auth, saved = make_auth(session, simulator)
    api = CircleMemberApi(session, simulator.url, auth)
    await api.async_get_member()
    simulator.expire_access_tokens()
    assert (await api.async_get_member()).id == 42
    assert len(saved) == 2


async def test_persistent_401_raises_auth_error(session, simulator) -> None:
    api = CircleMemberApi(session, simulator.url, StaticAccessToken("not-a-token"))
    with pytest.raises(CircleAuthenticationError):
        await api.async_get_member()
    assert "not-a-token" not in repr(api._auth)


async def test_rest_429_blocks_further_calls_until_retry_after(
    session, simulator
) -> None:
    auth, _ = make_auth(session, simulator)
    api = CircleMemberApi(session, simulator.url, auth)
    simulator.add_fault("rest", 429, retry_after="0.3")
    with pytest.raises(CircleRateLimitError):
        await api.async_get_member()
    calls = len(simulator.requests)
    with pytest.raises(CircleRateLimitError):
        await api.async_get_member()
    assert len(simulator.requests) == calls  # not even sent
    # 0.3 s is clamped to the 1 s floor.
    assert 0.5 < api._blocked_until - time.monotonic() <= 1.0
    api._blocked_until -= 1.0
    assert (await api.async_get_member()).id == 42


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, CircleConnectionError), (503, CircleConnectionError), (404, CircleApiError)],
)
async def test_rest_errors(session, simulator, status, error) -> None:
    auth, _ = make_auth(session, simulator)
    api = CircleMemberApi(session, simulator.url, auth)
    simulator.add_fault("rest", status, count=1)
    with pytest.raises(error):
        await api.async_get_new_notifications_count()
    assert await api.async_get_new_notifications_count() == 0


async def test_unknown_room(session, simulator) -> None:
    auth, _ = make_auth(session, simulator)
    api = CircleMemberApi(session, simulator.url, auth)
    with pytest.raises(CircleApiError) as info:
        await api.async_mark_chat_room_read("no-such-room")
    assert info.value.status == 404


def test_auth_needs_a_member() -> None:
    with pytest.raises(ValueError):
        CircleAuth(None, "http://x", "app")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sim_config",
    [SimConfig(ping_interval=0.2, refresh_bearer="refresh_token", access_ttl=1)],
)
async def test_no_secret_in_any_log_line(harness_factory, simulator, caplog) -> None:
    """A whole session with mints, refreshes, refusals and reconnects logs no token."""
    from datetime import timedelta

    caplog.set_level(logging.DEBUG)
    harness = harness_factory(
        refresh_margin=timedelta(seconds=0.5), min_refresh_interval=0.1
    )
    harness.start()
    await harness.ready()
    simulator.revoke_tokens("access")
    simulator.drop_connections()
    await harness.ready(connections=2)
    simulator.add_fault("refresh", 429, retry_after="0.1")
    await asyncio.sleep(1.2)
    await harness.api.async_get_member()
    simulator.revoke_tokens("refresh")
    simulator.expire_access_tokens()
    await harness.api.async_get_member()
    simulator.rotate_app_token()
    simulator.revoke_tokens("refresh")
    simulator.revoke_tokens("access")
    with pytest.raises(CircleAuthenticationError) as info:
        await harness.api.async_get_member()
    secrets = {simulator.app_token, *simulator.access_tokens, *simulator.refresh_tokens}
    text = (
        caplog.text
        + str(info.value)
        + repr(harness.auth)
        + repr(harness.cable)
        + repr(harness.auth.tokens)
    )
    assert len(harness.saved_tokens) >= 3
    for secret in secrets:
        assert secret not in text
        assert secret[:16] not in text


@pytest.mark.parametrize(
    ("call", "body"),
    [
        (lambda api: api.async_get_member(), {"name": "no id"}),
        (lambda api: api.async_get_new_notifications_count(), {}),
        (lambda api: api.async_get_unread_chat_room_uuids(), {"chat_rooms": "x"}),
        (lambda api: api.async_get_chat_rooms(), {"rooms": []}),
        (lambda api: api.async_get_chat_room("u"), {"chat_room": {}}),
        (lambda api: api.async_get_messages("u"), {"records": None}),
    ],
)
async def test_unexpected_answers_are_clear_errors(
    session, simulator, call, body
) -> None:
    auth, _ = make_auth(session, simulator)
    api = CircleMemberApi(session, simulator.url, auth)
    simulator.add_fault("rest", 200, body=body)
    with pytest.raises(CircleApiError, match="answer has no"):
        await call(api)
    assert "CircleMemberApi(" in repr(api) and simulator.app_token not in repr(api)


async def test_unread_rooms_as_objects_and_threads_tolerated(
    session, simulator
) -> None:
    auth, _ = make_auth(session, simulator)
    api = CircleMemberApi(session, simulator.url, auth)
    simulator.add_fault(
        "rest", 200, body={"chat_rooms": [{"uuid": "a"}, "b", {"x": 1}]}
    )
    assert await api.async_get_unread_chat_room_uuids() == ["a", "b"]
    simulator.add_fault("rest", 200, body={"chat_thread_ids": "nope"})
    assert await api.async_get_unread_chat_thread_ids() == []


async def test_renewed_token_refused_too_is_an_auth_error(session, simulator) -> None:
    auth, _ = make_auth(session, simulator)
    api = CircleMemberApi(session, simulator.url, auth)
    simulator.add_fault("rest", 401, count=2)
    with pytest.raises(CircleAuthenticationError, match="refused"):
        await api.async_get_member()


# --- Timing guards (issue 11) ---------------------------------------------------------------


def _refreshes(simulator) -> int:
    return sum(
        r["path"].endswith(("/refresh", "/auth_token")) for r in simulator.requests
    )


async def _run_refresher(
    auth: CircleAuth, seconds: float, until: Callable[[], bool] | None = None
) -> None:
    """Run the refresher for `seconds`, then on until `until()` holds (the passes it needs).

    The passes are at least 1 s apart, but each also waits for the simulator: under load a
    pass due just inside `seconds` can come just after it.
    """
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(auth.async_run_refresher(stop))
    try:
        await asyncio.sleep(seconds)
        if until is not None:
            await wait_for(until)
    finally:
        stop.set()
        await asyncio.wait_for(task, 2)


@pytest.mark.parametrize("ttl", [-3600.0, 0.0, 10.0])
async def test_refresher_never_storms_on_an_expiry_already_due(
    session, simulator, ttl, caplog
) -> None:
    """Expiry in the past or inside the margin (a clock ahead): renew now, then wait."""
    caplog.set_level(logging.DEBUG)
    simulator.config.access_ttl = ttl
    auth, saved = make_auth(session, simulator)
    await _run_refresher(auth, 0.5)
    assert _refreshes(simulator) == 1  # the mint; then 30 s of quiet
    assert len(saved) == 1
    assert 29 <= auth.seconds_until_refresh() <= 30
    assert "Traceback" not in caplog.text


async def test_renewals_of_tokens_already_due_back_off(session, simulator) -> None:
    simulator.config.access_ttl = -3600.0
    auth, saved = make_auth(session, simulator, min_refresh_interval=0.1)
    await _run_refresher(auth, 1.6, until=lambda: len(saved) >= 2)
    # At least a second between passes, and the spacing doubles: a handful, not thousands.
    assert 2 <= len(saved) <= 3
    assert auth.schedule.spacing >= 0.2
    auth.schedule.last_renewal = None
    await auth.async_get_access_token()
    assert auth.seconds_until_refresh() > 0  # spacing stays, however often it is asked


async def test_a_token_refused_by_the_server_is_renewed_at_once(
    session, simulator
) -> None:
    """The spacing is for proactive renewals: a rejected token is renewed regardless."""
    auth, saved = make_auth(session, simulator)
    first = await auth.async_get_access_token()
    second = await auth.async_invalidate(first)
    assert second != first and len(saved) == 2


@pytest.mark.parametrize("retry_after", ["0", "Mon, 01 Jan 1990 00:00:00 GMT"])
async def test_refresher_waits_at_least_a_second_after_429(
    session, simulator, retry_after, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    auth, _ = make_auth(session, simulator, min_refresh_interval=0.0)
    await auth.async_get_access_token()
    auth._tokens = dataclasses.replace(
        auth.tokens, access_token_expires_at=datetime.now(UTC)
    )
    simulator.add_fault("refresh", 429, count=100, retry_after=retry_after)
    before = _refreshes(simulator)
    await _run_refresher(auth, 1.5)
    assert 1 <= _refreshes(simulator) - before <= 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]


async def test_refresher_quiet_on_server_errors(session, simulator, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    auth, _ = make_auth(session, simulator, min_refresh_interval=0.0)
    await auth.async_get_access_token()
    auth._tokens = dataclasses.replace(
        auth.tokens, access_token_expires_at=datetime.now(UTC)
    )
    simulator.add_fault("refresh", 503, count=100)
    before = _refreshes(simulator)
    await _run_refresher(auth, 0.5)
    assert _refreshes(simulator) - before == 1  # then a second's wait, doubling
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(502, None, [1.0, 2.0, 4.0]), (429, "3", [3.0, 3.0, 4.0])],
)
async def test_failed_renewals_are_retried_fast_then_spaced_after_success(
    session, simulator, monkeypatch, status, retry_after, expected
) -> None:
    """1 s doubling (never before Retry-After), not the 30 s meant for successful renewals."""
    chosen: list[float] = []
    real = auth_module.renewal_delay

    def recording(*args, **kwargs) -> float:
        chosen.append(real(*args, **kwargs))
        return 0.0  # the refresher still waits its 1 s floor: keep the test short

    monkeypatch.setattr(auth_module, "renewal_delay", recording)
    auth, saved = make_auth(session, simulator)
    await auth.async_get_access_token()
    auth._tokens = dataclasses.replace(
        auth.tokens, access_token_expires_at=datetime.now(UTC)
    )
    auth.schedule.last_renewal = None
    simulator.config.access_ttl = (
        0.0  # the renewed token is due at once: spacing decides
    )
    simulator.add_fault("refresh", status, count=3, retry_after=retry_after)
    await _run_refresher(auth, 3.6, until=lambda: len(saved) == 2)
    assert chosen == expected
    assert len(saved) == 2  # the fourth attempt worked
    assert 29 <= auth.seconds_until_refresh() <= 30  # now the spacing applies


async def test_mint_422_retries_like_a_server_error(session, simulator) -> None:
    simulator.add_fault("mint", 422, count=1)
    auth, _ = make_auth(session, simulator)
    with pytest.raises(CircleConnectionError, match="422"):
        await auth.async_get_access_token()
    assert await auth.async_get_access_token()  # the next attempt works


def _jwt(**claims) -> str:
    import base64
    import json

    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"h.{payload}.s"


@pytest.mark.parametrize(
    "fields",
    [
        {"access_token": _jwt(exp=1e20)},
        {"access_token": _jwt(exp=-1e20)},
        {"access_token": _jwt(exp=float("inf"))},
        {"access_token": _jwt(exp=True)},
        {"access_token": _jwt(exp="2024")},
        {"access_token": _jwt(), "access_token_expires_at": "0001-01-01T00:00:00Z"},
        {"access_token": _jwt(), "access_token_expires_at": "9999-12-31T23:59:59Z"},
        {
            "access_token": _jwt(),
            "access_token_expires_at": "0001-01-01T00:00:00+01:00",
        },
        {"access_token": _jwt(), "access_token_expires_at": 1e300},
        {"access_token": _jwt(), "access_token_expires_at": ["x"]},
        {"access_token": "no-dots-at-all"},
        {"access_token": "a." + "A" * 100_000 + ".b"},
    ],
)
def test_token_parsing_never_raises_on_junk_expiry(fields) -> None:
    tokens = TokenSet.from_response(
        {"refresh_token": "r", "refresh_token_expires_at": "0001-01-01", **fields}
    )
    left = tokens.access_token_expires_at - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(hours=1)
    assert tokens.refresh_token_expires_at is None
    assert TokenSet.from_dict(tokens.as_dict()) == tokens


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (7, 7),
        ("7", 7),
        (True, None),
        ("--5", None),
        (-1, None),
        (2**63, None),
        (0, None),
    ],
)
def test_token_member_ids_are_positive_int64(member, expected) -> None:
    tokens = TokenSet.from_response(
        {
            "access_token": _jwt(),
            "refresh_token": "r",
            "community_member_id": member,
            "community_id": member,
        }
    )
    assert tokens.community_member_id == expected
    assert tokens.community_id == expected
