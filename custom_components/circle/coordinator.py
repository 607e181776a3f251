"""Home Assistant glue around the client's session: one per config entry.

Every delivery decision (resync, backfill, order, de-duplication, counts, availability) is
made by the client's sans-IO core; this maps its outputs to entities, bus events, repairs and
reauth, and persists the tokens and the message ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
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
    Snapshot,
    SyncStatus,
    UnreadState as CircleData,
)
from .client.errors import verdict_reason
from .client.protocol import cable_url_for
from .client.session import CircleSession, read_snapshot
from .client.tokencheck import member_token_check
from .compat import async_get_device_by_identifier
from .const import (
    AVAILABILITY_GRACE,
    CONF_APP_TOKEN,
    CONF_BACKFILL_HOURS,
    CONF_COMMUNITY_URL,
    CONF_FOLLOWED_ROOMS,
    CONF_IGNORE_OWN,
    CONF_INCLUDE_TEXT,
    CONF_MEMBER,
    CONF_MEMBER_ID,
    CONF_ORIGIN,
    CONF_SERVER_URL,
    DEFAULT_BACKFILL_HOURS,
    DOMAIN,
    EVENT_NEW_NOTIFICATION,
    ISSUE_ORIGIN_REJECTED,
    ISSUE_SUBSCRIPTION_REJECTED,
    LOGGER,
)
from .device import room_identifier
from .errors import describe_error
from .issues import VERDICT_ISSUES, EntryIssues
from .messaging import SentTracker
from .payload import MESSAGE_EVENTS, message_payload, notification_payload
from .store import LedgerStore, RuntimeStore

type CircleConfigEntry = ConfigEntry[CircleCoordinator]
type ActivityListener = Callable[[str, str, dict[str, Any]], None]

__all__ = ["CircleConfigEntry", "CircleCoordinator", "CircleData"]

CABLE_OPTIONS = CableOptions()
# Connection reasons that mean "Circle refused the Origin" (never the credentials).
ORIGIN_REASONS = frozenset({"origin_rejected", "origin_refused"})
DELIVERY_CONFIG = DeliveryConfig(grace=AVAILABILITY_GRACE.total_seconds())


def member_settings(member: str) -> dict[str, Any]:
    """`member` as stored: a numeric id or an email."""
    member = member.strip()
    return {"member_id": int(member)} if member.isdigit() else {"email": member}


class CircleCoordinator(DataUpdateCoordinator[CircleData]):
    """Builds the client objects and the session of one config entry; shows their outputs."""

    config_entry: CircleConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: CircleConfigEntry, runtime: RuntimeStore
    ) -> None:
        """Build the client on Home Assistant's shared session, with the stored tokens.

        Tokens another server issued are dropped here (they never go to this server).
        """
        super().__init__(
            hass, LOGGER, config_entry=entry, name=DOMAIN, always_update=False
        )
        session = async_get_clientsession(hass)
        self.community_url: str = entry.data[CONF_COMMUNITY_URL]
        self.server_url: str = entry.data.get(CONF_SERVER_URL) or self.community_url
        member = str(entry.data.get(CONF_MEMBER_ID) or entry.data[CONF_MEMBER])
        self.runtime = runtime
        self.app_token: str = entry.data[CONF_APP_TOKEN]
        runtime.bind(self.server_url)
        self.epoch = runtime.epoch
        self.auth = CircleAuth(
            session,
            self.server_url,
            entry.data[CONF_APP_TOKEN],
            tokens=TokenSet.from_dict(runtime.tokens(self.server_url) or {}),
            on_tokens=self._persist_tokens,
            **member_settings(member),
        )
        self.api = CircleMemberApi(session, self.server_url, self.auth)
        self.options = dict(entry.options)
        self.member: Member | None = None
        self.session: CircleSession | None = None
        self.session_task: asyncio.Task[None] | None = None
        self.cached_device_id: str | None = None
        self.status = SyncStatus()
        self.connection = ConnectionStatus(ConnectionState.DISCONNECTED, "not_started")
        self.issues = EntryIssues(hass, entry)
        self._store = LedgerStore(hass, entry, runtime)
        self._ledger: Ledger | None = None
        self._ledger_lost = False
        self._activity_listeners: list[ActivityListener] = []
        self._snapshot = Snapshot(0, frozenset(), ())
        # Rooms: the member's own sends (for the new message's id), each room's last message.
        self.sent = SentTracker()
        self.last_message_at: dict[str, datetime] = {}
        self.room_device_ids: dict[str, str] = {}  # kept by rooms.RoomDevices

    async def _async_setup(self) -> None:
        """Test the credentials, learn who the member is, and load the ledger."""
        try:
            self.member = await self.api.async_get_member()
        except CircleError as err:
            translation = describe_error(err, "cannot_connect")
            if isinstance(err, CircleAuthenticationError):
                raise ConfigEntryAuthFailed(**translation) from err
            if (verdict := verdict_reason(err)) in VERDICT_ISSUES:
                self.issues.raise_issue(VERDICT_ISSUES[verdict])
                raise ConfigEntryError(**translation) from err
            raise UpdateFailed(**translation) from err
        self.issues.clear(*VERDICT_ISSUES.values())
        self._ledger, self._ledger_lost = await self._store.async_load()

    async def _async_update_data(self) -> CircleData:
        """Read the counts once at setup (test-before-setup); the session keeps them.

        Asked again later (`homeassistant.update_entity`), the session reads them back in
        its own time: a failing read then keeps the values shown, and no room is dropped.
        """
        if self.session is not None:
            self.session.verify_soon()
            return self.session.core.state
        try:
            self._snapshot = await read_snapshot(self.api)
        except CircleError as err:
            translation = describe_error(err, "cannot_connect")
            if isinstance(err, CircleAuthenticationError):
                raise ConfigEntryAuthFailed(**translation) from err
            raise UpdateFailed(**translation) from err
        return CircleData.from_snapshot(self._snapshot)

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
            rooms=self._snapshot.rooms,
            rooms_complete=self._snapshot.complete,
        )
        cable = CircleCable(
            async_get_clientsession(self.hass),
            cable_url_for(self.server_url),
            self.auth,
            self.member.id,
            origin=self.origin,
            room_ids=[int(r) for r in self.options.get(CONF_FOLLOWED_ROOMS, [])],
            room_uuids={r.id: r.uuid for r in self._snapshot.rooms if r.id},
            room_param=self.runtime.room_param(self.server_url),
            on_room_param=self._persist_room_param,
            options=CABLE_OPTIONS,
            token_check=member_token_check(
                async_get_clientsession(self.hass), self.server_url
            ),
        )
        self.session = CircleSession(self.api, cable, core, self)
        entry = self.config_entry
        self.session_task = entry.async_create_background_task(
            self.hass, self.session.run(), f"{DOMAIN}_session_{entry.entry_id}"
        )

    async def async_stop(self) -> None:
        """Close the cable; save the ledger and the runtime state now."""
        if self.session is not None:
            await self.session.stop()
            await self._store.async_save(self.session.core.ledger)
        await self.runtime.async_save()

    @property
    def origin(self) -> str:
        """The Origin header: as configured, else the community address."""
        return str(self.config_entry.data.get(CONF_ORIGIN) or self.community_url)

    @property
    def rooms(self) -> dict[str, ChatRoom]:
        """The member's chat rooms by uuid."""
        if self.session is not None:
            return self.session.core.rooms
        return {room.uuid: room for room in self._snapshot.rooms}

    @property
    def rooms_complete(self) -> bool:
        """The last room listing held every room (so a room missing from it is gone)."""
        if self.session is not None:
            return self.session.core.rooms_complete
        return self._snapshot.complete

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
    def origin_verdict(self) -> str:
        """What Circle's cable made of the Origin: accepted, refused, checking or unknown."""
        if self.connection.state is ConnectionState.CONNECTED:
            return "accepted"
        cable = self.cable
        if self.connection.reason in ORIGIN_REASONS or (cable and cable.origin_refused):
            return "refused"
        if cable is not None and cable.verdict == "checking_403":
            return "checking"
        return "unknown"

    @property
    def available(self) -> bool:
        """Down only after the grace period without a connection, or an auth verdict."""
        return self.last_update_success and self.status.available

    @property
    def device_id(self) -> str | None:
        """The service device of this entry (looked up once, at setup)."""
        return self.cached_device_id

    def rooms_read(self, uuids: set[str]) -> None:
        """Show rooms marked read from here at once (Circle's own event follows)."""
        if self.session is not None:
            self.session.rooms_read(sorted(uuids))

    def notifications_read(self) -> None:
        """Show the badge reset from here at once."""
        if self.session is not None:
            self.session.notifications_read()

    @property
    def superseded(self) -> bool:
        """A flow handed over new tokens since this session started (it is being replaced)."""
        return self.epoch != self.runtime.epoch

    def _persist_tokens(self, tokens: TokenSet) -> None:
        """Save new tokens to the runtime store (no config entry is written, no reload)."""
        self.runtime.save_tokens(self.server_url, tokens.as_dict(), self.epoch)

    def _persist_room_param(self, param: str) -> None:
        """Remember which room-channel parameter Circle accepted."""
        self.runtime.save_room_param(self.server_url, param, self.epoch)

    # --- SessionListener ------------------------------------------------------------------

    def on_message(self, name: str, message: ChatMessage, backfilled: bool) -> None:
        """Fire a chat message event, unless the options say otherwise."""
        self._note_message(name, message)
        sender = message.sender
        own = bool(
            self.member and sender and sender.community_member_id == self.member.id
        )
        if own and self.options.get(CONF_IGNORE_OWN, True):
            return
        payload = message_payload(
            name,
            message,
            room=self.rooms.get(message.chat_room_uuid or ""),
            room_name=self.data.room_name(message.chat_room_uuid),
            own=own,
            backfilled=backfilled,
            include_text=self.options.get(CONF_INCLUDE_TEXT, True),
        )
        payload["room_device_id"] = self._room_device_id(message.chat_room_uuid)
        self._fire(*MESSAGE_EVENTS[name], payload)

    def _note_message(self, name: str, message: ChatMessage) -> None:
        """Room devices: an own message's id for its send; the room's last message time."""
        if name != "newMessage":
            return
        self.sent.seen(message)
        uuid, sent_at = message.chat_room_uuid, message.sent_at
        if (
            uuid
            and sent_at
            and (
                uuid not in self.last_message_at or self.last_message_at[uuid] < sent_at
            )
        ):
            self.last_message_at[uuid] = sent_at

    def _room_device_id(self, uuid: str | None) -> str | None:
        """Return the room's device, for automations that pick rooms from a device list."""
        if not uuid:
            return None
        if (device_id := self.room_device_ids.get(uuid)) is None:
            device = async_get_device_by_identifier(
                self.hass,
                room_identifier(self.config_entry, uuid),
                self.config_entry.entry_id,
            )
            if device is not None:
                device_id = self.room_device_ids[uuid] = device.id
        return device_id

    def on_notification(self, event: NewNotificationEvent) -> None:
        """Fire a notification event."""
        payload = notification_payload(event.notification)
        self._fire("new_notification", EVENT_NEW_NOTIFICATION, payload)

    def on_state(self, state: CircleData) -> None:
        """Show new counts."""
        self.async_set_updated_data(state)

    def on_ledger_changed(self) -> None:
        """Save the ledger soon; mark the entry so a lost store is noticed later."""
        assert self.session is not None
        self._store.schedule_save(self.session.core.ledger)

    def on_status(self, status: SyncStatus, connection: ConnectionStatus) -> None:
        """Availability, repairs and reauth follow the session's health."""
        previous, self.status, self.connection = self.status, status, connection
        if previous.available and not status.available:
            LOGGER.info("Connection to Circle lost (%s)", status.reason or "unknown")
        elif status.available and not previous.available:
            LOGGER.info("Connection to Circle restored")
        if connection.state is ConnectionState.CONNECTED:
            self.issues.clear(ISSUE_ORIGIN_REJECTED)
        elif connection.reason in ORIGIN_REASONS:
            # 404 (Rails) or a 403 while the member API accepts the token (AnyCable): the
            # credentials are fine, so no reauthentication; the cable retries by itself.
            self.issues.raise_issue(ISSUE_ORIGIN_REJECTED, origin=self.origin)
        if status.auth_failed and not previous.auth_failed:
            if issue := VERDICT_ISSUES.get(status.reason or ""):
                self.issues.raise_issue(issue)
            else:
                self.config_entry.async_start_reauth(self.hass)
        subs = self.cable.subscriptions if self.cable else []
        if rejected := sorted({s.channel for s in subs if s.state == "rejected"}):
            channels = ", ".join(rejected)
            self.issues.raise_issue(ISSUE_SUBSCRIPTION_REJECTED, channel=channels)
        else:
            self.issues.clear(ISSUE_SUBSCRIPTION_REJECTED)
        self.async_update_listeners()

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
