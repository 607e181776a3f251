"""AnyCable's extended protocol (`actioncable-v1-ext-json`), sans IO.

Where the server picks it, the cable keeps each stream's position (`stream_id`, `epoch`,
`offset` on every broadcast), restores its session on reconnect (the last welcome's `sid`) and
asks for the history it missed when it subscribes again (per-stream offsets, else since the
last ping). What the server cannot replay (`reject_history`, an epoch change, a subscription
with no position and no time to ask from) is reported as a fallback: the owner reads that
room back over REST. Wire format as in anycable-go and `@anycable/core`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
import json
import logging
import time
from typing import Any, Final, NamedTuple, TypeGuard

from .protocol import SUBPROTOCOLS

_LOGGER = logging.getLogger(__name__)

EXT_PROTOCOL: Final = "actioncable-v1-ext-json"
# The extended protocol first: a plain Action Cable server picks `actioncable-v1-json`.
OFFERED_PROTOCOLS: Final = (EXT_PROTOCOL, *SUBPROTOCOLS)
RESTORE_HEADER: Final = "X-AnyCable-Restore-Sid"
VERSION_HEADER: Final = "X-AnyCable-Version"
PONG: Final = '{"command":"pong"}'
MAX_ID_LENGTH: Final = 256
# Stream ids are the server's choice: kept for at most this many per subscription and in all.
# A real subscription has a stream or two; beyond the caps new streams are ignored (their
# broadcasts still go out), the history request stays a sane frame, and the subscription's
# room is read back over REST once, since the server's history no longer covers it.
MAX_STREAMS_PER_IDENTIFIER: Final = 64
MAX_STREAMS: Final = 1024


class HistoryState(StrEnum):
    """What became of a subscription's history request on this connection."""

    NONE = "none"  # nothing asked (first connection, or plain protocol)
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class FallbackReason(StrEnum):
    """Why the server's history cannot be trusted for a subscription."""

    REJECTED = "reject_history"
    EPOCH_CHANGED = "epoch_changed"
    UNKNOWN_STREAM = "unknown_stream"
    TOO_MANY_STREAMS = "too_many_streams"


