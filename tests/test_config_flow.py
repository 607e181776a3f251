"""Config, reauth, reconfigure and options flows through Home Assistant's flow manager.

Every network call goes to the loopback simulator; hostile input must end as a field error
before anything is sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.circle.config_flow import _normalise_url, _parse_member
from custom_components.circle.const import DEFAULT_SERVER_URL, DOMAIN
from custom_components.circle.store import async_get_runtime_store
from tests.conftest import entry_data
from tests.simulator import CircleSimulator

COMMUNITY = "https://grace.circle.so"


def user_input(
    simulator: CircleSimulator, advanced: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    return {
        "community_url": simulator.url,
        "member": str(simulator.member_id),
        "app_token": simulator.app_token,
        "advanced": {"server_url": simulator.url, **(advanced or {})},
        **overrides,
    }


def reconfigure_input(
    simulator: CircleSimulator, advanced: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    data = user_input(simulator, advanced, **overrides)
    if "app_token" not in overrides:
        del data["app_token"]
    return data


async def start(hass: HomeAssistant) -> dict[str, Any]:
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )


async def submit(hass: HomeAssistant, flow_id: str, data: dict[str, Any]) -> Any:
    return await hass.config_entries.flow.async_configure(flow_id, data)


def schema_field(result: Any, name: str, in_section: str | None = None) -> Any:
    """The schema key called `name` (inside `in_section` if given)."""
    schema = result["data_schema"].schema
    if in_section is not None:
        section = next(v for k, v in schema.items() if k == in_section)
        schema = section.schema.schema
    return next(k for k in schema if k == name)


def suggested(result: Any, name: str, in_section: str | None = None) -> Any:
    key = schema_field(result, name, in_section)
    return (key.description or {}).get("suggested_value")


@pytest.fixture(autouse=True)
def _fast(cable_options) -> None:
    """Entries created here start a cable: keep it fast."""


# --- user step -----------------------------------------------------------------------------


async def test_user_flow_creates_entry(hass, simulator) -> None:
    """The community address is only the link and the Origin; the server gets every call."""
    simulator.config.allowed_origins.add(COMMUNITY)
    result = await start(hass)
    assert result["type"] is FlowResultType.FORM and result["errors"] == {}
    result = await submit(
        hass,
        result["flow_id"],
        user_input(
            simulator,
            community_url=COMMUNITY + "/c/home",
            member=" grace@example.com ",
        ),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Grace Hopper"
    entry = result["result"]
    assert (entry.version, entry.minor_version) == (3, 1)
    assert entry.unique_id == "1_42"
    assert dict(result["data"]) == {
        "community_url": COMMUNITY,
        "server_url": simulator.url,
        "member": "grace@example.com",
        "member_id": 42,
        "app_token": simulator.app_token,
        "origin": None,
    }
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.community_url == COMMUNITY
    # The tokens the flow minted are the entry's: no second mint, kept in the Store.
    tokens = entry.runtime_data.runtime.tokens(simulator.url)
    assert tokens["access_token"] in simulator.access_tokens
    assert sum(r["path"].endswith("auth_token") for r in simulator.requests) == 1
    # A second time: already configured.
    result = await start(hass)
    result = await submit(hass, result["flow_id"], user_input(simulator))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_user_flow_origin_and_loopback_community(hass, simulator) -> None:
    """http:// is fine for loopback; the Origin is cut to scheme://host[:port]."""
    result = await start(hass)
    result = await submit(
        hass,
        result["flow_id"],
        user_input(
            simulator,
            advanced={"origin": simulator.origin + "/x"},
            community_url="http://localhost",
            member="0042",
        ),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["community_url"] == "http://localhost"
    assert result["data"]["origin"] == simulator.origin
    assert result["data"]["member"] == "0042" and result["data"]["member_id"] == 42


async def test_user_form_defaults_to_app_circle_so(hass) -> None:
    """No network here: the form alone. The server field defaults to Circle's own host."""
    result = await start(hass)
    server = schema_field(result, "server_url", "advanced")
    assert server.default() == DEFAULT_SERVER_URL == "https://app.circle.so"
    assert suggested(result, "community_url") is None


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
        (None, {"member": "999999"}, {"member": "member_not_found"}),
        (
            lambda sim: sim.add_fault("mint", 429, retry_after="5"),
            {},
            {"base": "rate_limited"},
        ),
        (
            None,
            {"advanced": {"server_url": "http://127.0.0.1:9"}},
            {"base": "cannot_connect"},
        ),
        # Circle documents 422 on mint as its own failure ("contact support"): temporary.
        (lambda sim: sim.add_fault("mint", 422), {}, {"base": "cannot_connect"}),
        (lambda sim: sim.add_fault("mint", 500), {}, {"base": "cannot_connect"}),
        (lambda sim: sim.add_fault("mint", 400), {}, {"base": "unknown"}),
    ],
)
async def test_user_flow_errors_then_recovers(
    hass, simulator, setup, overrides, errors
) -> None:
    if setup:
        setup(simulator)
    result = await start(hass)
    result = await submit(hass, result["flow_id"], user_input(simulator, **overrides))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    # The form keeps what was typed, except the token.
    assert suggested(result, "member") == user_input(simulator, **overrides)["member"]
    assert suggested(result, "app_token") is None
    simulator.config.eligible = True
    result = await submit(hass, result["flow_id"], user_input(simulator))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_unexpected_exception_is_unknown(
    hass, simulator, monkeypatch, caplog
) -> None:
    async def boom(self: Any) -> None:
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:
        patch.setattr(
            "custom_components.circle.config_flow.CircleMemberApi.async_get_member",
            boom,
        )
        result = await start(hass)
        result = await submit(hass, result["flow_id"], user_input(simulator))
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while checking the Circle account" in caplog.text
    assert simulator.app_token not in caplog.text
    result = await submit(hass, result["flow_id"], user_input(simulator))
    assert result["type"] is FlowResultType.CREATE_ENTRY


