"""Home Assistant glue around the client's session: one per config entry.

Every delivery decision (resync, backfill, order, de-duplication, counts, availability) is
made by the client's sans-IO core; this maps its outputs to entities, bus events, repairs and
reauth, and persists the tokens and the message ledger. The client objects are put together
in `wiring.py`.
"""

from __future__ import annotations

import asyncio

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .bus import ActivityListener, EntryBus
from .client import (
    CableOptions,
    ChatMessage,
    ChatRoom,
    CircleCable,
    CircleError,
    CircleMemberApi,
    ConnectionState,
    ConnectionStatus,
    Member,
    NewNotificationEvent,
)
from .client.delivery import (
    DeliveryConfig,
    Ledger,
    Snapshot,
    SyncStatus,
    UnreadState as CircleData,
)
from .client.session import CircleSession, read_snapshot
from .const import (
    AVAILABILITY_GRACE,
    CONF_APP_TOKEN,
    CONF_COMMUNITY_URL,
    CONF_ORIGIN,
    CONF_SERVER_URL,
    DOMAIN,
    EVENT_NEW_NOTIFICATION,
    LOGGER,
)
from .errors import setup_error
from .issues import VERDICT_ISSUES, EntryIssues, origin_verdict
from .payload import MESSAGE_EVENTS, notification_payload
from .rooms import RoomActivity, message_event
from .store import LedgerStore, RuntimeBinding, RuntimeStore
from .wiring import build_auth, build_session

type CircleConfigEntry = ConfigEntry[CircleCoordinator]

__all__ = ["CircleConfigEntry", "CircleCoordinator", "CircleData"]

CABLE_OPTIONS = CableOptions()
DELIVERY_CONFIG = DeliveryConfig(grace=AVAILABILITY_GRACE.total_seconds())


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
        self.community_url: str = entry.data[CONF_COMMUNITY_URL]
        self.server_url: str = entry.data.get(CONF_SERVER_URL) or self.community_url
        self.runtime = runtime
        self.binding = RuntimeBinding(runtime, self.server_url)
        self.app_token: str = entry.data[CONF_APP_TOKEN]
        self.auth = build_auth(hass, entry, self.binding)
        self.api = CircleMemberApi(
            async_get_clientsession(hass), self.server_url, self.auth
        )
        self.options = dict(entry.options)
        self.member: Member | None = None
        self.session: CircleSession | None = None
        self.session_task: asyncio.Task[None] | None = None
        self.cached_device_id: str | None = None
        self.status = SyncStatus()
        self.connection = ConnectionStatus(ConnectionState.DISCONNECTED, "not_started")
        self.issues = EntryIssues(hass, entry)
        self.activity = RoomActivity(hass, entry)
        self._store = LedgerStore(hass, entry, runtime)
        self.ledger: Ledger | None = None
        self.ledger_lost = False
        self.bus = EntryBus(hass, entry.entry_id, lambda: self.cached_device_id)
        self.snapshot = Snapshot(0, frozenset(), ())

    async def _async_setup(self) -> None:
        """Test the credentials, learn who the member is, and load the ledger."""
        try:
            self.member = await self.api.async_get_member()
        except CircleError as err:
            raise self.issues.setup_failed(err) from err
        self.issues.clear(*VERDICT_ISSUES.values())
        self.ledger, self.ledger_lost = await self._store.async_load()

    async def _async_update_data(self) -> CircleData:
        """Read the counts once at setup (test-before-setup); the session keeps them.

        Asked again later (`homeassistant.update_entity`), the session reads them back in
        its own time: a failing read then keeps the values shown, and no room is dropped.
        """
        if self.session is not None:
            self.session.verify_soon()
            return self.session.core.state
        try:
            self.snapshot = await read_snapshot(self.api)
        except CircleError as err:
            raise setup_error(err) from err
        return CircleData.from_snapshot(self.snapshot)

    def async_start(self) -> None:
        """Start the session in an entry background task (cancelled at unload and stop)."""
        self.session = build_session(self, DELIVERY_CONFIG, CABLE_OPTIONS)
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
        return {room.uuid: room for room in self.snapshot.rooms}

    @property
    def rooms_complete(self) -> bool:
        """The last room listing held every room (so a room missing from it is gone)."""
        if self.session is not None:
            return self.session.core.rooms_complete
        return self.snapshot.complete

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
        return origin_verdict(self.connection, self.cable)

    @property
    def available(self) -> bool:
        """Down only after the grace period without a connection, or an auth verdict."""
        return self.last_update_success and self.status.available

    @property
    def device_id(self) -> str | None:
        """The service device of this entry (looked up once, at setup)."""
        return self.cached_device_id

    @property
    def superseded(self) -> bool:
        """A flow handed over new tokens since this session started (it is being replaced)."""
        return self.binding.superseded

    def rooms_read(self, uuids: set[str]) -> None:
        """Show rooms marked read from here at once (Circle's own event follows)."""
        if self.session is not None:
            self.session.rooms_read(sorted(uuids))

    def async_add_activity_listener(self, listener: ActivityListener) -> CALLBACK_TYPE:
        """Event entities listen here: (event type, bus event type, data)."""
        return self.bus.add_listener(listener)

    def notifications_read(self) -> None:
        """Show the badge reset from here at once."""
        if self.session is not None:
            self.session.notifications_read()

    # --- SessionListener ------------------------------------------------------------------

    def on_message(self, name: str, message: ChatMessage, backfilled: bool) -> None:
        """Fire a chat message event, unless the options say otherwise."""
        self.activity.note(name, message)
        if (payload := message_event(self, name, message, backfilled)) is not None:
            self.bus.fire(*MESSAGE_EVENTS[name], payload)

    def on_notification(self, event: NewNotificationEvent) -> None:
        """Fire a notification event."""
        payload = notification_payload(event.notification)
        self.bus.fire("new_notification", EVENT_NEW_NOTIFICATION, payload)

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
        if status.auth_failed and not previous.auth_failed:
            self.issues.auth_failed(status.reason)
        subs = self.cable.subscriptions if self.cable else []
        self.issues.follow(connection, subs, self.origin)
        self.async_update_listeners()
