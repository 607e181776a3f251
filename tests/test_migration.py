"""Config entry migration: a version 1 entry keeps working exactly as before."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.circle.const import DOMAIN
from custom_components.circle.store import async_get_runtime_store
from tests.conftest import entry_data, wait_for
from tests.simulator import CircleSimulator
from tests.test_init import device_of


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Migrated entries start a cable: keep it fast."""


def v1_data(simulator: CircleSimulator) -> dict:
    """What version 1 of the flow stored: one address for everything."""
    data = entry_data(simulator, origin=None)
    data.pop("server_url", None)
    return data


async def test_v1_entry_is_migrated_and_loads(
    hass: HomeAssistant, simulator: CircleSimulator
) -> None:
    """The old address becomes the Circle server too; the entry loads against it."""
    data = v1_data(simulator)
    entry = MockConfigEntry(
        domain=DOMAIN, title="Grace Hopper", unique_id="1_42", version=1, data=data
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (3, 1)
    assert entry.data["server_url"] == entry.data["community_url"] == simulator.url
    for key, value in data.items():
        if key != "tokens":  # runtime state: moved to the Store
            assert entry.data[key] == value
    assert "tokens" not in entry.data
    coordinator = entry.runtime_data
    assert coordinator.community_url == simulator.url
    assert coordinator.member is not None and coordinator.member.id == 42
    # The cable goes to the same host as before, with the same Origin.
    await wait_for(lambda: simulator.connections)
    assert entry.runtime_data.available


async def test_v3_1_entry_is_left_alone(
    hass: HomeAssistant, simulator: CircleSimulator
) -> None:
    """Version 3.1 is current: nothing changes.

    Later versions are tried only for their refusal (below): Home Assistant 2026.9 and later
    refuse to load an entry newer than the integration before calling it.
    """
    data = entry_data(
        simulator, server_url=simulator.url, community_url="https://grace.circle.so"
    )
    data.pop("tokens")  # runtime state: never in a 3.1 entry
    simulator.config.allowed_origins.add("https://grace.circle.so")
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="1_42", version=3, minor_version=1, data=data
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (3, 1)
    assert dict(entry.data) == data


async def test_future_version_is_refused(
    hass: HomeAssistant, simulator: CircleSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A downgrade must not run an entry it does not understand."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id="1_42",
        version=4,
        data=entry_data(simulator, server_url=simulator.url),
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    # Refused by us (2025.4) or by Home Assistant itself (2026.9 and later): either way
    # nothing runs and nothing is sent.
    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert entry.version == 4
    assert simulator.requests == []


async def test_a_rolled_back_2_2_entry_is_cleaned_on_upgrade(
    hass: HomeAssistant, simulator: CircleSimulator
) -> None:
    """2.2 was a minor bump, so an older release ran it after a rollback: it wrote fresh
    tokens back into the entry and made a second device. Version 3 takes the entry's newer
    tokens into the store, strips them, and folds the second device into the first."""
    stale = simulator.issue_tokens(42)
    fresh = simulator.issue_tokens(42)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id="1_42",
        version=2,
        minor_version=2,
        data=entry_data(simulator, server_url=simulator.url, tokens=fresh),
    )
    entry.add_to_hass(hass)
    runtime = await async_get_runtime_store(hass, entry.entry_id)
    runtime.adopt(simulator.url, {"tokens": stale})
    await runtime.async_save()
    devices, entities = dr.async_get(hass), er.async_get(hass)
    first = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, "1_42")}
    )
    second = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, entry.entry_id)}
    )
    badge = entities.async_get_or_create(
        "sensor",
        DOMAIN,
        "1_42_unread_notifications",
        config_entry=entry,
        device_id=second.id,
        suggested_object_id="my_circle_badge",
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (3, 1)
    assert "tokens" not in entry.data
    assert runtime.tokens(simulator.url)["refresh_token"] == fresh["refresh_token"]
    assert not any(r["path"].endswith("auth_token") for r in simulator.requests)
    assert devices.async_get(second.id) is None
    assert device_of(hass, entry).id == first.id
    assert entities.async_get(badge.entity_id).device_id == first.id
    assert hass.states.get("sensor.my_circle_badge") is not None


@pytest.mark.parametrize("store_has_tokens", [False, True])
async def test_runtime_keys_in_a_v3_entry_are_stripped_at_setup(
    hass: HomeAssistant, simulator: CircleSimulator, store_has_tokens: bool
) -> None:
    """Tokens never stay in the entry: moved to the store if it has none, else dropped."""
    in_store = simulator.issue_tokens(42)
    in_entry = simulator.issue_tokens(42)
    data = entry_data(simulator, server_url=simulator.url)
    data.pop("tokens")
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="1_42",
        version=3,
        minor_version=1,
        data={**data, "tokens": in_entry, "room_param": "id"},
    )
    entry.add_to_hass(hass)
    runtime = await async_get_runtime_store(hass, entry.entry_id)
    if store_has_tokens:
        runtime.adopt(simulator.url, {"tokens": in_store})
        await runtime.async_save()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert dict(entry.data) == data
    expected = in_store if store_has_tokens else in_entry
    assert runtime.tokens(simulator.url)["refresh_token"] == expected["refresh_token"]
    assert not any(r["path"].endswith("auth_token") for r in simulator.requests)