HOSTILE_URLS = [
    ("http://evil.com", "insecure"),
    ("http://localhost.evil.com", "insecure"),
    ("http://127.1", "invalid"),
    ("https://app.circle.so@evil.com", "credentials"),
    ("app.circle.so@evil.com", "credentials"),
    ("https://user:pw@app.circle.so", "credentials"),
    ("https://@evil.com", "credentials"),
    ("https://app.circle.so\\@evil.com", "credentials"),
    ("https://app.circle.so\\evil.com", "credentials"),
    ("https://app.circle.so:99999", "invalid"),
    ("https://app.circle.so:0", "invalid"),
    ("https://app.circle.so:x", "invalid"),
    ("https://https://app.circle.so", "invalid"),
    ("https://[::1", "invalid"),
    ("https://[::g]", "invalid"),
    ("ftp://x", "invalid"),
    ("javascript:alert(1)", "invalid"),
    ("data:text/html,x", "invalid"),
    ("//evil.com", "invalid"),
    ("https:///evil.com", "invalid"),
    ("https://exa mple.com", "invalid"),
    ("https://ex%41mple.com", "invalid"),
    ("https://a..b", "invalid"),
    ("https://-bad.example", "invalid"),
    ("https://1.2.3.4.5", "invalid"),
    ("https://app.circle.so\x00", "invalid"),
]
URL_ERROR_KEYS = {
    "community_url": {
        "invalid": "invalid_url",
        "insecure": "insecure_url",
        "credentials": "url_credentials",
    },
    "server_url": {
        "invalid": "invalid_server_url",
        "insecure": "insecure_server_url",
        "credentials": "server_url_credentials",
    },
    "origin": {
        "invalid": "invalid_origin",
        "insecure": "insecure_origin",
        "credentials": "origin_credentials",
    },
}


@pytest.mark.parametrize("field", ["community_url", "server_url", "origin"])
@pytest.mark.parametrize(("value", "reason"), HOSTILE_URLS)
async def test_hostile_urls_are_field_errors(
    hass, simulator, field, value, reason
) -> None:
    """Each is a form error on its field (section fields: on the section); nothing is sent."""
    result = await start(hass)
    if field == "community_url":
        data = user_input(simulator, community_url=value)
        errors = {"community_url": URL_ERROR_KEYS[field][reason]}
    else:
        data = user_input(simulator, advanced={field: value})
        errors = {"advanced": URL_ERROR_KEYS[field][reason]}
    result = await submit(hass, result["flow_id"], data)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert simulator.requests == []


