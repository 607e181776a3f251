"""Repair issues of one config entry (not fixable from Home Assistant: they say what to do)."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import (
    DOMAIN,
    ISSUE_INVALID_ADDRESS,
    ISSUE_MEMBER_NOT_FOUND,
    ISSUE_NOT_ELIGIBLE,
    ISSUE_ORIGIN_REJECTED,
    ISSUE_SUBSCRIPTION_REJECTED,
)

ALL_ISSUES = (
    ISSUE_NOT_ELIGIBLE,
    ISSUE_MEMBER_NOT_FOUND,
    ISSUE_ORIGIN_REJECTED,
    ISSUE_SUBSCRIPTION_REJECTED,
    ISSUE_INVALID_ADDRESS,
)
# An authentication verdict that a reauth cannot fix becomes one of these.
VERDICT_ISSUES = {
    "not_eligible": ISSUE_NOT_ELIGIBLE,
    "member_not_found": ISSUE_MEMBER_NOT_FOUND,
}


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
