"""One place that turns Circle's HTTP answers into typed errors.

Hostile answers are expected: redirects are never followed (the request carries a token),
bodies are asked for uncompressed and read as bytes (a compressed one is inflated here, never
beyond the cap), JSON nested deeper than `MAX_JSON_DEPTH` or larger than `MAX_BODY_BYTES`
(after decompression) is refused, and `Retry-After` is clamped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import email.utils
import json
import logging
import re
import time
from typing import Any, Final
import zlib

import aiohttp
from yarl import URL

from .errors import CircleApiError, CircleConnectionError, CircleRateLimitError
from .redact import redact_value, secret_pattern
from .retry_after import clamp_retry_after

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRY_AFTER = 60.0
MAX_BODY_BYTES: Final = 8 * 1024 * 1024
MAX_JSON_DEPTH: Final = 64
MAX_MESSAGE_CHARS: Final = 200
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SAFE_HOST = re.compile(r"[^A-Za-z0-9.:\[\]-]")
# Bodies are asked for uncompressed; gzip and deflate are still undone, with a cap.
_PIECE: Final = 64 * 1024
_ENCODINGS: Final = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})


def retry_after_seconds(
    value: str | None, default: float = DEFAULT_RETRY_AFTER
) -> float:
    """Parse Retry-After (delta seconds or HTTP date), clamped to [1 s, 1 h].

    Circle suggests 60 s when it sends none (`default`, clamped too); junk also gives `default`.
    """
    if not value or not isinstance(value, str):
        return clamp_retry_after(default)
    value = value.strip()[:64]
    try:
        return clamp_retry_after(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        delta = when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError, IndexError, OSError):
        return clamp_retry_after(default)
    return clamp_retry_after(delta)


def sanitize_text(value: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Cut server text to `limit` characters without control characters (for messages and logs)."""
    return _UNSAFE_TEXT.sub(" ", value[:limit]).strip()


def error_message(body: Any) -> str:
    """Circle's error text ({"success": false, "message": ...}), or "" when there is none.

    Cut to 200 characters without control characters: it goes into exceptions and logs.
    """
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error")
        if isinstance(message, str):
            return sanitize_text(message)
    return ""


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Tell whether a parsed JSON value nests deeper than `limit` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_json_body(raw: bytes) -> tuple[Any, str | None]:
    """Decode and parse a body: (value, None), or (None, why it was refused).

    An empty or non-JSON body is (None, None): the caller decides whether that is an error.
    """
    if not raw:
        return None, None
    text = raw.decode("utf-8-sig", errors="replace")
    # Nesting cannot exceed the number of brackets: skip the walk for ordinary answers.
    deep = text.count("[") + text.count("{") > MAX_JSON_DEPTH
    try:
        body = json.loads(text)
    except RecursionError:
        return None, "nested too deeply"
    except ValueError:
        return None, None
    if deep and json_depth_exceeds(body):
        return None, "nested too deeply"
    return body, None


def _secrets_of(headers: Mapping[str, str], json_body: Any) -> list[str]:
    found: list[str] = []
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        found.append(auth[7:].strip())
    if isinstance(json_body, Mapping):
        found.extend(v for v in json_body.values() if isinstance(v, str))
    return found


class _Inflater:
    """Undo gzip or deflate with a cap on the output, checked while decompressing.

    aiohttp's own decompression (3.11, CVE-2025-69223) inflates a whole network chunk before
    any cap applies; here no call makes more than the room left under MAX_BODY_BYTES.
    """

    def __init__(self, encoding: str, first: bytes) -> None:
        """Pick the container: gzip, or deflate with or without the zlib header."""
        if encoding in ("gzip", "x-gzip"):
            wbits = 16 + zlib.MAX_WBITS
        else:
            zlib_header = bool(first) and first[0] & 0x0F == 8
            wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
        self._inflate = zlib.decompressobj(wbits)

    def feed(self, data: bytes, room: int, out: list[bytes]) -> int | None:
        """Inflate `data` into `out` in pieces of at most 64 KiB; None past `room` bytes."""
        made = 0
        while data:
            piece = self._inflate.decompress(data, min(room - made + 1, _PIECE))
            made += len(piece)
            if made > room:
                return None
            out.append(piece)
            data = self._inflate.unconsumed_tail
        return made