async def test_every_bad_field_is_reported_at_once(hass, simulator) -> None:
    result = await start(hass)
    result = await submit(
        hass,
        result["flow_id"],
        user_input(
            simulator,
            advanced={"server_url": "http://evil.com", "origin": "ftp://x"},
            community_url="https://a@b.example",
            member="12a",
        ),
    )
    assert result["errors"] == {
        "community_url": "url_credentials",
        "advanced": "insecure_server_url",  # the first error of the section
        "member": "invalid_member",
    }
    assert simulator.requests == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        (" http://127.0.0.1:8080/ ", "http://127.0.0.1:8080"),
        ("http://127.255.0.1", "http://127.255.0.1"),
        ("http://localhost", "http://localhost"),
        ("http://LOCALHOST:8123/x", "http://localhost:8123"),
        ("http://[::1]:8123", "http://[::1]:8123"),
        ("community.example.com/path?q#f", "https://community.example.com"),
        ("HTTPS://APP.CIRCLE.SO/", "https://app.circle.so"),
        ("app.circle.so:443", "https://app.circle.so"),
        ("https://app.circle.so:8443", "https://app.circle.so:8443"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://192.0.2.1", "https://192.0.2.1"),
        ("https://[2001:db8::1]", "https://[2001:db8::1]"),
    ],
)
def test_normalise_url_accepts(value: str, expected: str) -> None:
    assert _normalise_url(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [*HOSTILE_URLS, ("", "invalid"), ("   ", "invalid"), ("https://x\ty", "invalid")],
)
def test_normalise_url_refuses_with_a_reason(value: str, reason: str) -> None:
    with pytest.raises(vol.Invalid) as err:
        _normalise_url(value)
    assert err.value.msg == reason


async def test_blank_community_is_a_field_error(hass, simulator) -> None:
    result = await start(hass)
    result = await submit(
        hass, result["flow_id"], user_input(simulator, community_url="  ")
    )
    assert result["errors"] == {"community_url": "invalid_url"}


@pytest.mark.parametrize(
    "member",
    [
        "12a",
        "-5",
        "+5",
        "1" * 20,
        "9223372036854775808",  # 2**63: no Circle id
        "0",
        "000",
        "١٢٣",  # Arabic-Indic digits: str.isdigit() says yes, Circle says no
        "\uff14\uff12",  # fullwidth digits
        "4 2",
        "a@b",
        "a@b.c",
        "@example.com",
        "grace@",
        "grace@@example.com",
        "gr ace@example.com",
        "grace@exa mple.com",
        "grace@example..com",
        "grace@example.com\x00",
        "",
    ],
)
async def test_bad_member_is_a_field_error(hass, simulator, member: str) -> None:
    result = await start(hass)
    result = await submit(hass, result["flow_id"], user_input(simulator, member=member))
    assert result["errors"] == {"member": "invalid_member"}
    assert simulator.requests == []


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("9223372036854775807", {"member_id": 9223372036854775807}),
        (" 42 ", {"member_id": 42}),
        ("ada@example.com", {"email": "ada@example.com"}),
        ("ü@bücher.example", {"email": "ü@bücher.example"}),
    ],
)
def test_member_parsing(member: str, expected: dict[str, Any]) -> None:
    assert _parse_member(member) == expected


# --- reauth --------------------------------------------------------------------------------


def loaded_entry(hass, simulator, **data) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id="1_42",
        version=2,
        data=entry_data(simulator, **{"server_url": simulator.url, **data}),
    )
    entry.add_to_hass(hass)
    return entry