class Fallback(NamedTuple):
    """Read this subscription's room back over REST: the server cannot replay it."""

    identifier: str
    reason: FallbackReason


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a stream was last seen: its epoch and the offset of its last broadcast."""

    epoch: str
    offset: int


def redact_sid(sid: Any) -> str | None:
    """Show a sid's first 4 characters and its length, never all of it.

    On AnyCable a sid restores its session without a token while the server keeps it
    (5 minutes by default): it is treated as a secret.
    """
    if not isinstance(sid, str) or not sid:
        return None
    return f"{sid[:4]}…({len(sid)})"


def _valid_id(value: Any) -> TypeGuard[str]:
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH


class ReliableStreams:
    """One cable's extended-protocol state; survives reconnects, never holds a secret."""

    def __init__(self, clock: Any = time.time) -> None:
        """`clock` gives seconds since the epoch (a fake one in tests)."""
        self._clock = clock
        self.protocol: str | None = None
        self.server_version: str | None = None
        self.sid: str | None = None  # the session to restore on the next connection
        self.restored = False
        self.restored_ids: tuple[str, ...] = ()
        self._restore_asked = False  # this connection's handshake carried a sid
        self.welcome_sid = (
            False  # a sid in the welcome: AnyCable (stock Rails sends none)
        )
        self.since: int | None = None  # the server's time at its last ping, in seconds
        self.positions: dict[str, StreamPosition] = {}
        self.streams: dict[str, set[str]] = {}  # identifier -> stream ids
        self.history: dict[str, HistoryState] = {}
        self._overflowed: set[str] = set()  # identifiers past a stream cap (told once)
        self.replayed = 0
        self.fallbacks = 0

    @property
    def active(self) -> bool:
        """Whether the server picked the extended protocol on this connection."""
        return self.protocol == EXT_PROTOCOL

    @property
    def flavour(self) -> str | None:
        """Name the server: `anycable` (version header, ext protocol or a welcome sid)."""
        if self.server_version is not None or self.active or self.welcome_sid:
            return "anycable"
        return None if self.protocol is None else "actioncable"

    # --- connection -------------------------------------------------------------------

    def restore_headers(self) -> dict[str, str]:
        """Headers for the next handshake: the session to restore, if any."""
        return {RESTORE_HEADER: self.sid} if self.sid else {}

    def connected(self, protocol: str | None, headers: Any) -> None:
        """Take the handshake's answer: the negotiated protocol and the server's version."""
        self.protocol = protocol
        version = headers.get(VERSION_HEADER) if headers is not None else None
        self.server_version = version[:64] if isinstance(version, str) else None
        self.restored = False
        self.restored_ids = ()
        # The sid held now is the one `restore_headers` gave this handshake.
        self._restore_asked = self.sid is not None
        self.history.clear()

    def on_welcome(self, frame: dict[str, Any]) -> tuple[str, ...]:
        """Take the welcome; return the identifiers the server restored (maybe none)."""
        sid = frame.get("sid")
        self.welcome_sid = _valid_id(sid)
        self.sid = sid if self.active and _valid_id(sid) else None
        if self.since is None:
            self.since = int(self._clock())
        if not self.active or frame.get("restored") is not True:
            return ()
        if not self._restore_asked:
            # Nothing was asked to restore: taking it would mark subscriptions confirmed
            # that were never sent.
            _LOGGER.debug("Ignored a restored welcome: no session was asked to restore")
            return ()
        self._restore_asked = False
        ids = frame.get("restored_ids")
        if isinstance(ids, list):
            restored = tuple(i for i in ids if _valid_id(i))
        else:  # anycable-go leaves an empty list out: every known subscription
            restored = tuple(self.streams)
        self.restored = True
        self.restored_ids = restored
        return restored

    def on_ping(self, frame: dict[str, Any]) -> str | None:
        """Take a ping: remember the server's time; return the pong to send (ext only)."""
        if not self.active:
            return None
        stamp = frame.get("message")
        if type(stamp) is int and stamp > 0:
            self.since = stamp
        return PONG

    def on_disconnect(self) -> None:
        """Forget the sid: a `disconnect` frame ends the session on the server."""
        self.sid = None

    # --- history ----------------------------------------------------------------------

    def request_for(self, identifier: str) -> dict[str, Any] | None:
        """Build the history request: known streams by position, the rest by `since`."""
        known = sorted(self.streams.get(identifier, ()))[:MAX_STREAMS_PER_IDENTIFIER]
        streams = {
            stream: {"epoch": pos.epoch, "offset": pos.offset}
            for stream in known
            if (pos := self.positions.get(stream)) is not None
        }
        if not streams and not self.since:
            return None
        request: dict[str, Any] = {"since": self.since, "streams": streams}
        if not self.since:
            del request["since"]
        return request

    def subscribe_command(self, identifier: str) -> str:
        """Build the subscribe command; in the extended protocol with a history request.

        As `@anycable/core`: every subscribe asks for history (since the welcome on a first
        connection), so that nothing broadcast between subscribe and confirmation is lost.
        """
        cmd: dict[str, Any] = {"command": "subscribe", "identifier": identifier}
        if self.active:
            request = self.request_for(identifier)
            if request is not None:
                cmd["history"] = request
                self.history[identifier] = HistoryState.REQUESTED
        return json.dumps(cmd)

    def history_command(self, identifier: str) -> str | Fallback:
        """Build the `history` command for a restored subscription (or a fallback)."""
        request = self.request_for(identifier)
        if request is None:
            return self._fallback(identifier, FallbackReason.UNKNOWN_STREAM)
        self.history[identifier] = HistoryState.REQUESTED
        return json.dumps(
            {"command": "history", "identifier": identifier, "history": request}
        )

    def on_history(self, kind: str, identifier: Any) -> Fallback | None:
        """Take `confirm_history` or `reject_history`."""
        if not _valid_id(identifier):
            return None
        if kind == "confirm_history":
            self.history[identifier] = HistoryState.CONFIRMED
            return None
        self.history[identifier] = HistoryState.REJECTED
        return self._fallback(identifier, FallbackReason.REJECTED)

    def track(self, identifier: str, frame: dict[str, Any]) -> Fallback | None:
        """Keep a broadcast's stream position; an epoch change is a fallback."""
        stream = frame.get("stream_id")
        epoch = frame.get("epoch")
        offset = frame.get("offset")
        if not _valid_id(stream) or not _valid_id(epoch):
            return None
        if type(offset) is not int or offset < 0:
            return None
        if self.history.get(identifier) is HistoryState.REQUESTED:
            self.replayed += 1
        known = self.positions.get(stream)
        streams = self.streams.setdefault(identifier, set())
        if stream not in streams:
            if len(streams) >= MAX_STREAMS_PER_IDENTIFIER or (
                known is None and len(self.positions) >= MAX_STREAMS
            ):
                return self._overflow(identifier)
            streams.add(stream)
        if known is not None and known.epoch != epoch:
            self.positions[stream] = StreamPosition(epoch, offset)
            return self._fallback(identifier, FallbackReason.EPOCH_CHANGED)
        if known is None or offset > known.offset:
            self.positions[stream] = StreamPosition(epoch, offset)
        return None

    def forget(self, identifier: str) -> None:
        """Drop what is known of an unsubscribed identifier."""
        for stream in self.streams.pop(identifier, ()):
            if not any(stream in s for s in self.streams.values()):
                self.positions.pop(stream, None)
        self.history.pop(identifier, None)
        self._overflowed.discard(identifier)

    def _overflow(self, identifier: str) -> Fallback | None:
        """Keep no stream past a cap; read its room back over REST instead, once."""
        if identifier in self._overflowed:
            return None
        self._overflowed.add(identifier)
        _LOGGER.warning(
            "Circle's cable named more streams than are kept (%s per subscription, %s in "
            "all); the others are not replayed after a reconnect but read back instead",
            MAX_STREAMS_PER_IDENTIFIER,
            MAX_STREAMS,
        )
        return self._fallback(identifier, FallbackReason.TOO_MANY_STREAMS)

    def _fallback(self, identifier: str, reason: FallbackReason) -> Fallback:
        self.fallbacks += 1
        return Fallback(identifier, reason)

    def diagnostics(self) -> dict[str, Any]:
        """Say what the server is and how its history went; never a secret."""
        return {
            "flavour": self.flavour,
            "server_version": self.server_version,
            "protocol": self.protocol,
            "sid": redact_sid(self.sid),
            "restored": self.restored,
            "restored_ids": len(self.restored_ids),
            "streams": len(self.positions),
            "history": {ident: state.value for ident, state in self.history.items()},
            "replayed": self.replayed,
            "fallbacks": self.fallbacks,
        }
