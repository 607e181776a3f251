"""The probe's check of the server itself: which cable server, and does it replay history.

Two short raw sockets: the first offers AnyCable's extended protocol, reads the server's
version header, the negotiated subprotocol and the welcome's sid, and subscribes to each
channel with a history request (does it answer `confirm_history`?). The second asks to restore
the first one's session (does the welcome say `restored`, and which channels came back?).
The sid works as a short-lived credential on AnyCable (a restore skips authentication), so only
its first characters and length are ever printed (`redact_sid`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import contextlib
import json
from typing import Any, Final

import aiohttp

from .reliable import EXT_PROTOCOL, OFFERED_PROTOCOLS, ReliableStreams, redact_sid

CHECK_TIMEOUT: Final = 3.0
CONNECT_TIMEOUT: Final = 10.0

Emit = Callable[[dict[str, Any]], None]


async def _open(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> aiohttp.ClientWebSocketResponse | None:
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            return await session.ws_connect(
                url, headers=headers, protocols=OFFERED_PROTOCOLS, autoping=True
            )
    except (aiohttp.ClientError, OSError, ValueError, TimeoutError):
        return None


async def _next(
    ws: aiohttp.ClientWebSocketResponse, want: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """Wait for a frame (JSON object) that `want` accepts; None after CHECK_TIMEOUT."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError, RecursionError):
                    frame = json.loads(msg.data)
                    if isinstance(frame, dict) and want(frame):
                        return frame
    except TimeoutError:
        pass
    return None


def _answer(ident: str, kinds: tuple[str, ...]) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("identifier") == ident and f.get("type") in kinds


async def _history(
    ws: aiohttp.ClientWebSocketResponse, state: ReliableStreams, ident: str
) -> str:
    """Subscribe with a history request; say what became of it."""
    await ws.send_str(state.subscribe_command(ident))
    sub = await _next(
        ws, _answer(ident, ("confirm_subscription", "reject_subscription"))
    )
    if sub is None or sub["type"] == "reject_subscription":
        return "not_subscribed" if sub is None else "subscription_rejected"
    answer = await _next(ws, _answer(ident, ("confirm_history", "reject_history")))
    if answer is None:
        return "unanswered"
    return "confirmed" if answer["type"] == "confirm_history" else "rejected"


async def check_server(
    session: aiohttp.ClientSession,
    cable_url: str,
    headers: Mapping[str, str],
    channels: Mapping[str, str],
    emit: Emit,
) -> dict[str, Any]:
    """Report the server, and per channel (name -> identifier) history and restore."""
    state = ReliableStreams()
    ws = await _open(session, cable_url, dict(headers))
    if ws is None:
        return {}
    response = getattr(ws, "_response", None)
    state.connected(ws.protocol, getattr(response, "headers", None))
    welcome = await _next(ws, lambda f: f.get("type") in ("welcome", "disconnect"))
    if welcome is not None and welcome.get("type") == "welcome":
        state.on_welcome(welcome)
    sid = state.sid
    report: dict[str, Any] = {
        "flavour": state.flavour,
        "version": state.server_version,
        "protocol": state.protocol,
        "sid": redact_sid(welcome.get("sid") if welcome else None),
        "history": {},
        "session_restore": {},
    }
    try:
        if state.protocol == EXT_PROTOCOL and welcome is not None:
            for name, ident in channels.items():
                report["history"][name] = await _history(ws, state, ident)
        else:
            report["history"] = dict.fromkeys(channels, "unsupported")
    finally:
        await ws.close()
    if sid:
        report["session_restore"] = await _restore(
            session, cable_url, headers, state, channels
        )
    else:
        report["session_restore"] = dict.fromkeys(channels, False)
    emit({"kind": "check", "check": "server", **report})
    return report


async def _restore(
    session: aiohttp.ClientSession,
    cable_url: str,
    headers: Mapping[str, str],
    state: ReliableStreams,
    channels: Mapping[str, str],
) -> dict[str, bool]:
    ws = await _open(session, cable_url, {**headers, **state.restore_headers()})
    if ws is None:
        return dict.fromkeys(channels, False)
    # As the cable does: this handshake sent the sid, so a `restored` welcome is ours.
    state.connected(
        ws.protocol, getattr(getattr(ws, "_response", None), "headers", None)
    )
    try:
        welcome = await _next(ws, lambda f: f.get("type") in ("welcome", "disconnect"))
        restored = (
            state.on_welcome(welcome)
            if welcome is not None and welcome.get("type") == "welcome"
            else ()
        )
    finally:
        await ws.close()
    return {name: ident in restored for name, ident in channels.items()}
