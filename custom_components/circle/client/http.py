"""One place that turns Circle's HTTP answers into typed errors."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import email.utils
import json
import time
from typing import Any

import aiohttp
from yarl import URL

from .errors import CircleConnectionError, CircleRateLimitError

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRY_AFTER = 60.0


def retry_after_seconds(
    value: str | None, default: float = DEFAULT_RETRY_AFTER
) -> float:
    """Parse Retry-After (delta seconds or HTTP date); Circle suggests 60 s when absent."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def error_message(body: Any) -> str:
    """Circle's error text ({"success": false, "message": ...}), or "" when there is none."""
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error")
        if isinstance(message, str):
            return message
    return ""


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    json_body: Any = None,
    params: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[int, Any]:
    """Send one request; return (status, parsed body). Raise only for transport errors and 429."""
    try:
        async with asyncio.timeout(timeout):
            async with session.request(
                method, url, headers=headers, json=json_body, params=params
            ) as response:
                text = await response.text()
                status = response.status
                retry_after = response.headers.get("Retry-After")
    except TimeoutError as err:
        raise CircleConnectionError(
            f"Timed out calling Circle ({method} {_path(url)})"
        ) from err
    except aiohttp.ClientError as err:
        raise CircleConnectionError(
            f"Cannot reach Circle ({method} {_path(url)}): {type(err).__name__}"
        ) from err
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = None
    if status == 429:
        delay = retry_after_seconds(retry_after)
        raise CircleRateLimitError(
            f"Circle rate limit reached ({method} {_path(url)}); retry in {delay:.0f} s",
            delay,
        )
    if status >= 500:
        raise CircleConnectionError(f"Circle answered {status} ({method} {_path(url)})")
    return status, body


def _path(url: str) -> str:
    # Only the path: never a query string.
    return URL(url).path
