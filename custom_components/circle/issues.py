"""Repair issues of one config entry (not fixable from Home Assistant: they say what to do)."""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError, HomeAssistantError
from homeassistant.helpers import issue_registry as ir

from .client import (
    CircleAuthenticationError,
    CircleCable,
    CircleError,
    ConnectionState,
    ConnectionStatus,
    Subscription,
)
from .client.errors import verdict_reason
from .const import (
    DOMAIN,
    ISSUE_INVALID_ADDRESS,
    ISSUE_MEMBER_NOT_FOUND,
    ISSUE_NOT_ELIGIBLE,
    ISSUE_ORIGIN_REJECTED,
    ISSUE_SUBSCRIPTION_REJECTED,
)
from .errors import describe_error, setup_error

ALL_ISSUES = (
    ISSUE_NOT_ELIGIBLE,
    ISSUE_MEMBER_NOT_FOUND,
    ISSUE_ORIGIN_REJECTED,
    ISSUE_SUBSCRIPTION_REJECTED,
    ISSUE_INVALID_ADDRESS,
)
# Connection reasons that mean "Circle refused the Origin" (never the credentials).
ORIGIN_REASONS = frozenset({"origin_rejected", "origin_refused"})
# An authentication verdict that a reauth cannot fix becomes one of these.
VERDICT_ISSUES = {
    "not_eligible": ISSUE_NOT_ELIGIBLE,
    "member_not_found": ISSUE_MEMBER_NOT_FOUND,
}


def origin_verdict(connection: ConnectionStatus, cable: CircleCable | None) -> str:
    """Say what Circle's cable made of the Origin: accepted, refused, checking, unknown."""
    if connection.state is ConnectionState.CONNECTED:
        return "accepted"
    if connection.reason in ORIGIN_REASONS or (cable and cable.origin_refused):
        return "refused"
    if cable is not None and cable.verdict == "checking_403":
        return "checking"
    return "unknown"


class EntryIssues:
    """Raise and clear the issues of one entry; ids are `<key>_<entry id>`."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Issues are named after the entry."""
        self._hass = hass
        self._entry = entry

    def raise_issue(self, key: str, **placeholders: str) -> None:
        """Create (or update) an issue."""
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            f"{key}_{self._entry.entry_id}",
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=key,
            translation_placeholders={"title": self._entry.title, **placeholders},
        )

    def clear(self, *keys: str) -> None:
        """Delete issues that no longer apply (all of them when no key is given)."""
        for key in keys or ALL_ISSUES:
            ir.async_delete_issue(self._hass, DOMAIN, f"{key}_{self._entry.entry_id}")

    def follow(
        self, connection: ConnectionStatus, subs: Iterable[Subscription], origin: str
    ) -> None:
        """Raise or clear the Origin and subscription issues after a status change."""
        if connection.state is ConnectionState.CONNECTED:
            self.clear(ISSUE_ORIGIN_REJECTED)
        elif connection.reason in ORIGIN_REASONS:
            # 404 (Rails) or a 403 while the member API accepts the token (AnyCable): the
            # credentials are fine, so no reauthentication; the cable retries by itself.
            self.raise_issue(ISSUE_ORIGIN_REJECTED, origin=origin)
        if rejected := sorted({s.channel for s in subs if s.state == "rejected"}):
            channels = ", ".join(rejected)
            self.raise_issue(ISSUE_SUBSCRIPTION_REJECTED, channel=channels)
        else:
            self.clear(ISSUE_SUBSCRIPTION_REJECTED)

    def setup_failed(self, err: CircleError) -> HomeAssistantError:
        """Map a setup failure: a verdict no reauth fixes raises its issue and stops."""
        verdict = verdict_reason(err)
        if not isinstance(err, CircleAuthenticationError) and verdict in VERDICT_ISSUES:
            self.raise_issue(VERDICT_ISSUES[verdict])
            return ConfigEntryError(**describe_error(err, "cannot_connect"))
        return setup_error(err)

    def auth_failed(self, reason: str | None) -> None:
        """Act on an authentication verdict: its issue if no reauth fixes it, else reauth."""
        if issue := VERDICT_ISSUES.get(reason or ""):
            self.raise_issue(issue)
        else:
            self._entry.async_start_reauth(self._hass)
