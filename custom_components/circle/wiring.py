"""Build one entry's client objects: the token holder, the delivery core, the cable, the session.

The coordinator owns them; this only puts them together from the entry's data, options and
runtime store, on Home Assistant's shared HTTP session.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .client import CableOptions, CircleAuth, CircleCable, TokenSet
from .client.delivery import DeliveryConfig, DeliveryCore
from .client.protocol import cable_url_for
from .client.session import CircleSession
from .client.tokencheck import member_token_check
from .const import (
    CONF_APP_TOKEN,
    CONF_BACKFILL_HOURS,
    CONF_FOLLOWED_ROOMS,
    CONF_MEMBER,
    CONF_MEMBER_ID,
    DEFAULT_BACKFILL_HOURS,
)
from .store import RuntimeBinding

if TYPE_CHECKING:
    from .coordinator import CircleConfigEntry, CircleCoordinator


def member_settings(member: str) -> dict[str, Any]:
    """`member` as stored: a numeric id or an email."""
    member = member.strip()
    return {"member_id": int(member)} if member.isdigit() else {"email": member}


def build_auth(
    hass: HomeAssistant, entry: CircleConfigEntry, binding: RuntimeBinding
) -> CircleAuth:
    """Hold the member's tokens: the stored ones (this server's only), saved on renewal."""
    member = str(entry.data.get(CONF_MEMBER_ID) or entry.data[CONF_MEMBER])
    return CircleAuth(
        async_get_clientsession(hass),
        binding.server_url,
        entry.data[CONF_APP_TOKEN],
        tokens=TokenSet.from_dict(binding.tokens()),
        on_tokens=binding.save_tokens,
        **member_settings(member),
    )


def build_session(
    coordinator: CircleCoordinator, config: DeliveryConfig, cable_options: CableOptions
) -> CircleSession:
    """Put the delivery core (loaded ledger, first read) and the cable together."""
    assert coordinator.member is not None
    options, snapshot = coordinator.options, coordinator.snapshot
    hours = float(options.get(CONF_BACKFILL_HOURS, DEFAULT_BACKFILL_HOURS))
    window = timedelta(hours=hours) if hours > 0 else None
    core = DeliveryCore(
        coordinator.member.id,
        replace(config, backfill_window=window),
        ledger=coordinator.ledger,
        ledger_lost=coordinator.ledger_lost,
        state=coordinator.data,
        rooms=snapshot.rooms,
        rooms_complete=snapshot.complete,
    )
    http = async_get_clientsession(coordinator.hass)
    binding = coordinator.binding
    cable = CircleCable(
        http,
        cable_url_for(binding.server_url),
        coordinator.auth,
        coordinator.member.id,
        origin=coordinator.origin,
        room_ids=[int(r) for r in options.get(CONF_FOLLOWED_ROOMS, [])],
        room_uuids={r.id: r.uuid for r in snapshot.rooms if r.id},
        room_param=binding.room_param(),
        on_room_param=binding.save_room_param,
        options=cable_options,
        token_check=member_token_check(http, binding.server_url),
    )
    return CircleSession(coordinator.api, cable, core, coordinator)
