"""Circle's bad minutes on a fake clock: how long after Circle is healthy is the cable back?

A seeded random schedule of faults (drops, server restarts, 429/502 on token refresh, 503 on
mint and handshake, 429/502 on the member API) lasting up to minutes is played against the
cable's supervisor (`client/supervisor.py`, the piece that decides every wait). Each call takes
a random time (0.05-0.5 s); a 429 carries a Retry-After of 1-10 s. "Healthy" is the end of
the last fault window (or the last Retry-After, if later); "back" is the next welcome plus the
subscriptions' confirmation (0.1 s on loopback, say 0.5 s here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import random

from custom_components.circle.client.cable import CableOptions
from custom_components.circle.client.supervisor import (
    CableState,
    CableSupervisor,
    Refusal,
    StepKind,
)

KINDS = (
    "refresh_429",
    "refresh_502",
    "mint_503",
    "handshake_503",
    "rest_502",
    "rest_429",
    "drops",
)
CONFIRM = 0.5  # welcome → every subscription confirmed


@dataclass
class Window:
    """One fault, active on [start, end)."""

    kind: str
    start: float
    end: float
    retry_after: float = 0.0


@dataclass
class Schedule:
    """A fault schedule and what happened when it was played."""

    windows: list[Window]
    healthy_at: float = 0.0
    back_at: float | None = None
    trace: list[str] = field(default_factory=list)

    @property
    def recovery(self) -> float:
        """Seconds from healthy to confirmed again (inf: never)."""
        return float("inf") if self.back_at is None else self.back_at - self.healthy_at


def random_schedule(rng: random.Random) -> Schedule:
    """Between 1 and 12 fault windows within the first 10 minutes, each up to 3 minutes."""
    windows = []
    for _ in range(rng.randint(1, 12)):
        start = rng.uniform(0, 600)
        length = rng.choice((rng.uniform(0.1, 10), rng.uniform(10, 180)))
        kind = rng.choice(KINDS)
        retry = rng.uniform(1, 10) if kind.endswith("429") else 0.0
        windows.append(Window(kind, start, start + length, retry))
    return Schedule(windows)


class World:
    """Circle as the schedule makes it: answers each call by the faults active then."""

    def __init__(self, schedule: Schedule, rng: random.Random) -> None:
        self.schedule = schedule
        self.rng = rng
        self.last_retry_end = 0.0

    def active(self, kind: str, now: float) -> Window | None:
        return next(
            (
                w
                for w in self.schedule.windows
                if w.kind == kind and w.start <= now < w.end
            ),
            None,
        )

    def token(self, now: float) -> tuple[bool, float | None]:
        """Renewing fails during refresh and mint faults (worst case: always renewing)."""
        for kind in ("refresh_429", "refresh_502", "mint_503"):
            if (window := self.active(kind, now)) is not None:
                if window.retry_after:
                    self.last_retry_end = max(
                        self.last_retry_end, now + window.retry_after
                    )
                    return False, window.retry_after
                return False, None
        return True, None

    def next_drop(self, now: float) -> float | None:
        """While a drop window is active, a connection drops 0.5-20 s after it starts."""
        for window in sorted(self.schedule.windows, key=lambda w: w.start):
            if window.kind != "drops" or window.end <= now:
                continue
            when = max(window.start, now) + self.rng.uniform(0.5, 20)
            if when < window.end:
                return when
        return None


def play(
    schedule: Schedule, seed: int, options: CableOptions | None = None
) -> Schedule:
    """Run the supervisor against the schedule on a fake clock until it is back for good."""
    rng = random.Random(seed)
    world = World(schedule, rng)
    sup = CableSupervisor((options or CableOptions()).timing(), uniform=rng.uniform)
    last_fault = max(w.end for w in schedule.windows)
    now = 0.0
    step = sup.start()
    while True:
        assert sup.state is not CableState.AUTH_FAILED, schedule.trace
        schedule.trace.append(f"{now:.2f} {sup.state} {step}")
        if step.kind is StepKind.WAIT:
            now += step.delay
            step = sup.wake()
            continue
        assert step.kind is StepKind.CONNECT, step
        now += rng.uniform(0.05, 0.5)
        ok, retry = world.token(now)
        if not ok:
            reason = "rate_limited" if retry else "token_unavailable"
            step = sup.token_failed(retry_after=retry, reason=reason)
            continue
        sup.token_ready(renewed=step.renew)
        now += rng.uniform(0.05, 0.5)
        if world.active("handshake_503", now):
            step = sup.handshake_failed(Refusal.TRANSIENT, "handshake_503")
            continue
        sup.welcomed()
        welcomed = now
        drop = world.next_drop(now)
        if drop is None:  # connected for good
            schedule.healthy_at = max(last_fault, world.last_retry_end)
            schedule.back_at = max(schedule.healthy_at, welcomed + CONFIRM)
            return schedule
        now = drop
        reason = rng.choice(("dropped", "stale", "server_restart"))
        step = sup.closed(reason, connected_for=now - welcomed)


def run_many(count: int, seed: int = 1) -> list[float]:
    """Recovery times (s) over `count` random schedules."""
    rng = random.Random(seed)
    return [
        play(random_schedule(rng), rng.randrange(2**32)).recovery for _ in range(count)
    ]
