"""Snapshots (syrupy) of the entities and the diagnostics after setup against the simulator.

They come on top of the behaviour tests: a change in a state, an attribute, a registry
option or a diagnostics field shows up as a snapshot diff to review. One snapshot set holds
on every lane: what differs between Home Assistant releases and is not ours is normalised.
"""

from __future__ import annotations

from collections.abc import Callable
import enum
import itertools
from types import SimpleNamespace
from typing import Any
import uuid

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.syrupy import (
    HomeAssistantSnapshotExtension,
    HomeAssistantSnapshotSerializer,
)
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from tests.conftest import FAST_PING
from tests.simulator import SimConfig, model
from tests.test_init import setup
from tests.test_sensor import (  # noqa: F401 - the fixture is used by name
    connected,
    entity_registry_enabled_by_default,
)

SIMULATOR_URL = "http://circle.test"


class _ReleaseNeutralSerializer(HomeAssistantSnapshotSerializer):
    """Home Assistant's serializer, with attribute names as plain strings.

    Since 2026 state attribute names are StrEnum members (EntityStateAttribute.FRIENDLY_NAME,
    SensorEntityCapabilityAttribute.STATE_CLASS, ...) with the same values as before.
    """

    @classmethod
    def _serialize(cls, data: Any, **kwargs: Any) -> str:
        if isinstance(data, dict) and any(isinstance(k, enum.Enum) for k in data):
            data = type(data)(
                {
                    k.value if isinstance(k, enum.Enum) and isinstance(k, str) else k: v
                    for k, v in data.items()
                }
            )
        return super()._serialize(data, **kwargs)


class _ReleaseNeutralExtension(HomeAssistantSnapshotExtension):
    serializer_class = _ReleaseNeutralSerializer


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Home Assistant's serializer: registry ids and timestamps left out."""
    # Registry fields that differ between Home Assistant releases are not ours to pin:
    # suggested_object_id became object_id_base; aliases gained the entity's own name (2026).
    return snapshot.use_extension(_ReleaseNeutralExtension).with_defaults(
        exclude=props("object_id_base", "suggested_object_id", "aliases")
    )


@pytest.fixture
def sim_config(monkeypatch: pytest.MonkeyPatch) -> SimConfig:
    """Simulator settings, with room and message uuids numbered instead of random."""
    numbers = itertools.count(1)
    monkeypatch.setattr(
        model,
        "uuidlib",
        SimpleNamespace(uuid4=lambda: uuid.UUID(int=next(numbers))),
    )
    return SimConfig(ping_interval=FAST_PING)


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Fast cable timings."""


def _seed(simulator) -> None:
    """Something to count: two unread messages in the DM, one in the group, a notification."""
    s = simulator.seeded
    community = simulator.community
    messages = [
        community.post_message(s["dm"], s["ada"].id, "one"),
        community.post_message(s["dm"], s["ada"].id, "two"),
        community.post_message(s["group"], s["alan"].id, "three"),
    ]
    for message in messages:  # the rooms' last message time, pinned
        message.sent_at = "2026-11-30T12:00:00Z"
    community.notify(42, actor_name="Alan Turing")


def _replace_strings(value: Any, replace: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        return {k: _replace_strings(v, replace) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_strings(v, replace) for v in value]
    return value


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    "platform",
    [Platform.SENSOR, Platform.BINARY_SENSOR, Platform.EVENT, Platform.NOTIFY],
)
async def test_entities(
    hass: HomeAssistant,
    simulator,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
    platform: Platform,
) -> None:
    """States, attributes and registry entries of every entity, one platform at a time."""
    monkeypatch.setattr("custom_components.circle.PLATFORMS", [platform])
    _seed(simulator)
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)


async def test_diagnostics(
    hass: HomeAssistant, hass_client, simulator, snapshot: SnapshotAssertion
) -> None:
    """Diagnostics after setup (the simulator's random port replaced by a fixed name)."""
    _seed(simulator)
    entry = await setup(hass, simulator)
    await connected(hass, entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    host = simulator.url.split("://", 1)[1]
    normalised = _replace_strings(
        diagnostics,
        lambda text: text.replace(simulator.url, SIMULATOR_URL).replace(
            host, "circle.test"
        ),
    )
    assert normalised == snapshot