async def _read_limited(response: aiohttp.ClientResponse) -> tuple[bytes, str | None]:
    """Read the body, decompressed, with at most MAX_BODY_BYTES in memory at any time.

    Returns (body, None), or (b"", why it was refused): too large, compressed in an encoding
    other than gzip or deflate (identity is asked for), or corrupt.
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _ENCODINGS:
        return b"", f"compressed ({sanitize_text(encoding, 20)}), which is refused"
    length = response.content_length
    if length is not None and length > MAX_BODY_BYTES:
        return b"", "too large"
    inflater: _Inflater | None = None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_PIECE):
        if inflater is None and encoding not in ("", "identity"):
            inflater = _Inflater(encoding, chunk)
        if inflater is None:
            made: int | None = (
                len(chunk) if size + len(chunk) <= MAX_BODY_BYTES else None
            )
            chunks.append(chunk)
        else:
            try:
                made = inflater.feed(chunk, MAX_BODY_BYTES - size, chunks)
            except zlib.error:
                return b"", "corrupt (bad compressed data)"
        if made is None:
            return b"", "too large"
        size += made
    return b"".join(chunks), None


def _host(location: str | None) -> str:
    if not location:
        return "nowhere"
    try:
        host = URL(location).host
    except (ValueError, TypeError):
        return "an invalid address"
    return _SAFE_HOST.sub("", host or "")[:100] or "a relative address"


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
    """Send one request; return (status, parsed body).

    Raises CircleConnectionError for transport errors, timeouts, 5xx and redirects (never
    followed: the request carries a token), CircleRateLimitError for 429, and CircleApiError
    for a body that is too large or nested too deeply. Other statuses are the caller's.
    A non-2xx body never carries back a secret that was sent with the request.
    """
    where = f"{method} {_path(url)}"
    try:
        async with asyncio.timeout(timeout):
            async with session.request(
                method,
                url,
                headers={**headers, "Accept-Encoding": "identity"},
                json=json_body,
                params=params,
                allow_redirects=False,
                auto_decompress=False,
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                location = response.headers.get("Location")
                raw, unread = await _read_limited(response)
    except TimeoutError as err:
        raise CircleConnectionError(f"Timed out calling Circle ({where})") from err
    except (aiohttp.ClientError, OSError, ValueError) as err:
        # ValueError: an invalid URL or header; OSError: a socket error aiohttp let through.
        raise CircleConnectionError(
            f"Cannot reach Circle ({where}): {type(err).__name__}"
        ) from err
    _raise_for_status(status, where, retry_after, location)
    if unread is not None:
        raise CircleApiError(f"Circle's answer is {unread} ({where})", status)
    body, refused = parse_json_body(raw)
    if not 200 <= status < 300:
        # Redacted after decoding: an escaped or encoded echo is still the secret.
        body = redact_value(body, secret_pattern(_secrets_of(headers, json_body)))
    if refused is not None and 200 <= status < 300:
        raise CircleApiError(f"Circle's answer is {refused} ({where})", status)
    if status < 200:
        raise CircleApiError(f"Circle answered {status} ({where})", status)
    return status, body


def _raise_for_status(
    status: int, where: str, retry_after: str | None, location: str | None
) -> None:
    """Raise for a 429 (rate limit), a 5xx or a redirect: no answer to read."""
    if status == 429:
        delay = retry_after_seconds(retry_after)
        _LOGGER.debug("Circle answered 429 (%s); retry in %.0f s", where, delay)
        raise CircleRateLimitError(
            f"Circle rate limit reached ({where}); retry in {delay:.0f} s", delay
        )
    if status >= 500:
        _LOGGER.debug("Circle answered %s (%s)", status, where)
        raise CircleConnectionError(
            f"Circle answered {status} ({where})",
            retry_after_seconds(retry_after) if retry_after else None,
        )
    if 300 <= status < 400:
        raise CircleConnectionError(
            f"Circle answered {status} ({where}) with a redirect to {_host(location)}, "
            "which is not followed: check the Circle server address"
        )


def _path(url: str) -> str:
    # Only the path: never a query string.
    try:
        return URL(url).path
    except (ValueError, TypeError):
        return "?"
