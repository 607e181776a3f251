"""A hostile Circle server: every answer below gives a typed CircleError or a sane value.

Each case is served by the simulator's fault controls on 127.0.0.1 (raw bytes, any status,
any header) to the real client: the Headless Auth mint and refresh calls and the member API.
After each one: no exception other than a CircleError, no secret in the error or the log, no
traceback and nothing above WARNING in the log, and no redirect ever followed.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import functools
import html
import json
import logging
import re
import struct
import time
import tracemalloc
from typing import Any
import urllib.parse
import zlib

from aiohttp import web
import pytest

from custom_components.circle.client import (
    CircleApiError,
    CircleAuth,
    CircleAuthenticationError,
    CircleConnectionError,
    CircleError,
    CircleMemberApi,
    CircleMemberNotFoundError,
    CircleNotEligibleError,
    CircleRateLimitError,
    StaticAccessToken,
)
from custom_components.circle.client.errors import CircleInvalidInputError
from custom_components.circle.client.http import MAX_BODY_BYTES
from custom_components.circle.client.redact import (
    redact_text,
    redact_value,
    secret_pattern,
)


def jwt(**claims: Any) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    return f"eyJhbGciOiJIUzI1NiJ9.{payload.decode()}.c2lnbmF0dXJlc2lnbmF0dXJl"


def tokens(**overrides: Any) -> bytes:
    """A mint answer, with fields replaced (a value of ... removes the field)."""
    body: dict[str, Any] = {
        "access_token": jwt(community_member_id=42, community_id=1),
        "refresh_token": "hostile-refresh-token-0123456789",
        "access_token_expires_at": (datetime.now(UTC) + timedelta(hours=1))
        .isoformat()
        .replace("+00:00", "Z"),
        "refresh_token_expires_at": None,
        "community_member_id": 42,
        "community_id": 1,
    }
    for key, value in overrides.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body, allow_nan=True).encode()


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


HUGE = b'{"access_token":"' + b"a" * (MAX_BODY_BYTES + 10) + b'"}'
FAR_FUTURE = "Fri, 31 Dec 9999 23:59:59 GMT"
PAST = "Mon, 01 Jan 1990 00:00:00 GMT"
HTML = {"Content-Type": "text/html"}
AN_HOUR = timedelta(hours=1)


def expires_in_about_an_hour(auth: CircleAuth) -> bool:
    assert auth.tokens is not None
    left = auth.tokens.access_token_expires_at - datetime.now(UTC)
    return timedelta(minutes=50) < left < timedelta(minutes=70)


@dataclass
class Case:
    """One hostile answer: where it is served, what the client must make of it."""

    id: str
    target: str  # mint | refresh | rest
    status: int
    raw: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    call: str = "mint"  # mint | refresh | a CircleMemberApi method name
    args: tuple[Any, ...] = ()
    error: type[Exception] | None = None  # None: a value comes back
    check: Callable[[Any, CircleAuth, Any], bool] | None = None
    retry_after: float | None = None
    count: int = 1


def mint(id_: str, status: int, raw: bytes = b"", **kw: Any) -> Case:
    return Case(id_, "mint", status, raw, call="mint", **kw)


def refresh(id_: str, status: int, raw: bytes = b"", **kw: Any) -> Case:
    return Case(id_, "refresh", status, raw, call="refresh", **kw)


def rest(id_: str, call: str, status: int, raw: bytes = b"", **kw: Any) -> Case:
    return Case(id_, "rest", status, raw, call=call, **kw)


def ok_expiry(result: Any, auth: CircleAuth, api: Any) -> bool:
    return (
        isinstance(result, str)
        and expires_in_about_an_hour(auth)
        and auth.seconds_until_refresh() >= 29  # renewed now, then wait: no storm
    )


def member_42(result: Any, auth: CircleAuth, api: Any) -> bool:
    return isinstance(result, str) and auth.member_id == 42


CASES: list[Case] = [
    # --- Headless Auth: mint --------------------------------------------------------------
    mint("mint-200-not-utf8", 200, b"\xff\xfe{\x80", error=CircleApiError),
    mint(
        "mint-200-html",
        200,
        b"<html><body>Hi</body></html>",
        error=CircleApiError,
        headers=HTML,
    ),
    mint("mint-200-empty", 200, b"", error=CircleApiError),
    mint("mint-200-null", 200, b"null", error=CircleApiError),
    mint("mint-200-array", 200, b"[1, 2]", error=CircleApiError),
    mint("mint-200-string", 200, b'"access_token"', error=CircleApiError),
    mint("mint-200-truncated", 200, b'{"access_token": "eyJ', error=CircleApiError),
    mint(
        "mint-200-deep-arrays",
        200,
        b"[" * 100_000 + b"]" * 100_000,
        error=CircleApiError,
    ),
    mint("mint-200-deep-objects", 200, deep(200), error=CircleApiError),
    mint("mint-200-huge", 200, HUGE, error=CircleApiError),
    mint(
        "mint-200-huge-int",
        200,
        b'{"access_token": ' + b"9" * 5000 + b"}",
        error=CircleApiError,
    ),
    mint("mint-200-token-int", 200, tokens(access_token=5), error=CircleApiError),
    mint("mint-200-token-bool", 200, tokens(access_token=True), error=CircleApiError),
    mint("mint-200-token-empty", 200, tokens(access_token=""), error=CircleApiError),
    mint(
        "mint-200-refresh-list", 200, tokens(refresh_token=["x"]), error=CircleApiError
    ),
    mint("mint-200-no-refresh", 200, tokens(refresh_token=...), error=CircleApiError),
    mint(
        "mint-200-expiry-year-1",
        200,
        tokens(access_token_expires_at="0001-01-01T00:00:00Z"),
        check=ok_expiry,
    ),
    mint(
        "mint-200-expiry-year-9999",
        200,
        tokens(access_token_expires_at="9999-12-31T23:59:59-01:00"),
        check=ok_expiry,
    ),
    mint(
        "mint-200-expiry-junk",
        200,
        tokens(access_token_expires_at="tomorrow"),
        check=ok_expiry,
    ),
    mint(
        "mint-200-expiry-nan",
        200,
        tokens(access_token_expires_at=float("nan")),
        check=ok_expiry,
    ),
    mint(
        "mint-200-expiry-inf",
        200,
        tokens(access_token_expires_at=float("inf")),
        check=ok_expiry,
    ),
    mint(
        "mint-200-expiry-1e20",
        200,
        tokens(access_token_expires_at=1e20),
        check=ok_expiry,
    ),
    mint(
        "mint-200-jwt-exp-1e20",
        200,
        tokens(access_token_expires_at=..., access_token=jwt(exp=1e20)),
        check=ok_expiry,
    ),
    mint(
        "mint-200-jwt-exp-negative",
        200,
        tokens(access_token_expires_at=..., access_token=jwt(exp=-1e20)),
        check=ok_expiry,
    ),
    mint(
        "mint-200-jwt-exp-string",
        200,
        tokens(access_token_expires_at=..., access_token=jwt(exp="--5")),
        check=ok_expiry,
    ),
    mint(
        "mint-200-jwt-not-json",
        200,
        tokens(access_token_expires_at=..., access_token="a.bm90IGpzb24.c"),
        check=ok_expiry,
    ),
    mint(
        "mint-200-refresh-expiry-year-1",
        200,
        tokens(refresh_token_expires_at="0001-01-01T00:00:00+01:00"),
        check=ok_expiry,
    ),
    mint(
        "mint-200-member-bool",
        200,
        tokens(community_member_id=True, access_token=jwt()),
        check=member_42,
    ),
    mint(
        "mint-200-member-dashdash",
        200,
        tokens(community_member_id="--5", access_token=jwt()),
        check=member_42,
    ),
    mint(
        "mint-200-member-2-63",
        200,
        tokens(community_member_id=2**63, access_token=jwt()),
        check=member_42,
    ),
    mint(
        "mint-200-member-negative",
        200,
        tokens(community_member_id=-1, access_token=jwt(community_member_id=-1)),
        check=member_42,
    ),
    mint(
        "mint-200-community-float",
        200,
        tokens(community_id=1e308),
        check=lambda r, a, _: a.tokens.community_id == 1,  # from the JWT
    ),
    mint("mint-200-bom", 200, b"\xef\xbb\xbf" + tokens(), check=ok_expiry),
    mint("mint-401-not-utf8", 401, b"\xff\xfe\x00bad", error=CircleAuthenticationError),
    mint(
        "mint-401-echoes-app-token",
        401,
        b'{"message": "bad token {APP}"}',
        error=CircleAuthenticationError,
    ),
    mint(
        "mint-403-html",
        403,
        b"<h1>Forbidden</h1>",
        error=CircleNotEligibleError,
        headers=HTML,
    ),
    mint("mint-404-array", 404, b"[]", error=CircleMemberNotFoundError),
    mint(
        "mint-422-temporary",
        422,
        b'{"success": false, "message": "There was an error creating the token. Please contact support."}',
        error=CircleConnectionError,
    ),
    mint(
        "mint-400-long-message",
        400,
        json.dumps({"message": "x\n\x1b[31m" * 50_000}).encode(),
        error=CircleApiError,
    ),
    mint("mint-418", 418, b"I'm a teapot", error=CircleApiError),
    mint(
        "mint-429-zero",
        429,
        headers={"Retry-After": "0"},
        error=CircleRateLimitError,
        retry_after=1,
    ),
    mint(
        "mint-429-negative",
        429,
        headers={"Retry-After": "-1"},
        error=CircleRateLimitError,
        retry_after=1,
    ),
    mint(
        "mint-429-1e308",
        429,
        headers={"Retry-After": "1e308"},
        error=CircleRateLimitError,
        retry_after=3600,
    ),
    mint(
        "mint-429-inf",
        429,
        headers={"Retry-After": "inf"},
        error=CircleRateLimitError,
        retry_after=3600,
    ),
    mint(
        "mint-429-nan",
        429,
        headers={"Retry-After": "nan"},
        error=CircleRateLimitError,
        retry_after=3600,
    ),
    mint(
        "mint-429-past-date",
        429,
        headers={"Retry-After": PAST},
        error=CircleRateLimitError,
        retry_after=1,
    ),
    mint(
        "mint-429-far-future-date",
        429,
        headers={"Retry-After": FAR_FUTURE},
        error=CircleRateLimitError,
        retry_after=3600,
    ),
    mint(
        "mint-429-junk",
        429,
        headers={"Retry-After": "soon"},
        error=CircleRateLimitError,
        retry_after=60,
    ),
    mint("mint-500-not-utf8", 500, b"\xc3\x28\xa0\xa1", error=CircleConnectionError),
    mint(
        "mint-502-html",
        502,
        b"<html>Bad gateway</html>",
        error=CircleConnectionError,
        headers=HTML,
    ),
    mint(
        "mint-503-retry-after-huge",
        503,
        headers={"Retry-After": "1e308"},
        error=CircleConnectionError,
        retry_after=3600,
    ),
    mint(
        "mint-301-evil",
        301,
        headers={"Location": "{EVIL}/steal?token=stolen"},
        error=CircleConnectionError,
    ),
    mint(
        "mint-302-same-host",
        302,
        headers={"Location": "{SIM}/api/v1/headless/auth_token"},
        error=CircleConnectionError,
    ),
    mint(
        "mint-307-evil-credentials",
        307,
        headers={"Location": "http://user:pass@{EVILHOST}/x"},
        error=CircleConnectionError,
    ),
    mint(
        "mint-308-relative",
        308,
        headers={"Location": "/elsewhere"},
        error=CircleConnectionError,
    ),
    mint("mint-303-no-location", 303, error=CircleConnectionError),
    # --- Headless Auth: refresh -----------------------------------------------------------
    refresh(
        "refresh-200-html", 200, b"<html></html>", error=CircleApiError, headers=HTML
    ),
    refresh("refresh-200-deep", 200, b"[" * 5000 + b"]" * 5000, error=CircleApiError),
    refresh(
        "refresh-200-expiry-year-1",
        200,
        tokens(refresh_token=..., access_token_expires_at="0001-01-01T00:00:00Z"),
        check=ok_expiry,
    ),
    refresh(
        "refresh-200-jwt-exp-1e20",
        200,
        tokens(
            refresh_token=..., access_token_expires_at=..., access_token=jwt(exp=1e20)
        ),
        check=ok_expiry,
    ),
    refresh(
        "refresh-200-expired-already",
        200,
        tokens(refresh_token=..., access_token_expires_at="2001-01-01T00:00:00Z"),
        check=lambda r, a, _: a.seconds_until_refresh() >= 29,
    ),
    refresh(
        "refresh-401-expired",
        401,
        b'{"message": "The refresh token is expired. Please generate/get new auth token."}',
        check=ok_expiry,
    ),
    refresh("refresh-401-not-utf8", 401, b"\xff\xff", check=ok_expiry),
    refresh("refresh-404", 404, b"null", check=ok_expiry),
    refresh("refresh-422", 422, b"{}", check=ok_expiry),
    refresh("refresh-403", 403, b"\x00", error=CircleNotEligibleError),
    refresh(
        "refresh-429-nan",
        429,
        headers={"Retry-After": "nan"},
        error=CircleRateLimitError,
        retry_after=3600,
    ),
    refresh(
        "refresh-429-negative",
        429,
        headers={"Retry-After": "-100"},
        error=CircleRateLimitError,
        retry_after=1,
    ),
    refresh("refresh-500", 500, b"<html>", error=CircleConnectionError),
    refresh(
        "refresh-302-evil",
        302,
        headers={"Location": "{EVIL}/refresh"},
        error=CircleConnectionError,
    ),
    refresh(
        "refresh-404-echoes-refresh-token",
        404,
        b'{"message": "unknown {REFRESH}"}',
        check=ok_expiry,
    ),
    # --- Member API -----------------------------------------------------------------------
    rest(
        "member-200-id-bool",
        "async_get_member",
        200,
        b'{"id": true}',
        error=CircleApiError,
    ),
    rest(
        "member-200-id-dashdash",
        "async_get_member",
        200,
        b'{"id": "--5"}',
        error=CircleApiError,
    ),
    rest(
        "member-200-id-2-63",
        "async_get_member",
        200,
        b'{"id": 9223372036854775808}',
        error=CircleApiError,
    ),
    rest(
        "member-200-id-negative",
        "async_get_member",
        200,
        b'{"id": -3}',
        error=CircleApiError,
    ),
    rest(
        "member-200-id-string",
        "async_get_member",
        200,
        b'{"id": "7"}',
        check=lambda r, a, _: r.id == 7,
    ),
    rest("member-200-empty", "async_get_member", 200, b"", error=CircleApiError),
    rest("member-200-deep", "async_get_member", 200, deep(100), error=CircleApiError),
    rest("member-200-huge", "async_get_member", 200, HUGE, error=CircleApiError),
    rest(
        "member-200-huge-int",
        "async_get_member",
        200,
        b'{"id": ' + b"9" * 5000 + b"}",
        error=CircleApiError,
    ),
    rest(
        "member-401-twice-not-utf8",
        "async_get_member",
        401,
        b"\xfe\xff",
        count=2,
        error=CircleAuthenticationError,
    ),
    rest(
        "member-404-echoes-access-token",
        "async_get_member",
        404,
        b'{"message": "{ACCESS}"}',
        error=CircleApiError,
    ),
    rest(
        "member-429-far-future",
        "async_get_member",
        429,
        headers={"Retry-After": FAR_FUTURE},
        error=CircleRateLimitError,
        retry_after=3600,
    ),
    rest(
        "member-500-html",
        "async_get_member",
        500,
        b"<html>",
        error=CircleConnectionError,
        headers=HTML,
    ),
    rest(
        "member-503-retry-after-zero",
        "async_get_member",
        503,
        headers={"Retry-After": "0"},
        error=CircleConnectionError,
        retry_after=1,
    ),
    rest(
        "member-301-evil",
        "async_get_member",
        301,
        headers={"Location": "{EVIL}/api"},
        error=CircleConnectionError,
    ),
    rest(
        "count-200-bool",
        "async_get_new_notifications_count",
        200,
        b'{"new_notifications_count": true}',
        error=CircleApiError,
    ),
    rest(
        "count-200-negative",
        "async_get_new_notifications_count",
        200,
        b'{"new_notifications_count": -1}',
        error=CircleApiError,
    ),
    rest(
        "count-200-float",
        "async_get_new_notifications_count",
        200,
        b'{"new_notifications_count": 1e308}',
        error=CircleApiError,
    ),
    rest(
        "count-200-2-63",
        "async_get_new_notifications_count",
        200,
        b'{"new_notifications_count": 9223372036854775808}',
        error=CircleApiError,
    ),
    rest(
        "count-200-zero",
        "async_get_new_notifications_count",
        200,
        b'{"new_notifications_count": 0}',
        check=lambda r, a, _: r == 0,
    ),
    rest(
        "count-200-array",
        "async_get_new_notifications_count",
        200,
        b"[0]",
        error=CircleApiError,
    ),
    rest(
        "unread-200-unsafe-uuids",
        "async_get_unread_chat_room_uuids",
        200,
        b'{"chat_rooms": ["../x", "ok-1", 5, null, {"uuid": "a/b"}, {"uuid": "ok-2"}, "'
        + b"a" * 65
        + b'"]}',
        check=lambda r, a, _: r == ["ok-1", "ok-2"],
    ),
    rest(
        "unread-200-null",
        "async_get_unread_chat_room_uuids",
        200,
        b"null",
        error=CircleApiError,
    ),
    rest(
        "threads-200-junk-ids",
        "async_get_unread_chat_thread_ids",
        200,
        b'{"chat_thread_ids": [true, -1, "3", 9223372036854775808, 4, "--5", 1.5]}',
        check=lambda r, a, _: r == [3, 4],
    ),
    rest(
        "rooms-200-unsafe-records",
        "async_get_chat_rooms",
        200,
        b'{"records": [{"uuid": "../../x"}, {"uuid": "ok", "id": true, "unread_messages_count": "--5"}, 7, null], "has_next_page": false}',
        check=lambda r, a, _: [(x.uuid, x.id, x.unread_messages_count) for x in r]
        == [("ok", None, 0)],
    ),
    rest(
        "rooms-200-records-object",
        "async_get_chat_rooms",
        200,
        b'{"records": {"uuid": "x"}}',
        error=CircleApiError,
    ),
    rest(
        "messages-200-junk-records",
        "async_get_messages",
        200,
        b'{"records": [{"id": "--5"}, {"id": 1, "sent_at": "0001-01-01T00:00:00Z", "edited_at": 1e20, "chat_room_uuid": "a/b"}, {"id": true}, "x"], "first_id": "x", "last_id": -1}',
        args=("room-1",),
        check=lambda r, a, _: [
            (m.id, m.sent_at, m.edited_at, m.chat_room_uuid) for m in r.messages
        ]
        == [(1, None, None, None)]
        and r.first_id is None
        and r.last_id is None,
    ),
    rest(
        "messages-200-records-string",
        "async_get_messages",
        200,
        b'{"records": "x"}',
        args=("room-1",),
        error=CircleApiError,
    ),
    rest(
        "send-202-junk",
        "async_send_message",
        202,
        b'{"creation_uuid": 5, "parent_message_id": "--5", "sent_at": "9999-99-99"}',
        args=("room-1", "hi"),
        check=lambda r, a, _: (r.creation_uuid, r.parent_message_id, r.sent_at)
        == (None, None, None),
    ),
    rest(
        "room-200-unsafe-uuid",
        "async_get_chat_room",
        200,
        b'{"chat_room": {"uuid": "a?b=c"}}',
        args=("room-1",),
        error=CircleApiError,
    ),
]


@pytest.fixture
async def evil(socket_enabled: None) -> AsyncGenerator[dict[str, Any]]:
    """Another server on loopback that records every request a redirect could send it."""
    hits: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(
            {"path": request.path, "auth": request.headers.get("Authorization")}
        )
        return web.json_response({"access_token": "evil", "id": 1})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield {"url": f"http://127.0.0.1:{port}", "host": f"127.0.0.1:{port}", "hits": hits}
    await runner.cleanup()


def _fill(template: bytes | str, values: dict[str, str]) -> Any:
    for key, value in values.items():
        if isinstance(template, bytes):
            template = template.replace(key.encode(), value.encode())
        else:
            template = template.replace(key, value)
    return template


async def _run(
    case: Case, session: Any, simulator: Any, evil: dict[str, Any]
) -> tuple[Any, BaseException | None, CircleAuth, CircleMemberApi]:
    auth = CircleAuth(session, simulator.url, simulator.app_token, member_id=42)
    api = CircleMemberApi(session, simulator.url, auth)
    if case.call != "mint":
        await auth.async_get_access_token()
    assert auth.tokens is not None or case.call == "mint"
    values = {
        "{APP}": simulator.app_token,
        "{EVIL}": evil["url"],
        "{EVILHOST}": evil["host"],
        "{SIM}": simulator.url,
        "{ACCESS}": auth.tokens.access_token if auth.tokens else "",
        "{REFRESH}": auth.tokens.refresh_token if auth.tokens else "",
    }
    simulator.add_fault(
        case.target,
        case.status,
        case.count,
        raw=_fill(case.raw, values),
        headers={k: _fill(v, values) for k, v in case.headers.items()},
    )
    call: Callable[[], Awaitable[Any]]
    if case.call == "mint":
        call = auth.async_get_access_token
    elif case.call == "refresh":
        current = auth.tokens.access_token  # type: ignore[union-attr]

        async def call() -> Any:
            return await auth.async_invalidate(current)
    else:
        method = getattr(api, case.call)

        async def call() -> Any:
            return await method(*case.args)

    try:
        return await call(), None, auth, api
    except Exception as err:  # the test inspects it
        return None, err, auth, api


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_http_answer(
    case: Case, session, simulator, evil, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.circle")
    result, error, auth, api = await _run(case, session, simulator, evil)
    if case.error is None:
        assert error is None, f"{type(error).__name__}: {error}"
        assert case.check is not None and case.check(result, auth, api)
    else:
        assert isinstance(error, CircleError), repr(error)
        assert isinstance(error, case.error), repr(error)
        if case.retry_after is not None:
            assert getattr(error, "retry_after", None) == case.retry_after
    if isinstance(error, CircleRateLimitError) and case.target == "rest":
        assert api._blocked_until - time.monotonic() <= 3600
    # Secrets: none in the error, none in any log line, no redirect followed.
    secrets = {
        simulator.app_token,
        *simulator.access_tokens,
        *simulator.refresh_tokens,
        "stolen",
        "pass@",
    }
    text = str(error) + repr(error) + caplog.text + repr(auth) + repr(api)
    for secret in secrets:
        assert secret not in text
    assert len(str(error)) < 500
    assert evil["hits"] == []
    if 300 <= case.status < 400:
        assert "redirect" in str(error)
        assert (
            len(
                [
                    r
                    for r in simulator.requests
                    if r["path"].startswith("/api/v1/headless/auth_token")
                ]
            )
            == 1
        )  # the redirect was not followed
    # Quiet logs: no traceback, nothing at ERROR.
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert record.levelno < logging.ERROR, record.getMessage()
    assert "Traceback" not in caplog.text


def test_there_are_at_least_fifty_cases() -> None:
    assert len(CASES) >= 50
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.target for c in CASES} == {"mint", "refresh", "rest"}


async def test_redirect_message_names_the_host_only(session, simulator, evil) -> None:
    simulator.add_fault(
        "mint", 302, headers={"Location": evil["url"] + "/path?token=stolen"}
    )
    auth = CircleAuth(session, simulator.url, simulator.app_token, member_id=42)
    with pytest.raises(CircleConnectionError) as info:
        await auth.async_get_access_token()
    assert evil["host"] in str(info.value) or "127.0.0.1" in str(info.value)
    assert "stolen" not in str(info.value) and "/path" not in str(info.value)
    assert evil["hits"] == []


@pytest.mark.parametrize(
    "uuid", ["../x", "a/b", "a?b", "", "a" * 65, "a b", "a\n", None, 5, "%2e%2e"]
)
async def test_unsafe_room_uuids_never_reach_a_url(session, simulator, uuid) -> None:
    auth = CircleAuth(session, simulator.url, simulator.app_token, member_id=42)
    api = CircleMemberApi(session, simulator.url, auth)
    for call in (
        api.async_get_chat_room(uuid),
        api.async_get_messages(uuid),
        api.async_mark_chat_room_read(uuid),
        api.async_send_message(uuid, "x"),
    ):
        with pytest.raises(CircleInvalidInputError):
            await call
    assert simulator.requests == []
    with pytest.raises(
        ValueError
    ):  # also a ValueError, for callers that validate input
        await api.async_get_messages("ok", around_id=-1)
    with pytest.raises(CircleApiError):
        await api.async_send_message("ok", "x", parent_message_id=0)
    assert simulator.requests == []


# --- Echoed secrets in other encodings (issue 22, #3) ----------------------------------------


def _json_u(secret: str, upper: bool = False, every: int = 1) -> str:
    form = "\\u{:04X}" if upper else "\\u{:04x}"
    return "".join(
        form.format(ord(c)) if i % every == 0 else c for i, c in enumerate(secret)
    )


def _mixed_case_u(secret: str) -> str:
    return "".join(
        ("\\u{:04X}" if i % 2 else "\\u{:04x}").format(ord(c))
        for i, c in enumerate(secret)
    )


def _html(secret: str) -> str:
    return "".join(
        f"&#x{ord(c):X};" if i % 3 == 0 else f"&#{ord(c)};" if i % 3 == 1 else c
        for i, c in enumerate(secret)
    )


def _b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


ENCODINGS: dict[str, Callable[[str], str]] = {
    "json-u-lower": _json_u,
    "json-u-upper": lambda s: _json_u(s, upper=True),
    "json-u-mixed-case": _mixed_case_u,
    "json-u-some": lambda s: _json_u(s, every=3),
    "percent-lower": lambda s: "".join(f"%{b:02x}" for b in s.encode()),
    "percent-upper": lambda s: "".join(f"%{b:02X}" for b in s.encode()),
    "html-entities": _html,
    "base64": _b64,
    "base64-bearer": lambda s: _b64(f"Authorization: Bearer {s}"),
    "base64url-shifted": lambda s: base64.urlsafe_b64encode(b"x" + s.encode()).decode(),
    "hex": lambda s: s.encode().hex(),
    "upper-case": str.upper,
    "json-in-json": lambda s: json.dumps('{"t": "' + _json_u(s) + '"}')[1:-1],
    "percent-of-json-escape": lambda s: urllib.parse.quote(_json_u(s)),
    "zero-width-joined": lambda s: "\\u200b".join(s),
}


def _reader_forms(text: str) -> list[str]:
    """What a reader could decode from text (independent of the client's own decoder)."""
    forms = [text]
    for _ in range(5):
        last = forms[-1]
        last = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), last)
        last = html.unescape(urllib.parse.unquote(last.replace("\\/", "/")))
        forms.append(last.replace("\u200b", ""))
    return [f.lower() for f in forms]


