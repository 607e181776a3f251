"""The delivery core's states: one table, and nothing outside it (issue 20)."""

from __future__ import annotations

import pytest

from custom_components.circle.client.delivery import (
    DeliveryCore,
    FailureKind,
    IllegalTransitionError,
    Phase,
)
from custom_components.circle.client.phases import TRANSITIONS, Input, next_phase
from tests.test_delivery_core import Driver, room


@pytest.fixture
def auto_enable_custom_integrations() -> None:
    """Pure Python: no Home Assistant instance here."""


def test_a_429_while_resyncing_stays_syncing_with_a_retry() -> None:
    assert TRANSITIONS[(Phase.SYNCING, Input.READ_FAILED)] is Phase.SYNCING
    driver = Driver(DeliveryCore(42))
    driver.connect()
    request = driver.snapshot_id()
    driver.fetches.clear()
    driver.core.read_failed(
        driver.now, request, FailureKind.RATE_LIMITED, "rate_limited", 3.0
    )
    assert driver.core.phase is Phase.SYNCING
    assert driver.core.planner.retry_at == 3.0


@pytest.mark.parametrize(
    ("phase", "event"),
    [
        (Phase.LIVE, Input.READ_BACK),
        (Phase.DISCONNECTED, Input.READ_BACK),
        (Phase.DISCONNECTED, Input.ALL_ANSWERED),
        (Phase.SUBSCRIBING, Input.RETRY),
        (Phase.AUTH_FAILED, Input.WELCOME),
        (Phase.STOPPED, Input.AUTH_VERDICT),
        (Phase.STOPPED, Input.WELCOME),
        (Phase.LIVE, Input.READ_FAILED),
    ],
)
def test_a_move_the_table_lacks_raises(phase: Phase, event: Input) -> None:
    with pytest.raises(IllegalTransitionError):
        next_phase(phase, event)
    core = DeliveryCore(42)
    core.phase = phase
    with pytest.raises(IllegalTransitionError):
        core._move(event)
    assert core.phase is phase


def test_every_state_can_stop_and_only_stop_leaves_stopped() -> None:
    for phase in Phase:
        assert next_phase(phase, Input.STOP) is Phase.STOPPED
    assert [key for key in TRANSITIONS if key[0] is Phase.STOPPED] == [
        (Phase.STOPPED, Input.STOP)
    ]


def test_a_connection_walks_the_table() -> None:
    """Welcome, answers, read-back, a room that fails, its retry, a drop, a verdict."""
    seen = []
    core = DeliveryCore(42)
    move = core._move

    def spy(event: Input) -> None:
        before = core.phase
        move(event)
        seen.append((before, event, core.phase))

    core._move = spy  # type: ignore[method-assign]
    driver = Driver(core)
    driver.connect()
    driver.answer_snapshot(room("a", 5))
    core.disconnected(driver.now, "dropped")
    driver.connect()
    driver.answer_snapshot(room("a", 6))
    request = driver.page_ids()["a"]
    del driver.fetches[request]
    core.read_failed(driver.now, request, FailureKind.TEMPORARY, "503")
    driver.tick(1.0)
    request = driver.snapshot_id()
    del driver.fetches[request]
    core.read_failed(driver.now, request, FailureKind.AUTH, "auth_failed")
    core.stop()
    assert [(event, after) for _, event, after in seen] == [
        (Input.WELCOME, Phase.SUBSCRIBING),
        (Input.ALL_ANSWERED, Phase.SYNCING),
        (Input.READ_BACK, Phase.LIVE),
        (Input.SOCKET_LOST, Phase.DISCONNECTED),
        (Input.WELCOME, Phase.SUBSCRIBING),
        (Input.ALL_ANSWERED, Phase.SYNCING),
        (Input.READ_BACK, Phase.LIVE),
        (Input.ROOMS_FAILED, Phase.SYNCING),
        (Input.READ_FAILED, Phase.SYNCING),
        (Input.RETRY, Phase.SYNCING),
        (Input.AUTH_VERDICT, Phase.AUTH_FAILED),
        (Input.STOP, Phase.STOPPED),
    ]
    assert all(TRANSITIONS[(a, e)] is b for a, e, b in seen)
