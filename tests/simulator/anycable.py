"""The simulator's AnyCable flavour: what anycable-go does where stock Rails differs.

Modelled on anycable-go's own code (ws/handler.go, node/node.go, broker/memory.go,
cli/session_options.go, common/common.go): a `sid` of 21 characters in every welcome, the
`X-AnyCable-Version` header on the 101, 403 for a disallowed Origin (Go's `CheckOrigin`), its
disconnect reasons, and the extended protocol `actioncable-v1-ext-json` with reliable streams
(per-stream `epoch` + `offset`, a bounded history, `history` since a time or per-stream
offsets, `confirm_history` / `reject_history`) and resumable sessions (reconnect with the old
sid as `X-AnyCable-Restore-Sid` or `?sid=`; the welcome says `restored` and lists
`restored_ids`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
import secrets
import string
import time
from typing import Any, Final

PLAIN_PROTOCOL: Final = "actioncable-v1-json"
EXT_PROTOCOL: Final = "actioncable-v1-ext-json"
# anycable-go's order (common.ActionCableProtocols); the client's order decides the pick.
PROTOCOLS: Final = (PLAIN_PROTOCOL, EXT_PROTOCOL)
VERSION: Final = "1.6.4"
RESTORE_HEADER: Final = "X-AnyCable-Restore-Sid"
RESTORE_PARAM: Final = "sid"

# Every reason anycable-go sends, with the `reconnect` it sends it with.
DISCONNECT_REASONS: Final[dict[str, bool]] = {
    "unauthorized": False,  # node/controller.go: connection refused by the app
    "token_expired": False,  # identity/jwt.go: its JWT identification, token expired
    "server_restart": True,  # node/node.go: graceful shutdown
    "remote": True,  # hub/hub.go: remote disconnect (its `reconnect` is the caller's)
    "idle_timeout": False,  # node/session.go: never authenticated in time
    "no_pong": True,  # node/session.go: the ext protocol's pongs stopped
    "too_slow": True,  # node/session.go: the client could not keep up
    "invalid_request": True,  # Rails' reason, passed through from the RPC app
}

_NANOID_ALPHABET: Final = string.ascii_letters + string.digits + "_-"


def nanoid(size: int) -> str:
    """An id like anycable-go's (nanoid): 21 characters for a sid, 4 for an epoch."""
    return "".join(secrets.choice(_NANOID_ALPHABET) for _ in range(size))


@dataclass
class StreamLog:
    """One stream's history: the last `limit` broadcasts, each with its offset and time."""

    limit: int
    offset: int = 0
    entries: deque[tuple[int, int, Any]] = field(default_factory=deque)

    def add(self, payload: Any) -> int:
        self.offset += 1
        self.entries.append((self.offset, int(time.time()), payload))
        while len(self.entries) > self.limit:
            self.entries.popleft()
        return self.offset


@dataclass
class CachedSession:
    """What a restore brings back: the member and the subscriptions (identifier -> stream)."""

    member_id: int
    subscriptions: dict[str, str]
    expires: float


class Broker:
    """anycable-go's memory broker: one epoch for every stream, a bounded history each."""

    def __init__(self) -> None:
        self.epoch = nanoid(4)
        self.streams: dict[str, StreamLog] = {}
        self.sessions: dict[str, CachedSession] = {}
        self.history_requests: list[dict[str, Any]] = []
        self.restores: list[tuple[str, bool]] = []  # (old sid, restored)

    # --- reliable streams ----------------------------------------------------------------

    def record(self, stream: str, payload: Any, limit: int) -> tuple[str, int]:
        """Keep a broadcast in its stream's history (the last `limit`): (epoch, offset)."""
        log = self.streams.get(stream)
        if log is None:
            log = self.streams[stream] = StreamLog(limit)
        log.limit = limit
        return self.epoch, log.add(payload)

    def bump_epoch(self) -> str:
        """Lose every stream's history (a broker restart): a new epoch, offsets anew."""
        old = self.epoch
        while self.epoch == old:
            self.epoch = nanoid(4)
        self.streams.clear()
        return self.epoch

    def forget_stream(self, stream: str) -> None:
        """Lose one stream's history (it expired): a request by offset is rejected."""
        self.streams.pop(stream, None)

    def history(
        self, streams: list[str], request: Any
    ) -> list[tuple[str, int, Any]] | None:
        """What `history` returns for a subscription's streams; None means reject_history.

        As anycable-go: a stream named in `streams` is read from its offset (rejected when
        the epoch differs, the stream is unknown or empty, or the offset fell off the
        buffer or lies ahead of it); any other stream from `since` (seconds).
        """
        self.history_requests.append(request if isinstance(request, dict) else {})
        if not isinstance(request, dict):
            return None
        positions = request.get("streams")
        since = request.get("since")
        backlog: list[tuple[str, int, Any]] = []
        for name in streams:
            log = self.streams.get(name)
            pos = positions.get(name) if isinstance(positions, dict) else None
            if isinstance(pos, dict):
                offset = pos.get("offset")
                if pos.get("epoch") != self.epoch or log is None or not log.entries:
                    return None
                if not isinstance(offset, int) or isinstance(offset, bool):
                    return None
                low, high = log.entries[0][0], log.entries[-1][0]
                if low > offset or offset > high:
                    return None
                backlog.extend((name, o, p) for o, _, p in log.entries if o > offset)
            elif isinstance(since, int | float) and since > 0 and log is not None:
                backlog.extend((name, o, p) for o, ts, p in log.entries if ts >= since)
        return backlog

    def frame(
        self, ident: str, stream: str, offset: int, payload: Any
    ) -> dict[str, Any]:
        """A broadcast as the extended protocol sends it."""
        return {
            "identifier": ident,
            "message": payload,
            "stream_id": stream,
            "epoch": self.epoch,
            "offset": offset,
        }

    # --- resumable sessions --------------------------------------------------------------

    def commit_session(
        self, sid: str, member_id: int, subscriptions: dict[str, str], ttl: float
    ) -> None:
        """Keep what a session holds, for `ttl` seconds, so a reconnect can restore it."""
        self.sessions[sid] = CachedSession(
            member_id, dict(subscriptions), time.time() + ttl
        )

    def restore_session(self, old_sid: str, member_id: int) -> dict[str, str] | None:
        """The subscriptions of the session `old_sid`, if it is cached and the member's."""
        cached = self.sessions.get(old_sid)
        ok = (
            cached is not None
            and cached.expires > time.time()
            and cached.member_id == member_id
        )
        self.restores.append((old_sid, ok))
        return dict(cached.subscriptions) if ok and cached is not None else None

    def expire_sessions(self) -> None:
        """Forget every cached session (their TTL ran out)."""
        self.sessions.clear()


def restore_sid(headers: Any, query: Any) -> str | None:
    """The sid a client asks to restore: the header first, then the `sid` parameter."""
    value = headers.get(RESTORE_HEADER) or query.get(RESTORE_PARAM)
    return value if isinstance(value, str) and value else None


def welcome(sid: str, restored_ids: list[str] | None) -> dict[str, Any]:
    """anycable-go's welcome (fields empty in Go are left out)."""
    frame: dict[str, Any] = {"type": "welcome", "sid": sid}
    if restored_ids is not None:
        frame["restored"] = True
        if restored_ids:
            frame["restored_ids"] = restored_ids
    return frame
