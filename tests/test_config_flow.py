"""Config, reauth, reconfigure and options flows against the simulator."""

from __future__ import annotations

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.circle.const import DOMAIN
from tests.conftest import entry_data


def user_input(simulator, **overrides):
    return {
        "community_url": simulator.url,
        "member": str(simulator.member_id),
        "app_token": simulator.app_token,
        "advanced": {},
        **overrides,
    }


async def start(hass: HomeAssistant):
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Entries created here start a cable: keep it fast."""


async def test_user_flow_creates_entry(hass, simulator) -> None:
    result = await start(hass)
    assert result["type"] is FlowResultType.FORM and result["errors"] == {}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        user_input(
            simulator,
            member="grace@example.com",
            advanced={"origin": simulator.origin + "/x"},
        ),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Grace Hopper"
    data = result["data"]
    assert data["member_id"] == 42 and data["member"] == "grace@example.com"
    assert data["origin"] == simulator.origin
    assert data["tokens"]["access_token"] in simulator.access_tokens
    assert result["result"].unique_id == "1_42"
    await hass.async_block_till_done()
    # A second time: already configured.
    result = await start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input(simulator)
    )
    assert (
        result["type"] is FlowResultType.ABORT
        and result["reason"] == "already_configured"
    )
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("setup", "overrides", "errors"),
    [
        (None, {"app_token": "wrong"}, {"base": "invalid_auth"}),
        (
            lambda sim: setattr(sim.config, "eligible", False),
            {},
            {"base": "not_eligible"},
        ),
        (None, {"member": "nobody@example.com"}, {"member": "member_not_found"}),
        (
            lambda sim: sim.add_fault("mint", 429, retry_after="5"),
            {},
            {"base": "rate_limited"},
        ),
        (None, {"community_url": "http://127.0.0.1:9"}, {"base": "cannot_connect"}),
        (lambda sim: sim.add_fault("mint", 400), {}, {"base": "unknown"}),
        (None, {"community_url": "ftp://x"}, {"community_url": "invalid_url"}),
    ],
)
async def test_user_flow_errors_then_recovers(
    hass, simulator, setup, overrides, errors
) -> None:
    if setup:
        setup(simulator)
    result = await start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input(simulator, **overrides)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    simulator.config.eligible = True
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input(simulator)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_url_without_scheme_gets_https(hass, simulator) -> None:
    from custom_components.circle.config_flow import _normalise_url

    assert (
        _normalise_url("community.example.com/path") == "https://community.example.com"
    )
    assert _normalise_url(" http://127.0.0.1:8080/ ") == "http://127.0.0.1:8080"


def loaded_entry(hass, simulator, **data) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id="1_42",
        data=entry_data(simulator, **data),
    )
    entry.add_to_hass(hass)
    return entry


async def test_reauth(hass, simulator) -> None:
    entry = loaded_entry(hass, simulator, app_token="old")
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"app_token": "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"app_token": simulator.app_token}
    )
    assert (
        result["type"] is FlowResultType.ABORT
        and result["reason"] == "reauth_successful"
    )
    assert entry.data["app_token"] == simulator.app_token
    assert entry.data["tokens"]["access_token"] in simulator.access_tokens
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reauth_for_another_member_is_refused(hass, simulator) -> None:
    entry = loaded_entry(
        hass,
        simulator,
        app_token="old",
        member=str(simulator.seeded["ada"].id),
        member_id=simulator.seeded["ada"].id,
    )
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"app_token": simulator.app_token}
    )
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "wrong_member"


async def test_reconfigure(hass, simulator) -> None:
    entry = loaded_entry(hass, simulator)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "community_url": simulator.url,
            "member": "nobody@example.com",
            "advanced": {},
        },
    )
    assert result["errors"] == {"member": "member_not_found"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "community_url": simulator.url,
            "member": "ada@example.com",
            "advanced": {"origin": simulator.origin},
        },
    )
    assert (
        result["type"] is FlowResultType.ABORT
        and result["reason"] == "reconfigure_successful"
    )
    ada = simulator.seeded["ada"].id
    assert entry.unique_id == f"1_{ada}" and entry.data["member_id"] == ada
    assert entry.data["origin"] == simulator.origin
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_same_member_keeps_unique_id(hass, simulator) -> None:
    entry = loaded_entry(hass, simulator)
    other = MockConfigEntry(
        domain=DOMAIN, unique_id=f"1_{simulator.seeded['alan'].id}", data={}
    )
    other.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"community_url": simulator.url, "member": "alan@example.com", "advanced": {}},
    )
    assert (
        result["type"] is FlowResultType.ABORT
        and result["reason"] == "already_configured"
    )
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"community_url": simulator.url, "member": "grace@example.com", "advanced": {}},
    )
    assert result["reason"] == "reconfigure_successful" and entry.unique_id == "1_42"
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


async def test_options_flow_lists_rooms(hass, simulator) -> None:
    entry = loaded_entry(hass, simulator)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    schema = result["data_schema"].schema
    rooms_selector = next(v for k, v in schema.items() if k == "followed_rooms")
    labels = {o["label"] for o in rooms_selector.config["options"]}
    assert labels == {"Ada Lovelace", "Analytical Engines"}
    group = str(simulator.seeded["group"].id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"include_text": False, "ignore_own_messages": True, "followed_rooms": [group]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.runtime_data.options["followed_rooms"] == [group]
    await hass.config_entries.async_unload(entry.entry_id)
