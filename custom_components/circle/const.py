"""Constants of the Circle integration."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "circle"
LOGGER = logging.getLogger(__package__)

DEFAULT_COMMUNITY_URL: Final = "https://app.circle.so"

CONF_COMMUNITY_URL: Final = "community_url"
CONF_MEMBER: Final = "member"
CONF_MEMBER_ID: Final = "member_id"
CONF_APP_TOKEN: Final = "app_token"  # noqa: S105 - a key name
CONF_ORIGIN: Final = "origin"
CONF_TOKENS: Final = "tokens"
# Set once the message ledger was first saved: a ledger store missing later was lost.
CONF_LEDGER_STARTED: Final = "ledger_started"
# The Chats::RoomChannel parameter Circle accepted (chat_room_id, id or chat_room_uuid).
CONF_ROOM_PARAM: Final = "room_param"
# Entry version 2: the Circle server (auth API, member API, cable) is separate from the
# community address (default Origin and device link). Version 1 entries only had the latter.
CONF_SERVER_URL: Final = "server_url"
DEFAULT_SERVER_URL: Final = "https://app.circle.so"

CONF_INCLUDE_TEXT: Final = "include_text"
CONF_IGNORE_OWN: Final = "ignore_own_messages"
CONF_FOLLOWED_ROOMS: Final = "followed_rooms"
CONF_BACKFILL_HOURS: Final = "backfill_hours"
DEFAULT_BACKFILL_HOURS: Final = 24
# Off (the default): only administrators may send, reply and mark read as the member.
CONF_ALLOW_NON_ADMIN: Final = "allow_non_admin"

# Devices: neutral product labels (Home Assistant 2025.4 cannot translate a device model).
ACCOUNT_MODEL: Final = "Circle member"
ROOM_MODEL: Final = "Circle chat"
# Room kinds whose entities are enabled by default; others (space chats) may be hundreds.
ENABLED_ROOM_KINDS: Final = frozenset({"direct", "group_chat"})

EVENT_NEW_MESSAGE: Final = "circle_new_message"
EVENT_MESSAGE_UPDATED: Final = "circle_message_updated"
EVENT_MESSAGE_DELETED: Final = "circle_message_deleted"
EVENT_NEW_NOTIFICATION: Final = "circle_new_notification"

# Entities stay available through short reconnects (restart, blips); after this they go unavailable.
AVAILABILITY_GRACE: Final = timedelta(minutes=1)

ISSUE_NOT_ELIGIBLE: Final = "not_eligible"
ISSUE_SUBSCRIPTION_REJECTED: Final = "subscription_rejected"
ISSUE_ORIGIN_REJECTED: Final = "origin_rejected"
ISSUE_MEMBER_NOT_FOUND: Final = "member_not_found"
# An address stored in the entry breaks the config flow's rules: reconfigure it.
ISSUE_INVALID_ADDRESS: Final = "invalid_address"


def ledger_store_key(entry_id: str) -> str:
    """Storage key of an entry's message ledger (deleted with the entry)."""
    return f"{DOMAIN}.{entry_id}.last_seen"
