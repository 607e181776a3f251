"""When the cable connects again, and what a refusal means: a sans-IO state machine.

The cable (`cable.py`) does the I/O and tells this machine what happened; the machine answers
with the next step (connect, renew then connect, check the token over REST, wait, give up).
Every decision about timing and verdicts lives here, so a fake clock can test them all:

- a handshake refusal (401/403) or an `unauthorized` disconnect renews the token once; a
  second refusal with that fresh token is checked against the member API: REST accepts it →
  the Origin is refused (no reauthentication; retries at most `origin_retry_max` apart);
  REST rejects it → the credentials are bad (the only way to AUTH_FAILED from a refusal);
  REST unreachable → no verdict, normal backoff;
- `token_expired` renews and reconnects at once;
- a failed token renewal is retried fast (1 s doubling, capped 15 s, never before Retry-After);
- every other failure backs off with full jitter up to `backoff_max` (15 s); `reconnect:
  false` waits between `backoff_max` and twice that; a Retry-After is honoured (clamped to
  [1 s, 1 h]).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
import random
from typing import Final

from .retry_after import retry_after_floor


class CableState(StrEnum):
    """Where the supervisor is."""

    IDLE = "idle"
    CONNECTING = "connecting"
    WAITING_TOKEN = "waiting_token"  # noqa: S105 - a state name
    CONNECTED = "connected"
    BACKING_OFF = "backing_off"
    CHECKING_403 = "checking_403"
    ORIGIN_REFUSED = "origin_refused"
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"


S = CableState
# The one transition table: anything else raises IllegalTransitionError.
TRANSITIONS: Final[dict[CableState, frozenset[CableState]]] = {
    S.IDLE: frozenset({S.CONNECTING, S.STOPPED}),
    S.CONNECTING: frozenset(
        {
            S.CONNECTED,
            S.WAITING_TOKEN,
            S.BACKING_OFF,
            S.CHECKING_403,
            S.ORIGIN_REFUSED,
            S.AUTH_FAILED,
            S.STOPPED,
        }
    ),
    S.CONNECTED: frozenset({S.WAITING_TOKEN, S.BACKING_OFF, S.CHECKING_403, S.STOPPED}),
    S.WAITING_TOKEN: frozenset({S.CONNECTING, S.STOPPED}),
    S.BACKING_OFF: frozenset({S.CONNECTING, S.STOPPED}),
    S.CHECKING_403: frozenset(
        {S.ORIGIN_REFUSED, S.AUTH_FAILED, S.BACKING_OFF, S.WAITING_TOKEN, S.STOPPED}
    ),
    S.ORIGIN_REFUSED: frozenset({S.CONNECTING, S.STOPPED}),
    S.AUTH_FAILED: frozenset(),
    S.STOPPED: frozenset(),
}
WAITING: Final = frozenset({S.WAITING_TOKEN, S.BACKING_OFF, S.ORIGIN_REFUSED})


class IllegalTransitionError(RuntimeError):
    """An input that the current state cannot take: a bug in the driver."""


class Refusal(StrEnum):
    """How a handshake or a connection failed."""

    HANDSHAKE = (
        "handshake"  # 401/403 on the upgrade (AnyCable: also a disallowed Origin)
    )
    ORIGIN_404 = "origin_404"  # Rails' answer to a disallowed Origin
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"  # 5xx, timeouts, network, redirects


class TokenVerdict(StrEnum):
    """What the member API said of a token the cable refused."""

    VALID = "valid"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # unreachable, 5xx, 429: no verdict


class StepKind(StrEnum):
    """What the driver must do next."""

    CONNECT = "connect"
    CHECK_TOKEN = "check_token"  # noqa: S105 - a step name
    WAIT = "wait"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Step:
    """The next thing to do; `renew`: invalidate the last token first; `reason` for status."""

    kind: StepKind
    delay: float = 0.0
    renew: bool = False
    reason: str | None = None


# Disconnect reasons: Rails (unauthorized, invalid_request, server_restart, remote) and
# AnyCable (token_expired from its JWT identification; idle_timeout, no_pong, too_slow).
DISCONNECT_REASONS: Final = frozenset(
    {
        "unauthorized",
        "token_expired",
        "invalid_request",
        "server_restart",
        "remote",
        "idle_timeout",
        "no_pong",
        "too_slow",
        "heartbeat_timeout",
    }
)
# Our own reasons for a connection that ended without a `disconnect` frame.
LOCAL_REASONS: Final = frozenset({"stale", "dropped", "closed", "error"})


@dataclass(frozen=True, slots=True)
class Timing:
    """Backoff settings (seconds)."""

    backoff_initial: float = 1.0
    backoff_max: float = 15.0
    renew_initial: float = 1.0
    renew_max: float = 15.0
    origin_retry_initial: float = 5.0
    origin_retry_max: float = 300.0
    stable_after: float = 5.0


def renewal_delay(
    failures: int,
    retry_after: float | None = None,
    *,
    initial: float = 1.0,
    cap: float = 15.0,
) -> float:
    """Retry a failed token renewal fast: 1 s doubling to 15 s, never before Retry-After."""
    ladder = min(cap, initial * 2.0 ** min(max(failures - 1, 0), 30))
    return max(ladder, retry_after_floor(retry_after))


class CableSupervisor:
    """Decides the cable's next step from what happened; never does I/O."""

    def __init__(
        self,
        timing: Timing | None = None,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        """`uniform` draws the jitter (a seeded one in tests)."""
        self.timing = timing or Timing()
        self._uniform = uniform
        self.state = CableState.IDLE
        self.attempts = 0  # transient failures since the last stable connection
        self.token_failures = 0  # failed token fetches or renewals in a row
        self.origin_refusals = 0  # refused Origins in a row (404; 403 REST cleared)
        self.fresh = False  # the current token was renewed after a refusal
        self._renew = False  # the next connect must renew the token first
        self._refused_by: str = "unauthorized"
        self.reason: str | None = None

    def __repr__(self) -> str:
        """State and counters; nothing secret lives here."""
        return f"CableSupervisor({self.state}, attempts={self.attempts})"

    @property
    def origin_refused(self) -> bool:
        """The cable refused our Origin (a 404, or a 403 with a token REST accepts)."""
        return self.origin_refusals > 0

    def _go(self, state: CableState) -> None:
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransitionError(f"{self.state} -> {state}")
        self.state = state

    # --- inputs ----------------------------------------------------------------------------

    def start(self) -> Step:
        """Begin: connect."""
        self._go(S.CONNECTING)
        return Step(StepKind.CONNECT)

    def stop(self) -> None:
        """End for good (an auth verdict stays what it is)."""
        if self.state not in (S.STOPPED, S.AUTH_FAILED):
            self._go(S.STOPPED)

    def wake(self) -> Step:
        """End a wait: connect (renewing first when a refusal asked for it)."""
        if self.state not in WAITING:
            raise IllegalTransitionError(f"wake in {self.state}")
        self._go(S.CONNECTING)
        return Step(StepKind.CONNECT, renew=self._renew)

    def token_ready(self, *, renewed: bool) -> None:
        """Note a token came (fetched or renewed): the renewal ladder starts again."""
        self._require(S.CONNECTING)
        self.token_failures = 0
        if self._renew and renewed:
            self.fresh = True
        self._renew = False

    def token_failed(
        self,
        *,
        fatal: str | None = None,
        retry_after: float | None = None,
        reason: str = "token_unavailable",
    ) -> Step:
        """No token: a verdict from the token API (fatal), or retry fast."""
        self._require(S.CONNECTING)
        if fatal is not None:
            self._go(S.AUTH_FAILED)
            return Step(StepKind.DONE, reason=self._set_reason(fatal))
        self.token_failures += 1
        self._go(S.WAITING_TOKEN)
        t = self.timing
        delay = renewal_delay(
            self.token_failures, retry_after, initial=t.renew_initial, cap=t.renew_max
        )
        return Step(StepKind.WAIT, delay, reason=self._set_reason(reason))

    def welcomed(self) -> None:
        """Note the welcome: the token and the Origin are fine."""
        self._go(S.CONNECTED)
        self.fresh = False
        self.origin_refusals = 0
        self.reason = None

    def handshake_failed(
        self, refusal: Refusal, reason: str, retry_after: float | None = None
    ) -> Step:
        """Decide after a refused or failed upgrade."""
        self._require(S.CONNECTING)
        if refusal is Refusal.HANDSHAKE:
            return self._refused("origin_refused")
        if refusal is Refusal.ORIGIN_404:
            return self._origin_wait("origin_rejected")
        return self._backoff(reason, retry_after=retry_after)

    def closed(
        self, reason: str, *, reconnect: bool = True, connected_for: float | None = None
    ) -> Step:
        """Decide after the connection ended (a `disconnect` reason, or a LOCAL_REASONS one)."""
        if self.state not in (S.CONNECTING, S.CONNECTED):
            raise IllegalTransitionError(f"closed in {self.state}")
        if connected_for is not None and connected_for >= self.timing.stable_after:
            self.attempts = 0  # a long healthy connection earns a fresh backoff
        if reason == "unauthorized":
            return self._refused("cable_unauthorized")
        if reason == "token_expired" and not self.fresh:
            return self._renew_now(reason)
        return self._backoff(reason, slow=not reconnect)

    def token_checked(
        self, verdict: TokenVerdict, retry_after: float | None = None
    ) -> Step:
        """Decide on the member API's word about the refused token."""
        self._require(S.CHECKING_403)
        if verdict is TokenVerdict.REJECTED:
            if self.fresh:
                self._go(S.AUTH_FAILED)
                return Step(StepKind.DONE, reason=self._set_reason("auth_failed"))
            return self._renew_now("unauthorized")
        if verdict is TokenVerdict.UNKNOWN:
            return self._backoff("token_check_failed", retry_after=retry_after)
        # Vouched for: should REST reject it later, renew once more before any verdict.
        self.fresh = False
        if self._refused_by == "origin_refused":
            return self._origin_wait("origin_refused")
        # The token is good but the cable says unauthorized: no verdict, come back slowly.
        self.origin_refusals = 0
        delay = self._ladder(self.attempts, slow=True)
        self.attempts += 1
        self._go(S.BACKING_OFF)
        return Step(StepKind.WAIT, delay, reason=self._set_reason("cable_unauthorized"))

    # --- decisions -------------------------------------------------------------------------

    def _refused(self, reason: str) -> Step:
        """Renew once after a refusal; with a fresh (or REST-vouched) token, ask the member API."""
        self._refused_by = reason
        if self.fresh or self.origin_refused:
            self._go(S.CHECKING_403)
            return Step(StepKind.CHECK_TOKEN, reason=self._set_reason(reason))
        return self._renew_now("unauthorized")

    def _renew_now(self, reason: str) -> Step:
        self._renew = True
        self._go(S.WAITING_TOKEN)
        return Step(StepKind.WAIT, 0.0, reason=self._set_reason(reason))

    def _origin_wait(self, reason: str) -> Step:
        self.origin_refusals += 1
        self._go(S.ORIGIN_REFUSED)
        t = self.timing
        ceiling = min(
            t.origin_retry_max,
            t.origin_retry_initial * 2.0 ** min(self.origin_refusals - 1, 20),
        )
        return Step(
            StepKind.WAIT,
            self._uniform(ceiling / 2, ceiling),
            reason=self._set_reason(reason),
        )

    def _backoff(
        self, reason: str, *, slow: bool = False, retry_after: float | None = None
    ) -> Step:
        delay = self._ladder(self.attempts)
        self.attempts += 1
        if slow:  # reconnect: false (a kick, a deploy): no verdict, but not at once
            cap = self.timing.backoff_max
            delay = max(delay, self._uniform(cap, 2 * cap))
        delay = max(delay, retry_after_floor(retry_after))
        self._go(S.BACKING_OFF)
        return Step(StepKind.WAIT, delay, reason=self._set_reason(reason))

    def _ladder(self, attempt: int, *, slow: bool = False) -> float:
        """Full jitter: uniform in [0, min(cap, initial * 2^attempt)]."""
        t = self.timing
        cap = t.origin_retry_max if slow else t.backoff_max
        initial = t.origin_retry_initial if slow else t.backoff_initial
        return self._uniform(0.0, min(cap, initial * 2.0 ** min(attempt, 30)))

    def _set_reason(self, reason: str) -> str:
        self.reason = reason
        return reason

    def _require(self, state: CableState) -> None:
        if self.state is not state:
            raise IllegalTransitionError(f"expected {state}, in {self.state}")