def _windows(value: str, size: int = 20) -> set[str]:
    value = value.lower()
    return {value[i : i + size] for i in range(max(1, len(value) - size + 1))}


def leaks(text: str, secret: str, encoding: str) -> bool:
    """Any 20 characters of the secret or of its encoding (messages are cut at 200).

    Windows that the encoding of another secret of the same length has too (a prefix such
    as "Authorization: Bearer ", and the base64 character that mixes it with the secret's
    first bits) say nothing about the secret and are not counted.
    """
    encode = ENCODINGS[encoding]
    own = _windows(encode(secret))
    for known in range(4):  # a base64 character can mix a prefix with the first bits
        own -= _windows(encode(secret[:known] + "~" * (len(secret) - known)))
    forms = _reader_forms(text)
    return any(w in text.lower() for w in own) or any(
        w in f for w in _windows(secret) for f in forms
    )


ECHO_TARGETS = {
    # target, status, call, error
    "mint-401": ("mint", 401, "mint", CircleAuthenticationError),
    "refresh-404": ("refresh", 404, "refresh", None),  # re-mints; the text is logged
    "rest-401": ("rest", 401, "async_get_member", None),  # renews; the text is logged
    "rest-422": ("rest", 422, "async_get_member", CircleApiError),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("target", list(ECHO_TARGETS))
async def test_an_encoded_echo_of_a_secret_is_redacted(
    target: str, encoding: str, session, simulator, caplog
) -> None:
    """The bearer or a body secret echoed in any encoding reaches no error and no log line."""
    caplog.set_level(logging.DEBUG, logger="custom_components.circle")
    where, status, call, error = ECHO_TARGETS[target]
    auth = CircleAuth(session, simulator.url, simulator.app_token, member_id=42)
    api = CircleMemberApi(session, simulator.url, auth)
    if where != "mint":
        await auth.async_get_access_token()
    assert auth.tokens is not None or where == "mint"
    secret = {
        "mint": simulator.app_token,
        "refresh": auth.tokens.refresh_token if auth.tokens else "",
        "rest": auth.tokens.access_token if auth.tokens else "",
    }[where]
    encoded = ENCODINGS[encoding](secret)
    raw = '{"message": "echo ' + encoded + '", "error": "' + encoded + '"}'
    simulator.add_fault(where, status, raw=raw.encode())
    result: Any = None
    caught: BaseException | None = None
    try:
        if call == "mint":
            result = await auth.async_get_access_token()
        elif call == "refresh":
            result = await auth.async_invalidate(auth.tokens.access_token)  # type: ignore[union-attr]
        else:
            result = await getattr(api, call)()
    except CircleError as err:
        caught = err
    if error is None:
        assert caught is None and result is not None
    else:
        assert isinstance(caught, error)
        assert "echo" in str(caught)  # the server's text is kept, the secret is not
    text = str(caught) + repr(caught) + caplog.text
    assert "echo" in text
    for known in {
        simulator.app_token,
        *simulator.access_tokens,
        *simulator.refresh_tokens,
    }:
        assert not leaks(text, known, encoding), (encoding, text)


def test_redaction_decodes_escaped_solidus_and_keeps_other_text() -> None:
    """`\\/` is JSON's escaped slash; text without a secret stays exactly as it was."""
    pattern = secret_pattern(["tok/en/with/slashes", "short"])
    echoed = redact_text("echo tok\\/en\\/with\\/slashes &amp; more", pattern)
    assert "tok/en" not in echoed and "with" not in echoed and "more" in echoed
    plain = "nothing secret: 100% &amp; \\u0041"
    assert redact_text(plain, pattern) is plain
    assert secret_pattern(["short", 5]) is None  # too short to be a token: not matched
    assert redact_value({"k": ["tok/en/with/slashes", 3]}, pattern) == {
        "k": ["<redacted>", 3]
    }


# --- Compressed bodies (issue 22, #11) -------------------------------------------------------

GIB = 1 << 30


@functools.cache
def gzip_bomb() -> bytes:
    """A valid gzip of 1 GiB of zeros in about 1 MiB, made without compressing 1 GiB.

    After a full flush deflate starts afresh, so every 1 MiB block of zeros compresses to the
    same bytes: one block is repeated, and the trailer's CRC and size are computed.
    """
    block = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    end = packer.flush()[:-8]  # the final empty block, without the (wrong) trailer
    crc = 0
    for _ in range(GIB // len(block)):
        crc = zlib.crc32(block, crc)
    count = GIB // len(block) - 1
    return first + again * count + end + struct.pack("<II", crc, GIB & 0xFFFFFFFF)


@pytest.fixture
async def compressing(socket_enabled: None) -> AsyncGenerator[dict[str, Any]]:
    """A loopback server that compresses whatever it is asked (answer set by the test)."""
    state: dict[str, Any] = {"seen": [], "body": b"", "encoding": "gzip"}

    async def answer(request: web.Request) -> web.StreamResponse:
        state["seen"].append(request.headers.get("Accept-Encoding"))
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/json",
                "Content-Encoding": state["encoding"],
            }
        )
        await response.prepare(request)
        body = state["body"]
        try:
            for start in range(0, len(body), 64 * 1024):
                await response.write(body[start : start + 64 * 1024])
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading: that is the point
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state["url"] = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