async def test_v2_1_runtime_state_moves_to_the_store(
    hass: HomeAssistant, simulator: CircleSimulator
) -> None:
    """Tokens, room parameter and ledger marker leave the entry and lose nothing; the
    device gets the account's identifier and keeps its id and entities."""
    s = simulator.seeded
    tokens = simulator.issue_tokens(42)
    simulator.config.room_params = ("chat_room_uuid",)
    data = entry_data(
        simulator,
        server_url=simulator.url,
        tokens=tokens,
        room_param="chat_room_uuid",
        ledger_started=True,
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id="1_42",
        version=2,
        minor_version=1,
        data=data,
        options={"followed_rooms": [str(s["group"].id)]},
    )
    entry.add_to_hass(hass)
    devices, entities = dr.async_get(hass), er.async_get(hass)
    old = devices.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, entry.entry_id)},
        name="Circle Grace Hopper",
    )
    entity = entities.async_get_or_create(
        "sensor",
        DOMAIN,
        "1_42_unread_notifications",
        config_entry=entry,
        device_id=old.id,
        suggested_object_id="my_circle_badge",
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (3, 1)
    user_keys = {k: v for k, v in data.items() if k not in ("tokens", "room_param")}
    user_keys.pop("ledger_started")
    assert dict(entry.data) == user_keys
    runtime = await async_get_runtime_store(hass, entry.entry_id)
    assert runtime.data["server_url"] == simulator.url
    assert runtime.ledger_started
    assert runtime.room_param(simulator.url) == "chat_room_uuid"
    # The stored tokens are used: no mint.
    assert runtime.tokens(simulator.url)["refresh_token"] == tokens["refresh_token"]
    assert not any(r["path"].endswith("auth_token") for r in simulator.requests)
    device = device_of(hass, entry)
    assert device.id == old.id
    assert device.identifiers == {(DOMAIN, "1_42")}
    assert entities.async_get(entity.entity_id).device_id == old.id
    assert hass.states.get("sensor.my_circle_badge") is not None
    await wait_for(
        lambda: [
            sub.param for sub in entry.runtime_data.cable.subscriptions if sub.room_id
        ]
        == ["chat_room_uuid"]
    )


@pytest.mark.parametrize(
    ("field", "address"),
    [
        ("community_url", "http://grace:secret@127.0.0.1:{port}"),
        ("community_url", "http://127.0.0.1:{port}\\@evil.example"),
        ("community_url", "http://evil.example"),
        ("server_url", "http://evil.example"),
        ("server_url", "http://127.0.0.1:0"),
        ("origin", "ftp://127.0.0.1:{port}"),
    ],
)
async def test_an_address_the_flow_refuses_is_refused_at_setup(
    hass: HomeAssistant, simulator: CircleSimulator, field: str, address: str
) -> None:
    """Migration (v1) and setup apply the config flow's rules: a repair, no request."""
    address = address.format(port=simulator.port)
    version = 1 if field == "community_url" else 2
    data = entry_data(simulator, **{field: address})
    if version == 1:
        data.pop("server_url", None)
    else:
        data.setdefault("server_url", simulator.url)
        data[field] = address
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id="1_42",
        version=version,
        data=data,
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert simulator.requests == []
    issues = ir.async_get(hass)
    issue = issues.async_get_issue(DOMAIN, f"invalid_address_{entry.entry_id}")
    assert issue is not None and issue.translation_key == "invalid_address"
    # Reconfigured to a good address, the entry loads and the repair goes.
    hass.config_entries.async_update_entry(
        entry,
        data={
            **entry.data,
            "community_url": simulator.url,
            "server_url": simulator.url,
            "origin": None,
        },
    )
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert issues.async_get_issue(DOMAIN, f"invalid_address_{entry.entry_id}") is None


async def test_v1_migration_normalises_the_address(
    hass: HomeAssistant, simulator: CircleSimulator
) -> None:
    """The address is stored as the flow stores it (scheme, host, port)."""
    data = v1_data(simulator)
    data["community_url"] = f"{simulator.url}/c/home/"
    entry = MockConfigEntry(
        domain=DOMAIN, title="Grace Hopper", unique_id="1_42", version=1, data=data
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.data["server_url"] == simulator.url