async def test_reauth(hass, simulator) -> None:
    entry = loaded_entry(hass, simulator, app_token="old")
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["title"] == "Grace Hopper"
    result = await submit(hass, result["flow_id"], {"app_token": "still-wrong"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await submit(hass, result["flow_id"], {"app_token": simulator.app_token})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data["app_token"] == simulator.app_token
    # The flow handed its tokens over before it ended (the reload has not run yet).
    runtime = await async_get_runtime_store(hass, entry.entry_id)
    handed = runtime.tokens(simulator.url)
    assert handed is not None and handed["access_token"] in simulator.access_tokens
    # The reload the flow scheduled migrates the entry to 3.1.
    await hass.async_block_till_done()
    assert entry.version == 3
    assert "tokens" not in entry.data


async def test_reauth_uses_the_server_not_the_community(hass, simulator) -> None:
    """The community address is never contacted (it does not even resolve here)."""
    entry = loaded_entry(
        hass, simulator, app_token="old", community_url="https://nowhere.invalid"
    )
    result = await entry.start_reauth_flow(hass)
    result = await submit(hass, result["flow_id"], {"app_token": simulator.app_token})
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()


async def test_reauth_member_not_found_is_a_base_error(hass, simulator) -> None:
    """The reauth form has no member field."""
    entry = loaded_entry(hass, simulator, app_token="old", member="777", member_id=777)
    result = await entry.start_reauth_flow(hass)
    result = await submit(hass, result["flow_id"], {"app_token": simulator.app_token})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "member_not_found"}


async def test_reauth_for_another_member_is_refused(hass, simulator) -> None:
    entry = loaded_entry(
        hass,
        simulator,
        app_token="old",
        member=str(simulator.seeded["ada"].id),
        member_id=simulator.seeded["ada"].id,
    )
    result = await entry.start_reauth_flow(hass)
    result = await submit(hass, result["flow_id"], {"app_token": simulator.app_token})
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "wrong_member"
    assert entry.data["app_token"] == "old"


# --- reconfigure ---------------------------------------------------------------------------


async def test_reconfigure_shows_the_entry(hass, simulator) -> None:
    entry = loaded_entry(hass, simulator, origin=simulator.origin)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    assert suggested(result, "community_url") == simulator.url
    assert suggested(result, "member") == str(simulator.member_id)
    assert suggested(result, "server_url", "advanced") == simulator.url
    assert suggested(result, "origin", "advanced") == simulator.origin
    assert suggested(result, "app_token") is None  # never sent back to the browser


async def test_reconfigure_same_member(hass, simulator) -> None:
    """Community address and Origin change; the stored token goes to the same server."""
    simulator.config.allowed_origins.add(COMMUNITY)
    entry = loaded_entry(hass, simulator, ledger_started=True)
    result = await entry.start_reconfigure_flow(hass)
    result = await submit(
        hass,
        result["flow_id"],
        reconfigure_input(simulator, member="nobody@example.com"),
    )
    assert result["errors"] == {"member": "member_not_found"}
    result = await submit(
        hass,
        result["flow_id"],
        reconfigure_input(
            simulator,
            advanced={"origin": COMMUNITY},
            community_url=COMMUNITY,
            member="grace@example.com",
        ),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == "1_42" and entry.title == "Grace Hopper"
    assert entry.data["community_url"] == COMMUNITY
    assert entry.data["origin"] == COMMUNITY
    assert entry.data["server_url"] == simulator.url
    assert entry.data["member"] == "grace@example.com"
    assert entry.data["app_token"] == simulator.app_token
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    # Runtime keys of older entries survive, moved to the Store.
    assert "ledger_started" not in entry.data
    assert entry.runtime_data.runtime.ledger_started


@pytest.mark.parametrize("member", ["ada@example.com", "alan@example.com"])
async def test_reconfigure_to_another_member_aborts(hass, simulator, member) -> None:
    """Another member is another entry: no orphaned entities, whether or not it exists."""
    entry = loaded_entry(hass, simulator)
    other = MockConfigEntry(
        domain=DOMAIN, unique_id=f"1_{simulator.seeded['alan'].id}", data={}
    )
    other.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await submit(
        hass, result["flow_id"], reconfigure_input(simulator, member=member)
    )
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "wrong_member"
    assert entry.unique_id == "1_42" and entry.data["member_id"] == 42


async def test_reconfigure_new_server_needs_the_token_again(hass, simulator) -> None:
    """The stored token is never sent to another host."""
    entry = loaded_entry(
        hass,
        simulator,
        server_url="https://old-server.invalid",
        app_token="stored",
        room_param="id",
    )
    result = await entry.start_reconfigure_flow(hass)
    result = await submit(hass, result["flow_id"], reconfigure_input(simulator))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"app_token": "app_token_required"}
    assert simulator.requests == []
    result = await submit(
        hass, result["flow_id"], reconfigure_input(simulator, app_token="")
    )
    assert result["errors"] == {"app_token": "app_token_required"}
    result = await submit(
        hass,
        result["flow_id"],
        reconfigure_input(simulator, app_token=simulator.app_token),
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data["server_url"] == simulator.url
    assert entry.data["app_token"] == simulator.app_token
    await hass.async_block_till_done()
    runtime = await async_get_runtime_store(hass, entry.entry_id)
    assert runtime.room_param(simulator.url) is None  # learned from the old server
    assert "room_param" not in entry.data


async def test_reconfigure_new_token_on_the_same_server(hass, simulator) -> None:
    entry = loaded_entry(hass, simulator, app_token="stale")
    result = await entry.start_reconfigure_flow(hass)
    result = await submit(hass, result["flow_id"], reconfigure_input(simulator))
    assert result["errors"] == {"base": "invalid_auth"}  # the stored one is stale
    result = await submit(
        hass, result["flow_id"], reconfigure_input(simulator, app_token="wrong")
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert suggested(result, "app_token") is None
    result = await submit(
        hass,
        result["flow_id"],
        reconfigure_input(simulator, app_token=simulator.app_token),
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data["app_token"] == simulator.app_token
    await hass.async_block_till_done()


async def test_reconfigure_bad_input_is_a_field_error(hass, simulator) -> None:
    entry = loaded_entry(hass, simulator)
    result = await entry.start_reconfigure_flow(hass)
    result = await submit(
        hass,
        result["flow_id"],
        reconfigure_input(
            simulator,
            advanced={"server_url": "https://app.circle.so@evil.com"},
            member="-5",
        ),
    )
    assert result["errors"] == {
        "advanced": "server_url_credentials",
        "member": "invalid_member",
    }
    assert suggested(result, "member") == "-5"
    assert simulator.requests == []


# --- options -------------------------------------------------------------------------------


def room_options(result: Any) -> dict[str, str]:
    selector = next(
        v for k, v in result["data_schema"].schema.items() if k == "followed_rooms"
    )
    return {o["value"]: o["label"] for o in selector.config["options"]}


async def test_options_flow_lists_rooms(hass, simulator) -> None:
    entry = loaded_entry(hass, simulator)
    hass.config_entries.async_update_entry(entry, options={"followed_rooms": ["9999"]})
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    group = str(simulator.seeded["group"].id)
    options = room_options(result)
    assert set(options.values()) == {"Ada Lovelace", "Analytical Engines", "9999"}
    assert options[group] == "Analytical Engines"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"include_text": False, "ignore_own_messages": True, "followed_rooms": [group]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.runtime_data.options["followed_rooms"] == [group]


@pytest.mark.parametrize("was_loaded", [False, True])
async def test_options_flow_without_a_loaded_entry(
    hass, simulator, was_loaded: bool
) -> None:
    """No crash: the form shows the rooms already chosen, without the room list."""
    entry = loaded_entry(hass, simulator)
    hass.config_entries.async_update_entry(
        entry, options={"followed_rooms": ["123"], "include_text": False}
    )
    if was_loaded:  # runtime_data of an unloaded entry is stale: not used either
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is not ConfigEntryState.LOADED
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert room_options(result) == {"123": "123"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "include_text": False,
            "ignore_own_messages": False,
            "backfill_hours": 2,
            "followed_rooms": ["123"],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["followed_rooms"] == ["123"]
    assert entry.options["ignore_own_messages"] is False


async def test_reconfigure_while_a_reauth_is_pending(hass, simulator) -> None:
    """Fixing the token through reconfigure works although a reauth flow is open."""
    entry = loaded_entry(hass, simulator, app_token="stale")
    reauth = await entry.start_reauth_flow(hass)
    assert reauth["step_id"] == "reauth_confirm"
    result = await entry.start_reconfigure_flow(hass)
    result = await submit(
        hass,
        result["flow_id"],
        reconfigure_input(simulator, app_token=simulator.app_token),
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    # And the other way round: a reauth while a reconfigure form is open.
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, "app_token": "stale"}
    )
    await entry.start_reconfigure_flow(hass)
    result = await entry.start_reauth_flow(hass)
    result = await submit(hass, result["flow_id"], {"app_token": simulator.app_token})
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()


@pytest.mark.parametrize("language", ["en", "de", "es", "fr", "nl", "pt"])
def test_not_eligible_names_the_wrong_token_type_too(language: str) -> None:
    """A 403 on mint is a plan without headless access OR an Admin API token."""
    path = Path(__file__).parents[1] / "custom_components/circle/translations"
    strings = json.loads((path / f"{language}.json").read_text())
    for raw in (
        strings["config"]["error"]["not_eligible"],
        strings["issues"]["not_eligible"]["description"],  # the repair says it too
    ):
        text = raw.replace("-", " ")
        assert "Admin API" in text and "Headless Auth" in text