async def _get_member(session: Any, url: str) -> BaseException | Any:
    api = CircleMemberApi(session, url, StaticAccessToken("access-token-0123456789"))
    try:
        return await api.async_get_member()
    except CircleError as err:
        return err


@pytest.mark.parametrize("at_once", [1, 4])
async def test_a_gzip_bomb_is_refused_with_bounded_memory(
    session, compressing, at_once: int
) -> None:
    """Identity is asked for; a server that sends 1 MiB of gzip anyway (1 GiB inflated)
    gets a clear error, with the decompressed bytes capped while they are inflated."""
    compressing["body"] = gzip_bomb()
    assert len(compressing["body"]) < 1.1 * (1 << 20)
    tracemalloc.start()
    try:
        results = await asyncio.gather(
            *(_get_member(session, compressing["url"]) for _ in range(at_once))
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for result in results:
        assert isinstance(result, CircleApiError), result
        assert "too large" in str(result)
    assert peak < at_once * 10 * (1 << 20), f"peak {peak / (1 << 20):.1f} MiB"
    assert compressing["seen"] == ["identity"] * at_once


def _deflate(data: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return packer.compress(data) + packer.flush()


MEMBER = json.dumps({"id": 42, "name": "Ada", "email": "ada@example.com"}).encode()


@pytest.mark.parametrize(
    ("encoding", "body", "outcome"),
    [
        ("gzip", _deflate(MEMBER, 16 + zlib.MAX_WBITS), 42),
        ("x-gzip", _deflate(MEMBER, 16 + zlib.MAX_WBITS), 42),
        ("deflate", _deflate(MEMBER, zlib.MAX_WBITS), 42),
        ("deflate", _deflate(MEMBER, -zlib.MAX_WBITS), 42),  # raw deflate
        ("GZIP ", _deflate(MEMBER, 16 + zlib.MAX_WBITS), 42),
        ("br", b"\x1b\x00", "compressed (br), which is refused"),
        ("gzip, gzip", b"", "which is refused"),
        ("gzip", b"\x1f\x8b\x08\x00junkjunkjunk", "corrupt"),
        ("gzip", _deflate(bytes(MAX_BODY_BYTES + 1), 31), "too large"),
    ],
)
async def test_compressed_answers_are_inflated_or_refused(
    session, compressing, encoding: str, body: bytes, outcome: Any
) -> None:
    compressing["encoding"], compressing["body"] = encoding, body
    result = await _get_member(session, compressing["url"])
    if isinstance(outcome, int):
        assert not isinstance(result, BaseException), result
        assert result.id == outcome
    else:
        assert isinstance(result, CircleApiError) and outcome in str(result), result
