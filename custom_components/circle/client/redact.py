r"""Remove secrets from server text after decoding it the way a reader would.

A hostile server can echo a token JSON-escaped (`\u0061`, `\/`), percent-encoded, as HTML
entities, in base64 or hex, or in another case: matching the raw bytes only is not enough.
Every string of an error body goes through `redact_value` before it can become text.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
import html
import re
from typing import Any, Final
from urllib.parse import unquote

REDACTED: Final = "<redacted>"
MIN_SECRET_LEN: Final = 8
_MAX_ROUNDS: Final = 4
_ENCODED = re.compile(r"[\\%&]")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\([\"\\/bfnrt])")
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n"}
_SIMPLE |= {"r": "\r", "t": "\t"}
# Invisible characters a server could slip between a token's characters.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")


def _unescape_json(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match[1] is None:
            return _SIMPLE[match[2]]
        code = int(match[1], 16)
        return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)

    return _JSON_ESCAPE.sub(one, text)


def decoded_forms(text: str) -> list[str]:
    """List the text, then each further decoding (JSON escapes, percent, HTML) until it is stable."""
    forms = [text]
    for _ in range(_MAX_ROUNDS):
        current = forms[-1]
        if not _ENCODED.search(current) and not _INVISIBLE.search(current):
            break
        decoded = _INVISIBLE.sub("", html.unescape(unquote(_unescape_json(current))))
        if decoded == current:
            break
        forms.append(decoded)
    return forms


def _base64_cores(secret: bytes) -> set[str]:
    """Return the base64 characters that encode `secret` whatever its offset in a longer text."""
    cores: set[str] = set()
    for shift in range(3):
        data = b"\0" * shift + secret
        start = (8 * shift + 5) // 6
        end = 8 * len(data) // 6
        for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            core = encoded[start:end].decode()
            if len(core) >= MIN_SECRET_LEN:
                cores.add(core)
    return cores


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """Build one pattern for every secret and its base64 and hex forms, or None without secrets."""
    needles: set[str] = set()
    for secret in secrets:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LEN:
            continue
        raw = secret.encode()
        needles.update((secret, raw.hex()), _base64_cores(raw))
    if not needles:
        return None
    ordered = sorted(needles, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)


def _clean(text: str, pattern: re.Pattern[str]) -> bool:
    return not any(pattern.search(form) for form in decoded_forms(text))


def redact_text(text: str, pattern: re.Pattern[str] | None) -> str:
    """`text` with every secret removed, in any of its decoded forms.

    The raw text is kept when it holds no secret in any form; else the secret is cut from the
    raw text, else from the decoded text, else the whole text is withheld.
    """
    if pattern is None or _clean(text, pattern):
        return text
    for candidate in (
        pattern.sub(REDACTED, text),
        pattern.sub(REDACTED, decoded_forms(text)[-1]),
    ):
        if _clean(candidate, pattern):
            return candidate
    return REDACTED


def redact_value(value: Any, pattern: re.Pattern[str] | None) -> Any:
    """Return a parsed JSON value with every string (keys too) redacted."""
    if pattern is None:
        return value
    if isinstance(value, str):
        return redact_text(value, pattern)
    if isinstance(value, list):
        return [redact_value(item, pattern) for item in value]
    if isinstance(value, dict):
        return {
            redact_text(str(key), pattern): redact_value(item, pattern)
            for key, item in value.items()
        }
    return value
