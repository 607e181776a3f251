"""The delivery core's states and the one table of what moves them.

A reader answers "what happens on a 429 while resyncing?" here: row (SYNCING, READ_FAILED)
stays SYNCING (a retry is timed, at most 30 s away, before the first hold ends). Whatever a
row does not list is a bug in the core and raises `IllegalTransitionError`. Inputs the core
ignores in a state (a welcome after the auth verdict, a stale REST answer) never get here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Phase(StrEnum):
    """Where the core is."""

    DISCONNECTED = "disconnected"
    SUBSCRIBING = "subscribing"  # connected, some subscription not answered yet
    SYNCING = "syncing"  # the REST reads of this connection are in flight or retrying
    LIVE = "live"
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"


class Input(StrEnum):
    """What moves the core."""

    WELCOME = "welcome"  # the cable (re)connected; the subscriptions are (re)sent
    SOCKET_LOST = "socket_lost"
    ALL_ANSWERED = "all_answered"  # no subscription pending (or a late confirmation)
    READ_FAILED = "read_failed"  # a REST read failed (503, 429, timeout): retry timed
    RETRY = "retry"  # the retry timer fired: read again
    READ_BACK = "read_back"  # every room was read back (or some: see ROOMS_FAILED)
    ROOMS_FAILED = "rooms_failed"  # some rooms could not be read back: they retry
    AUTH_VERDICT = "auth_verdict"  # a definite authentication failure
    STOP = "stop"


class IllegalTransitionError(RuntimeError):
    """The core tried a move its table does not have."""


_D, _SUB, _SYN, _L, _A, _S = (
    Phase.DISCONNECTED,
    Phase.SUBSCRIBING,
    Phase.SYNCING,
    Phase.LIVE,
    Phase.AUTH_FAILED,
    Phase.STOPPED,
)

# (from any of these phases, on this input) -> to this phase
_ROWS: Final = (
    ((_D, _SUB, _SYN, _L), Input.WELCOME, _SUB),
    ((_D, _SUB, _SYN, _L), Input.SOCKET_LOST, _D),
    ((_SUB, _SYN, _L), Input.ALL_ANSWERED, _SYN),
    ((_SYN,), Input.READ_FAILED, _SYN),
    ((_SYN,), Input.RETRY, _SYN),
    ((_SYN,), Input.READ_BACK, _L),
    ((_L,), Input.ROOMS_FAILED, _SYN),
    ((_D, _SUB, _SYN, _L, _A), Input.AUTH_VERDICT, _A),
    ((_D, _SUB, _SYN, _L, _A, _S), Input.STOP, _S),
)

TRANSITIONS: Final[dict[tuple[Phase, Input], Phase]] = {
    (source, event): target for sources, event, target in _ROWS for source in sources
}


def next_phase(phase: Phase, event: Input) -> Phase:
    """Return where `event` takes the core from `phase`; raise if the table lacks it."""
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise IllegalTransitionError(f"{event} in {phase}") from None
