"""Waiting for the first of several wake-ups (stop, a new token, a subscribe, a deadline)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any


async def wait_first(
    awaitables: Iterable[Awaitable[Any]], timeout: float | None
) -> None:
    """Return once one of `awaitables` is done or `timeout` passed; the others are cancelled."""
    waiters = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(
            waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
