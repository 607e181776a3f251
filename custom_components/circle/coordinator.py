"""Home Assistant glue around the client's session: one per config entry.

Every delivery decision (resync, backfill, order, de-duplication, counts, availability) is
made by the client's sans-IO core; this maps its outputs to entities, bus events, repairs and
reauth, and persists the tokens and the message ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .client import (
    CableOptions,
    ChatMessage,
    ChatRoom,
    CircleAuth,
    CircleAuthenticationError,
    CircleCable,
    CircleError,
    CircleMemberApi,
    CircleMemberNotFoundError,
    CircleNotEligibleError,
    CircleRateLimitError,
    ConnectionState,
    ConnectionStatus,
    Member,
    NewNotificationEvent,
    TokenSet,
)
from .client.delivery import (
    DeliveryConfig,
    DeliveryCore,
    Ledger,
    SyncStatus,
    UnreadState as CircleData,
)
from .client.protocol import cable_url_for
from .client.session import CircleSession
from .const import (
    AVAILABILITY_GRACE,
    CONF_APP_TOKEN,
    CONF_BACKFILL_HOURS,
    CONF_COMMUNITY_URL,
    CONF_FOLLOWED_ROOMS,
    CONF_IGNORE_OWN,
    CONF_INCLUDE_TEXT,
    CONF_LEDGER_STARTED,
    CONF_MEMBER,
    CONF_MEMBER_ID,
    CONF_ORIGIN,
    CONF_ROOM_PARAM,
    CONF_SERVER_URL,
    CONF_TOKENS,
    DEFAULT_BACKFILL_HOURS,
    DOMAIN,
    EVENT_MESSAGE_DELETED,
    EVENT_MESSAGE_UPDATED,
    EVENT_NEW_MESSAGE,
    EVENT_NEW_NOTIFICATION,
    ISSUE_MEMBER_NOT_FOUND,
    ISSUE_NOT_ELIGIBLE,
    ISSUE_ORIGIN_REJECTED,
    ISSUE_SUBSCRIPTION_REJECTED,
    LOGGER,
    ledger_store_key,
)

type CircleConfigEntry = ConfigEntry[CircleCoordinator]
type ActivityListener = Callable[[str, str, dict[str, Any]], None]

__all__ = ["CircleConfigEntry", "CircleCoordinator", "CircleData"]

CABLE_OPTIONS = CableOptions()
DELIVERY_CONFIG = DeliveryConfig(grace=AVAILABILITY_GRACE.total_seconds())
LEDGER_SAVE_DELAY = 1.0
MESSAGE_EVENTS = {
    "newMessage": ("new_message", EVENT_NEW_MESSAGE),
    "updatedMessage": ("message_updated", EVENT_MESSAGE_UPDATED),
    "deletedMessage": ("message_deleted", EVENT_MESSAGE_DELETED),
}
VERDICT_ISSUES = {
    "not_eligible": ISSUE_NOT_ELIGIBLE,
    "member_not_found": ISSUE_MEMBER_NOT_FOUND,
}


def describe_error(err: CircleError, fallback: str) -> dict[str, Any]:
    """Return the translation arguments (key, placeholders) for a client error."""
    key, placeholders = fallback, {"error": str(err)}
    if isinstance(err, CircleRateLimitError):
        key, placeholders = "rate_limited", {"seconds": f"{err.retry_after:.0f}"}
    elif isinstance(err, CircleAuthenticationError):
        key, placeholders = "auth_failed", {}
    elif isinstance(err, CircleNotEligibleError):
        key, placeholders = "not_eligible", {}
    elif isinstance(err, CircleMemberNotFoundError):
        key, placeholders = "member_not_found", {}
    return {
        "translation_domain": DOMAIN,
        "translation_key": key,
        "translation_placeholders": placeholders,
    }


def member_settings(member: str) -> dict[str, Any]:
    """`member` as typed by the user: a numeric id or an email."""
    member = member.strip()
    return {"member_id": int(member)} if member.isdigit() else {"email": member}


class CircleCoordinator(DataUpdateCoordinator[CircleData]):
    """Builds the client objects and the session of one config entry; shows their outputs."""

    config_entry: CircleConfigEntry

    def __init__(self, hass: HomeAssistant, entry: CircleConfigEntry) -> None:
        """Build the client on Home Assistant's shared session."""
        super().__init__(
            hass, LOGGER, config_entry=entry, name=DOMAIN, always_update=False
        )
        session = async_get_clientsession(hass)
        self.community_url: str = entry.data[CONF_COMMUNITY_URL]
        self.server_url: str = entry.data.get(CONF_SERVER_URL) or self.community_url
        member = str(entry.data.get(CONF_MEMBER_ID) or entry.data[CONF_MEMBER])
        self.auth = CircleAuth(
            session,
            self.server_url,
            entry.data[CONF_APP_TOKEN],
            tokens=TokenSet.from_dict(entry.data.get(CONF_TOKENS) or {}),
            on_tokens=self._persist_tokens,
            **member_settings(member),
        )
        self.api = CircleMemberApi(session, self.server_url, self.auth)
        self.options = dict(entry.options)
        self.member: Member | None = None
        self.session: CircleSession | None = None
        self.cached_device_id: str | None = None
        self.status = SyncStatus()
        self.connection = ConnectionStatus(ConnectionState.DISCONNECTED, "not_started")
        self._store: Store[dict[str, Any]] = Store(
            hass, 1, ledger_store_key(entry.entry_id)
        )
        self._ledger: Ledger | None = None
        self._ledger_lost = False
        self._activity_listeners: list[ActivityListener] = []
        self._rooms_at_setup: list[ChatRoom] = []

    async def _async_setup(self) -> None:
        """Test the credentials, learn who the member is, and load the ledger."""
        try:
            self.member = await self.api.async_get_member()
        except CircleError as err:
            translation = describe_error(err, "cannot_connect")
            if isinstance(err, CircleAuthenticationError):
                raise ConfigEntryAuthFailed(**translation) from err
            if isinstance(err, CircleNotEligibleError | CircleMemberNotFoundError):
                self._create_issue(VERDICT_ISSUES[_verdict(err)])
                raise ConfigEntryError(**translation) from err
            raise UpdateFailed(**translation) from err
        for key in VERDICT_ISSUES.values():
            ir.async_delete_issue(self.hass, DOMAIN, self._issue_id(key))
        try:
            stored = await self._store.async_load()
        except Exception:  # noqa: BLE001 - a corrupt store is a lost store
            stored = None
        self._ledger = Ledger.from_dict(stored)
        self._ledger_lost = self._ledger is None and bool(
            self.config_entry.data.get(CONF_LEDGER_STARTED)
        )

    async def _async_update_data(self) -> CircleData:
        """Read the counts once at setup (test-before-setup); the session keeps them."""
        try:
            count = await self.api.async_get_new_notifications_count()
            unread = await self.api.async_get_unread_chat_room_uuids()
            rooms = await self.api.async_get_chat_rooms()
        except CircleError as err:
            translation = describe_error(err, "cannot_connect")
            if isinstance(err, CircleAuthenticationError):
                raise ConfigEntryAuthFailed(**translation) from err
            raise UpdateFailed(**translation) from err
        self._rooms_at_setup = rooms
        return CircleData(
            new_notifications_count=count,
            unread_rooms=frozenset(unread),
            room_names={room.uuid: room.name or "" for room in rooms},
            unread_counts={room.uuid: room.unread_messages_count for room in rooms},
        )

    def async_start(self) -> None:
        """Start the session in an entry background task (cancelled at unload and stop)."""
        assert self.member is not None
        hours = float(self.options.get(CONF_BACKFILL_HOURS, DEFAULT_BACKFILL_HOURS))
        core = DeliveryCore(
            self.member.id,
            replace(
                DELIVERY_CONFIG,
                backfill_window=timedelta(hours=hours) if hours > 0 else None,
            ),
            ledger=self._ledger,
            ledger_lost=self._ledger_lost,
            state=self.data,
            rooms=self._rooms_at_setup,
        )
        cable = CircleCable(
            async_get_clientsession(self.hass),
            cable_url_for(self.server_url),
            self.auth,
            self.member.id,
            origin=self.origin,
            room_ids=[int(r) for r in self.options.get(CONF_FOLLOWED_ROOMS, [])],
            room_uuids={r.id: r.uuid for r in self._rooms_at_setup if r.id},
            room_param=self.config_entry.data.get(CONF_ROOM_PARAM),
            on_room_param=self._persist_room_param,
            options=CABLE_OPTIONS,
        )
        self.session = CircleSession(self.api, cable, core, self)
        entry = self.config_entry
        entry.async_create_background_task(
            self.hass, self.session.run(), f"{DOMAIN}_session_{entry.entry_id}"
        )

    async def async_stop(self) -> None:
        """Close the cable and save the ledger now."""
        if self.session is not None:
            await self.session.stop()
            await self._store.async_save(self.session.core.ledger.as_dict())

    @property
    def origin(self) -> str:
        """The Origin header: as configured, else the community address."""
        return str(self.config_entry.data.get(CONF_ORIGIN) or self.community_url)

    @property
    def rooms(self) -> dict[str, ChatRoom]:
        """The member's chat rooms by uuid."""
        if self.session is not None:
            return self.session.core.rooms
        return {room.uuid: room for room in self._rooms_at_setup}

    @property
    def cable(self) -> CircleCable | None:
        """The cable, once started."""
        return self.session.cable if self.session else None

    @property
    def reconnects(self) -> int:
        """How often the cable reconnected."""
        return self.session.cable.reconnects if self.session else 0

    @property
    def synced(self) -> bool:
        """The counts and missed messages were read back since the last connect."""
        return self.status.synced

    @property
    def sync_error(self) -> str | None:
        """Why the last read-back failed."""
        return self.status.sync_error

    @property
    def available(self) -> bool:
        """Down only after the grace period without a connection, or an auth verdict."""
        return self.last_update_success and self.status.available

    @property
    def device_id(self) -> str | None:
        """The service device of this entry (looked up once, at setup)."""
        return self.cached_device_id

    def _persist_tokens(self, tokens: TokenSet) -> None:
        """Save new tokens at once so a restart never loses them; no reload follows."""
        self.hass.config_entries.async_update_entry(
            self.config_entry,
            data={**self.config_entry.data, CONF_TOKENS: tokens.as_dict()},
        )

    def _persist_room_param(self, param: str) -> None:
        """Remember which room-channel parameter Circle accepted."""
        self.hass.config_entries.async_update_entry(
            self.config_entry, data={**self.config_entry.data, CONF_ROOM_PARAM: param}
        )

    # --- SessionListener ------------------------------------------------------------------

    def on_message(self, name: str, message: ChatMessage, backfilled: bool) -> None:
        """Fire a chat message event, unless the options say otherwise."""
        own = (
            self.member is not None
            and message.sender is not None
            and message.sender.community_member_id == self.member.id
        )
        if own and self.options.get(CONF_IGNORE_OWN, True):
            return
        kind, bus = MESSAGE_EVENTS[name]
        room = self.rooms.get(message.chat_room_uuid or "")
        sender = message.sender
        payload: dict[str, Any] = {
            "room_uuid": message.chat_room_uuid,
            "room_name": self.data.room_name(message.chat_room_uuid),
            "room_kind": message.chat_room_kind or (room.kind if room else None),
            "message_id": message.id,
            "sender_name": sender.name if sender else None,
            "sender_id": sender.community_member_id if sender else None,
            "sent_at": message.sent_at.isoformat() if message.sent_at else None,
            "thread_id": message.chat_thread_id,
            "parent_message_id": message.parent_message_id,
            "own": own,
            "backfilled": backfilled,
        }
        if self.options.get(CONF_INCLUDE_TEXT, True) and kind != "message_deleted":
            payload["text"] = message.body
        self._fire(kind, bus, payload)

    def on_notification(self, event: NewNotificationEvent) -> None:
        """Fire a notification event."""
        n = event.notification
        self._fire(
            "new_notification",
            EVENT_NEW_NOTIFICATION,
            {
                "notification_id": n.id,
                "action": n.action,
                "actor_name": n.actor_name,
                "title": n.notifiable_title,
                "text": getattr(n, "summary", None) or n.text,
                "space": n.space_title,
                "url": n.url,
            },
        )

    def on_state(self, state: CircleData) -> None:
        """Show new counts."""
        self.async_set_updated_data(state)

    def on_ledger_changed(self) -> None:
        """Save the ledger soon; mark the entry so a lost store is noticed later."""
        assert self.session is not None
        ledger = self.session.core.ledger
        self._store.async_delay_save(ledger.as_dict, LEDGER_SAVE_DELAY)
        if ledger.initialized and not self.config_entry.data.get(CONF_LEDGER_STARTED):
            self.hass.config_entries.async_update_entry(
                self.config_entry,
                data={**self.config_entry.data, CONF_LEDGER_STARTED: True},
            )

    def on_status(self, status: SyncStatus, connection: ConnectionStatus) -> None:
        """Availability, repairs and reauth follow the session's health."""
        previous, self.status, self.connection = self.status, status, connection
        if previous.available and not status.available:
            LOGGER.info("Connection to Circle lost (%s)", status.reason or "unknown")
        elif status.available and not previous.available:
            LOGGER.info("Connection to Circle restored")
        if connection.state is ConnectionState.CONNECTED:
            ir.async_delete_issue(
                self.hass, DOMAIN, self._issue_id(ISSUE_ORIGIN_REJECTED)
            )
        elif connection.reason == "origin_rejected":
            self._create_issue(ISSUE_ORIGIN_REJECTED, {"origin": self.origin})
        if status.auth_failed and not previous.auth_failed:
            if issue := VERDICT_ISSUES.get(status.reason or ""):
                self._create_issue(issue)
            else:
                self.config_entry.async_start_reauth(self.hass)
        self._update_rejected()
        self.async_update_listeners()

    def _update_rejected(self) -> None:
        cable = self.cable
        rejected = sorted(
            {s.channel for s in cable.subscriptions if s.state == "rejected"}
            if cable
            else set()
        )
        if rejected:
            self._create_issue(
                ISSUE_SUBSCRIPTION_REJECTED, {"channel": ", ".join(rejected)}
            )
        else:
            ir.async_delete_issue(
                self.hass, DOMAIN, self._issue_id(ISSUE_SUBSCRIPTION_REJECTED)
            )

    # --- helpers --------------------------------------------------------------------------

    def async_add_activity_listener(self, listener: ActivityListener) -> CALLBACK_TYPE:
        """Event entities listen here: (event type, bus event type, data)."""
        self._activity_listeners.append(listener)
        return lambda: self._activity_listeners.remove(listener)

    def _fire(self, kind: str, bus_event: str, payload: dict[str, Any]) -> None:
        entry_id = self.config_entry.entry_id
        self.hass.bus.async_fire(
            bus_event,
            {"config_entry_id": entry_id, "device_id": self.device_id, **payload},
        )
        for listener in tuple(self._activity_listeners):
            listener(kind, bus_event, payload)

    def _issue_id(self, key: str) -> str:
        return f"{key}_{self.config_entry.entry_id}"

    def _create_issue(
        self, key: str, placeholders: dict[str, str] | None = None
    ) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self._issue_id(key),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=key,
            translation_placeholders={
                "title": self.config_entry.title,
                **(placeholders or {}),
            },
        )


def _verdict(err: CircleError) -> str:
    return (
        "not_eligible"
        if isinstance(err, CircleNotEligibleError)
        else "member_not_found"
    )
