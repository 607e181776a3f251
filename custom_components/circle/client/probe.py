"""Connection test for users (Circle's websocket guide, in Python): prints JSON lines.

    python -m custom_components.circle.client.probe --community URL --app-token T --member-id N
    python -m custom_components.circle.client.probe --cable-url URL --access-token T --member-id N

Exit 0 after --seconds or Ctrl-C; 2 when authentication fails; 3 when the cable cannot connect.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
import contextlib
import dataclasses
from datetime import datetime
import json
import signal
import sys
from typing import TYPE_CHECKING, Any

import aiohttp

from .auth import AccessTokenProvider, CircleAuth, StaticAccessToken
from .cable import CableOptions, CircleCable, ConnectionState, ConnectionStatus
from .errors import CircleError

if TYPE_CHECKING:
    from .models import CableEvent
from .protocol import cable_url_for

EXIT_AUTH = 2
EXIT_CONNECT = 3


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "raw"
        }
    return value


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(_jsonable(obj)), flush=True)  # noqa: T201 - the probe's output


def build_parser() -> argparse.ArgumentParser:
    """Arguments as documented in the README."""
    parser = argparse.ArgumentParser(
        prog="circle-probe", description="Test a Circle cable connection."
    )
    parser.add_argument(
        "--community", help="community address, e.g. https://app.circle.so"
    )
    parser.add_argument("--app-token", help="Headless Auth app token")
    parser.add_argument("--member-id", type=int)
    parser.add_argument("--email")
    parser.add_argument("--cable-url", help="cable URL (with --access-token)")
    parser.add_argument("--access-token", help="a member access token")
    parser.add_argument(
        "--origin", help="Origin header (default: the community address)"
    )
    parser.add_argument(
        "--room", type=int, action="append", default=[], help="also follow this room id"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after this many seconds"
    )
    return parser


async def run(args: argparse.Namespace) -> int:
    """Connect, print states and events, return the exit code."""
    async with aiohttp.ClientSession() as session:
        auth: AccessTokenProvider
        if args.access_token:
            if not (args.cable_url and args.member_id is not None):
                _print(
                    {
                        "kind": "error",
                        "message": "--access-token needs --cable-url and --member-id",
                    }
                )
                return 64
            auth = StaticAccessToken(args.access_token)
            cable_url = args.cable_url
            member_id = args.member_id
            origin = args.origin
        else:
            if not (
                args.community
                and args.app_token
                and (args.member_id is not None or args.email)
            ):
                _print(
                    {
                        "kind": "error",
                        "message": "give --community, --app-token and --member-id or --email",
                    }
                )
                return 64
            circle_auth = CircleAuth(
                session,
                args.community,
                args.app_token,
                member_id=args.member_id,
                email=args.email,
            )
            try:
                await circle_auth.async_get_access_token()
            except CircleError as err:
                _print({"kind": "error", "message": str(err)})
                return (
                    EXIT_AUTH
                    if "connect" not in type(err).__name__.lower()
                    else EXIT_CONNECT
                )
            auth = circle_auth
            member_id = circle_auth.member_id or 0
            cable_url = args.cable_url or cable_url_for(args.community)
            origin = args.origin or args.community
        cable = CircleCable(
            session,
            cable_url,
            auth,
            member_id,
            origin=origin,
            room_ids=args.room,
            options=CableOptions(),
        )
        outcome = {"code": 0, "connected": False}

        def on_state(status: ConnectionStatus) -> None:
            _print(
                {"kind": "state", "state": status.state.value, "reason": status.reason}
            )
            if status.state is ConnectionState.CONNECTED:
                outcome["connected"] = True
            if status.state is ConnectionState.AUTH_FAILED:
                outcome["code"] = EXIT_AUTH
                stopper.set()
            elif (
                status.state is ConnectionState.DISCONNECTED
                and not outcome["connected"]
                and cable.reconnects >= 2
            ):
                outcome["code"] = EXIT_CONNECT
                stopper.set()

        def on_event(event: CableEvent) -> None:
            _print(
                {
                    "kind": "event",
                    "channel": event.channel,
                    "event": event.name,
                    "data": event.data,
                }
            )

        cable.add_state_listener(on_state)
        cable.add_event_listener(on_event)
        cable.add_subscription_listener(
            lambda sub: _print(
                {
                    "kind": "subscription",
                    "channel": sub.channel,
                    "state": sub.state.value,
                }
            )
        )
        stopper = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stopper.set)
        task = loop.create_task(cable.run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopper.wait(), args.seconds)
        await cable.stop()
        await task
        return int(outcome["code"])


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/circle-probe."""
    return asyncio.run(run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
