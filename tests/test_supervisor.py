"""The cable's supervisor, sans-IO: every order of inputs, and the recovery bound on a fake clock."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
import pytest

from custom_components.circle.client.retry_after import (
    clamp_retry_after,
    retry_after_floor,
)
from custom_components.circle.client.supervisor import (
    TRANSITIONS,
    WAITING,
    CableState,
    CableSupervisor,
    IllegalTransitionError,
    Refusal,
    Step,
    StepKind,
    Timing,
    TokenVerdict,
    renewal_delay,
)
from tests.recovery_model import play, random_schedule, run_many

S = CableState
TIMING = Timing()
RETRY = st.one_of(
    st.none(), st.floats(0, 7200), st.sampled_from([float("nan"), float("inf")])
)
REASONS = st.sampled_from(
    [
        "unauthorized",
        "token_expired",
        "server_restart",
        "remote",
        "invalid_request",
        "idle_timeout",
        "no_pong",
        "too_slow",
        "stale",
        "dropped",
        "something_new",
    ]
)


class SupervisorMachine(RuleBasedStateMachine):
    """Feed any input the driver could send; check the verdict and timing rules."""

    def __init__(self) -> None:
        super().__init__()
        self.rng = random.Random(0)
        self.sup = CableSupervisor(TIMING, uniform=self.rng.uniform)
        self.step: Step = self.sup.start()
        self.has_token = False  # as the driver: a token first, then the handshake
        self.renewed_since_welcome = False  # the model's own idea of "fresh"
        self.rest_rejected_fresh = False
        self.fatal = False

    def _record(self, step: Step, *, retry_after: float | None = None) -> None:
        if step.kind is StepKind.WAIT:
            assert step.delay >= retry_after_floor(retry_after)
            assert step.delay >= 0
            if self.sup.state is S.ORIGIN_REFUSED:
                assert step.delay <= TIMING.origin_retry_max
            elif self.sup.state is S.WAITING_TOKEN and retry_after is None:
                assert step.delay <= TIMING.renew_max
            elif self.sup.state is S.BACKING_OFF and retry_after is None:
                assert step.delay <= max(
                    2 * TIMING.backoff_max, TIMING.origin_retry_max
                )
        self.step = step

    @precondition(lambda self: self.sup.state is S.CONNECTING and not self.has_token)
    @rule(renewed=st.booleans())
    def token_ready(self, renewed: bool) -> None:
        renew = self.step.renew
        self.has_token = True
        self.sup.token_ready(renewed=renewed)
        if renew and renewed:
            self.renewed_since_welcome = True

    @precondition(lambda self: self.sup.state is S.CONNECTING and not self.has_token)
    @rule(retry=RETRY, fatal=st.booleans())
    def token_failed(self, retry: float | None, fatal: bool) -> None:
        step = self.sup.token_failed(
            fatal="not_eligible" if fatal else None, retry_after=retry
        )
        if fatal:
            self.fatal = True
            assert step.kind is StepKind.DONE
        else:
            self._record(step, retry_after=retry)

    @precondition(lambda self: self.sup.state is S.CONNECTING and self.has_token)
    @rule()
    def welcomed(self) -> None:
        self.sup.welcomed()
        self.renewed_since_welcome = False
        assert not self.sup.origin_refused

    @precondition(lambda self: self.sup.state is S.CONNECTING and self.has_token)
    @rule(refusal=st.sampled_from(Refusal), retry=RETRY)
    def handshake_failed(self, refusal: Refusal, retry: float | None) -> None:
        if refusal in (Refusal.HANDSHAKE, Refusal.ORIGIN_404):
            retry = None  # the driver sends a Retry-After only with 429 and 5xx
        step = self.sup.handshake_failed(refusal, "x", retry)
        if refusal is Refusal.HANDSHAKE:
            # A refusal is never a verdict by itself: renew, or ask the member API.
            assert step.kind in (StepKind.WAIT, StepKind.CHECK_TOKEN)
            assert step.kind is StepKind.WAIT or self.sup.state is S.CHECKING_403
        self._record(
            step, retry_after=retry if refusal is not Refusal.HANDSHAKE else None
        )

    @precondition(
        lambda self: self.sup.state is S.CONNECTED
        or (self.sup.state is S.CONNECTING and self.has_token)
    )
    @rule(reason=REASONS, reconnect=st.booleans(), lived=st.floats(0, 100))
    def closed(self, reason: str, reconnect: bool, lived: float) -> None:
        fresh = self.renewed_since_welcome
        step = self.sup.closed(reason, reconnect=reconnect, connected_for=lived)
        assert step.kind is not StepKind.DONE  # a disconnect alone is never a verdict
        if reason == "token_expired" and not fresh:
            assert step == Step(StepKind.WAIT, 0.0, reason="token_expired")
            assert self.sup.state is S.WAITING_TOKEN
        self._record(step)

    @precondition(lambda self: self.sup.state is S.CHECKING_403)
    @rule(verdict=st.sampled_from(TokenVerdict), retry=RETRY)
    def token_checked(self, verdict: TokenVerdict, retry: float | None) -> None:
        fresh = self.renewed_since_welcome
        step = self.sup.token_checked(verdict, retry)
        if verdict is TokenVerdict.VALID:
            self.renewed_since_welcome = False
        if step.kind is StepKind.DONE:
            # The only refusal verdict: the member API rejected a freshly renewed token.
            assert verdict is TokenVerdict.REJECTED and fresh
            self.rest_rejected_fresh = True
        else:
            self._record(
                step, retry_after=retry if verdict is TokenVerdict.UNKNOWN else None
            )

    @precondition(lambda self: self.sup.state in WAITING)
    @rule()
    def wake(self) -> None:
        self.step = self.sup.wake()
        self.has_token = False
        assert self.step.kind is StepKind.CONNECT

    @rule(data=st.data())
    def illegal_input_raises(self, data: st.DataObject) -> None:
        state = self.sup.state
        calls = {
            "wake": (lambda: self.sup.wake(), state not in WAITING),
            "welcomed": (
                lambda: self.sup.welcomed(),
                S.CONNECTED not in TRANSITIONS[state],
            ),
            "checked": (
                lambda: self.sup.token_checked(TokenVerdict.VALID),
                state is not S.CHECKING_403,
            ),
            "closed": (
                lambda: self.sup.closed("dropped"),
                state not in (S.CONNECTING, S.CONNECTED),
            ),
        }
        name = data.draw(st.sampled_from(sorted(calls)))
        call, illegal = calls[name]
        if illegal:
            with pytest.raises(IllegalTransitionError):
                call()
            assert self.sup.state is state  # nothing changed

    @invariant()
    def auth_failed_only_with_a_word(self) -> None:
        if self.sup.state is S.AUTH_FAILED:
            assert self.fatal or self.rest_rejected_fresh

    @invariant()
    def fresh_matches_the_model(self) -> None:
        assert self.sup.fresh == self.renewed_since_welcome


SupervisorMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=60, deadline=None
)
TestSupervisor = SupervisorMachine.TestCase


def test_a_cdn_challenge_costs_a_normal_reconnect() -> None:
    """Two 403s, then Circle answers: renew, check, one short wait: no verdict."""
    sup = CableSupervisor(TIMING, uniform=lambda a, b: b)
    sup.start()
    sup.token_ready(renewed=False)
    renew = sup.handshake_failed(Refusal.HANDSHAKE, "handshake_403")
    assert renew == Step(StepKind.WAIT, 0.0, reason="unauthorized")
    assert sup.wake().renew
    sup.token_ready(renewed=True)
    assert (
        sup.handshake_failed(Refusal.HANDSHAKE, "handshake_403").kind
        is StepKind.CHECK_TOKEN
    )
    wait = sup.token_checked(TokenVerdict.VALID)
    assert sup.state is S.ORIGIN_REFUSED and wait.delay <= TIMING.origin_retry_initial
    sup.wake()
    sup.token_ready(renewed=False)
    sup.welcomed()
    assert not sup.origin_refused


def test_origin_refusals_wait_at_most_five_minutes() -> None:
    sup = CableSupervisor(TIMING, uniform=lambda a, b: b)
    sup.start()
    sup.token_ready(renewed=False)
    sup.handshake_failed(Refusal.HANDSHAKE, "handshake_403")
    sup.wake()
    sup.token_ready(renewed=True)
    waits = []
    for _ in range(20):
        assert sup.handshake_failed(Refusal.HANDSHAKE, "h").kind is StepKind.CHECK_TOKEN
        waits.append(sup.token_checked(TokenVerdict.VALID).delay)
        sup.wake()
        sup.token_ready(renewed=False)
    assert max(waits) == 300.0
    assert waits[:3] == [5.0, 10.0, 20.0]
    # An old token the member API now rejects is renewed first, then judged.
    sup.handshake_failed(Refusal.HANDSHAKE, "h")
    assert sup.token_checked(TokenVerdict.REJECTED).kind is StepKind.WAIT
    sup.wake()
    sup.token_ready(renewed=True)
    sup.handshake_failed(Refusal.HANDSHAKE, "h")
    assert sup.token_checked(TokenVerdict.REJECTED).kind is StepKind.DONE


def test_unauthorized_twice_with_a_good_token_is_no_verdict() -> None:
    sup = CableSupervisor(TIMING, uniform=lambda a, b: b)
    sup.start()
    sup.token_ready(renewed=False)
    assert sup.closed("unauthorized", reconnect=False).delay == 0.0
    sup.wake()
    sup.token_ready(renewed=True)
    assert sup.closed("unauthorized", reconnect=False).kind is StepKind.CHECK_TOKEN
    step = sup.token_checked(TokenVerdict.VALID)
    assert sup.state is S.BACKING_OFF and step.reason == "cable_unauthorized"
    assert step.delay <= TIMING.origin_retry_max


def test_renewal_delay_ladder() -> None:
    assert [renewal_delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 15, 15]
    assert renewal_delay(1, 0.2) == 1.0
    assert renewal_delay(1, 30) == 30
    assert renewal_delay(9, 10_000) == 3600


def test_reconnect_false_is_slowed_to_between_one_and_two_caps() -> None:
    for seed in range(50):
        sup = CableSupervisor(TIMING, uniform=random.Random(seed).uniform)
        sup.start()
        sup.token_ready(renewed=False)
        sup.welcomed()
        delay = sup.closed("remote", reconnect=False, connected_for=100).delay
        assert TIMING.backoff_max <= delay <= 2 * TIMING.backoff_max


def test_recovery_within_20_s_over_many_seeded_schedules() -> None:
    """2,000 random schedules of faults lasting seconds to minutes: back within 20 s."""
    times = run_many(2000, seed=19)
    assert max(times) <= 20.0, max(times)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_recovery_within_20_s_whatever_the_schedule(seed: int) -> None:
    rng = random.Random(seed)
    schedule = play(random_schedule(rng), rng.randrange(2**32))
    assert schedule.recovery <= 20.0, schedule.trace[-20:]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, 0.0),
        (0.0, 1.0),
        (-5.0, 1.0),
        (2.5, 2.5),
        (7200.0, 3600.0),
        (float("inf"), 3600.0),
        (float("nan"), 3600.0),
    ],
)
def test_one_retry_after_rule_for_rest_and_the_cable(
    given: float | None, expected: float
) -> None:
    """REST, the read-backs and the supervisor share one clamp: junk is never "at once"."""
    assert retry_after_floor(given) == expected
    if given is not None:
        assert clamp_retry_after(given) == expected
    assert renewal_delay(1, given) == max(expected, TIMING.renew_initial)
    sup = CableSupervisor(TIMING, uniform=lambda a, b: b)
    sup.start()
    sup.token_ready(renewed=False)
    step = sup.handshake_failed(Refusal.TRANSIENT, "handshake_503", retry_after=given)
    assert step.kind is StepKind.WAIT
    assert step.delay == max(expected, TIMING.backoff_initial)
