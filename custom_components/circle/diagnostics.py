"""Diagnostics with every secret and personal field removed."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import (
    CONF_APP_TOKEN,
    CONF_COMMUNITY_URL,
    CONF_MEMBER,
    CONF_MEMBER_ID,
    CONF_ORIGIN,
    CONF_TOKENS,
)
from .coordinator import CircleConfigEntry

TO_REDACT = {
    CONF_APP_TOKEN,
    CONF_TOKENS,
    CONF_MEMBER,
    CONF_MEMBER_ID,  # the same as the member, when typed as digits
    CONF_COMMUNITY_URL,  # these two name the community
    CONF_ORIGIN,
    "email",
    "name",
    "title",
    "unique_id",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: CircleConfigEntry
) -> dict[str, Any]:
    """Return connection, subscriptions and counts; no token, email, name or room name."""
    coordinator = entry.runtime_data
    cable = coordinator.cable
    data = coordinator.data
    return {
        "entry": async_redact_data(
            {
                "data": dict(entry.data),
                "options": dict(entry.options),
                "title": entry.title,
            },
            TO_REDACT,
        ),
        "connection": {
            "state": coordinator.connection.state.value,
            "reason": coordinator.connection.reason,
            "origin": coordinator.origin_verdict,
            "reconnects": coordinator.reconnects,
            "available": coordinator.available,
            "synced": coordinator.synced,
            "sync_error": coordinator.sync_error,
        },
        "subscriptions": [
            {"channel": sub.channel, "state": sub.state.value, "attempts": sub.attempts}
            for sub in (cable.subscriptions if cable else [])
        ],
        # Which cable server (AnyCable or stock Rails) and how its history went; the sid
        # only as a hint (it restores a session on AnyCable).
        "server": _server(cable.reliable.diagnostics()) if cable else None,
        "data": {
            "new_notifications_count": data.new_notifications_count if data else None,
            "unread_rooms": len(data.unread_rooms) if data else None,
            "unread_messages": data.unread_messages if data else None,
            "rooms": len(coordinator.rooms),
            "rooms_complete": coordinator.rooms_complete,
        },
    }


def _server(report: dict[str, Any]) -> dict[str, Any]:
    """Per-subscription history states as counts: identifiers name members and rooms."""
    states = list(report.pop("history").values())
    report["history"] = {state: states.count(state) for state in sorted(set(states))}
    return report
