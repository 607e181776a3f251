"""What the cable tells its owner: listeners, once-only warnings, counted bugs.

Shared by the cable (the driver), each socket session and the frame path, so none of them
needs a reference to the others to report something; a listener's bug never ends the cable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
import logging
from typing import Any

from .errors import CircleError, log_bug
from .models import CableEvent
from .reliable import Fallback
from .subscriptions import Subscription, SubscriptionState

_LOGGER = logging.getLogger(__name__.rpartition(".")[0] + ".cable")


class ConnectionState(StrEnum):
    """Where the cable is, as its owner sees it (derived from the supervisor's state)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """A state change; `reason` says why (disconnect reason, error kind), `retry_in` when."""

    state: ConnectionState
    reason: str | None = None
    retry_in: float | None = None
    error: CircleError | None = None


EventListener = Callable[[CableEvent], None]
StateListener = Callable[[ConnectionStatus], None]
SubscriptionListener = Callable[[Subscription], None]
FallbackListener = Callable[[Fallback], None]


class CableHub:
    """The cable's outputs and its bookkeeping of what went wrong."""

    def __init__(self) -> None:
        """No listeners yet; nothing seen, nothing warned about."""
        # A tuple, replaced on change: the frame path iterates it once per event.
        self.listeners: tuple[EventListener, ...] = ()
        self.state_listeners: list[StateListener] = []
        self.sub_listeners: list[SubscriptionListener] = []
        self.fallback_listeners: list[FallbackListener] = []
        # Recently delivered message keys, oldest first (trimmed by the frame path).
        self.seen: dict[Any, None] = {}
        self.frames = 0  # frames received, all connections
        self.errors = 0
        self._warned: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def add_listener(self, listener: EventListener) -> Callable[[], None]:
        """Add an event listener; returns its removal."""
        self.listeners = (*self.listeners, listener)

        def remove() -> None:
            listeners = list(self.listeners)
            listeners.remove(listener)
            self.listeners = tuple(listeners)

        return remove

    def publish(self, status: ConnectionStatus) -> None:
        """Tell every state listener."""
        _LOGGER.debug("Cable %s (%s)", status.state, status.reason or "-")
        self._each(self.state_listeners, status, "in a state listener")

    def subscription(self, sub: Subscription) -> None:
        """Tell every subscription listener."""
        self._each(self.sub_listeners, sub, "in a subscription listener")

    def set_state(self, sub: Subscription, state: SubscriptionState) -> None:
        """Record the server's answer; a rejection is warned about once per channel."""
        if sub.state is state:
            return
        sub.state = state
        if state is SubscriptionState.REJECTED:
            # Once per channel: it comes back at every reconnect, and a repair says it.
            self.warn_once(
                f"rejected:{sub.channel}",
                f"Circle rejected the subscription to {sub.channel}",
            )
        self.subscription(sub)

    def fallback(self, fallback: Fallback) -> None:
        """Tell every history fallback listener."""
        self._each(self.fallback_listeners, fallback, "in a history fallback listener")

    def _each(
        self, listeners: list[Callable[[Any], None]], value: Any, where: str
    ) -> None:
        for listener in tuple(listeners):
            try:
                listener(value)
            except Exception:  # noqa: BLE001 - a listener's bug must not end the cable
                self.unexpected(where)

    def unexpected(self, doing: str) -> None:
        """Count and log the exception being handled (a bug: one traceback is enough)."""
        self.errors += 1
        log_bug(_LOGGER, doing, self.errors)

    def warn_once(self, kind: str, message: str) -> None:
        """Warn the first time per kind; later ones at debug level."""
        if kind in self._warned:
            _LOGGER.debug(message)
            return
        self._warned.add(kind)
        _LOGGER.warning("%s (further ones are logged at debug level)", message)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
