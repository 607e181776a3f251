"""The push coordinator: one Circle cable per config entry.

Cable events flow one way: client events -> this coordinator -> entities and bus events.
Counts are resynced over REST whenever the member channels are (re)confirmed, because the
cable has no replay and drops what was broadcast before a subscription was confirmed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .backfill import MessageLedger
from .client import (
    CableEvent,
    CableOptions,
    ChatMessage,
    ChatRoom,
    ChatRoomEvent,
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
    MessageEvent,
    NewNotificationEvent,
    NotificationCountEvent,
    Subscription,
    SubscriptionState,
    TokenSet,
)
from .client.protocol import cable_url_for
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
    CONF_TOKENS,
    DEFAULT_BACKFILL_HOURS,
    DOMAIN,
    EVENT_MESSAGE_DELETED,
    EVENT_MESSAGE_UPDATED,
    EVENT_NEW_MESSAGE,
    EVENT_NEW_NOTIFICATION,
    ISSUE_NOT_ELIGIBLE,
    ISSUE_ORIGIN_REJECTED,
    ISSUE_SUBSCRIPTION_REJECTED,
    LOGGER,
)

type CircleConfigEntry = ConfigEntry[CircleCoordinator]

CABLE_OPTIONS = CableOptions()
RESYNC_RETRY_INITIAL = 5.0
HOLD_MAX = 10.0
MAX_REREADS = 3
RESYNC_RETRY_MAX = 300.0


@dataclass(frozen=True, slots=True)
class CircleData:
    """What the entities show."""

    new_notifications_count: int
    unread_rooms: frozenset[str]
    room_names: dict[str, str] = field(default_factory=dict)
    unread_counts: dict[str, int] = field(default_factory=dict)

    @property
    def unread_messages(self) -> int:
        """Unread messages across all rooms."""
        return sum(self.unread_counts.values())

    def room_name(self, uuid: str | None) -> str | None:
        """Name of a room, if known."""
        return self.room_names.get(uuid) if uuid else None


MESSAGE_EVENTS = {
    "newMessage": ("new_message", EVENT_NEW_MESSAGE),
    "updatedMessage": ("message_updated", EVENT_MESSAGE_UPDATED),
    "deletedMessage": ("message_deleted", EVENT_MESSAGE_DELETED),
}

# (entity event type, bus event type, data)
type ActivityListener = Callable[[str, str, dict[str, Any]], None]


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
    """Owns the client objects and the cable task of one config entry."""

    config_entry: CircleConfigEntry

    def __init__(self, hass: HomeAssistant, entry: CircleConfigEntry) -> None:
        """Build the client on Home Assistant's shared session."""
        super().__init__(
            hass, LOGGER, config_entry=entry, name=DOMAIN, always_update=False
        )
        session = async_get_clientsession(hass)
        self.community_url: str = entry.data[CONF_COMMUNITY_URL]
        self.auth = CircleAuth(
            session,
            self.community_url,
            entry.data[CONF_APP_TOKEN],
            tokens=TokenSet.from_dict(entry.data.get(CONF_TOKENS) or {}),
            on_tokens=self._async_persist_tokens,
            **member_settings(
                str(entry.data.get(CONF_MEMBER_ID) or entry.data[CONF_MEMBER])
            ),
        )
        self.api = CircleMemberApi(session, self.community_url, self.auth)
        self.options = dict(entry.options)
        self.member: Member | None = None
        self.cable: CircleCable | None = None
        self.rooms: dict[str, ChatRoom] = {}
        self.connection = ConnectionStatus(ConnectionState.DISCONNECTED, "not_started")
        self.cable_available = True
        self._grace_unsub: CALLBACK_TYPE | None = None
        self._activity_listeners: list[ActivityListener] = []
        self._rejected: set[str] = set()
        self._resync_task: asyncio.Task[None] | None = None
        self._cable_task: asyncio.Task[None] | None = None
        self._pushed_during_resync = False
        self.ledger = MessageLedger(hass, entry.entry_id)
        self._held_messages: list[ChatMessage] = []
        self._holding = True  # until the first backfill after (re)connecting
        self._counted: dict[str, int] = {}
        self._hold_unsub: CALLBACK_TYPE | None = None

    # --- setup -----------------------------------------------------------------------------

    async def _async_setup(self) -> None:
        """Test the credentials and learn who the member is (test-before-setup)."""
        await self.ledger.async_load()
        try:
            self.member = await self.api.async_get_member()
        except CircleError as err:
            translation = describe_error(err, "cannot_connect")
            if isinstance(err, CircleAuthenticationError):
                raise ConfigEntryAuthFailed(**translation) from err
            if isinstance(err, CircleNotEligibleError):
                self._create_issue(ISSUE_NOT_ELIGIBLE)
            if isinstance(err, CircleNotEligibleError | CircleMemberNotFoundError):
                raise ConfigEntryError(**translation) from err
            raise UpdateFailed(**translation) from err
        ir.async_delete_issue(
            self.hass, DOMAIN, f"{ISSUE_NOT_ELIGIBLE}_{self.config_entry.entry_id}"
        )

    async def _async_update_data(self) -> CircleData:
        """Resync everything the cable may have missed."""
        try:
            count = await self.api.async_get_new_notifications_count()
            unread = await self.api.async_get_unread_chat_room_uuids()
            rooms = await self.api.async_get_chat_rooms()
        except CircleError as err:
            translation = describe_error(err, "cannot_connect")
            if isinstance(err, CircleAuthenticationError):
                raise ConfigEntryAuthFailed(**translation) from err
            raise UpdateFailed(**translation) from err
        self.rooms = {room.uuid: room for room in rooms}
        # Live messages up to these ids are already in the counts just read.
        self._counted = {room.uuid: room.last_message_id or 0 for room in rooms}
        return CircleData(
            new_notifications_count=count,
            unread_rooms=frozenset(unread),
            room_names={room.uuid: room.name or "" for room in rooms},
            unread_counts={room.uuid: room.unread_messages_count for room in rooms},
        )

    @callback
    def async_start(self) -> None:
        """Start the cable in an entry background task; stop it on unload and on HA stop."""
        assert self.member is not None
        followed = [
            int(room_id) for room_id in self.options.get(CONF_FOLLOWED_ROOMS, [])
        ]
        self.cable = CircleCable(
            async_get_clientsession(self.hass),
            cable_url_for(self.community_url),
            self.auth,
            self.member.id,
            origin=self.config_entry.data.get(CONF_ORIGIN) or self.community_url,
            room_ids=followed,
            options=CABLE_OPTIONS,
        )
        entry = self.config_entry
        entry.async_on_unload(self.cable.add_event_listener(self._async_on_event))
        entry.async_on_unload(self.cable.add_state_listener(self._async_on_state))
        entry.async_on_unload(
            self.cable.add_subscription_listener(self._async_on_subscription)
        )
        self._cable_task = entry.async_create_background_task(
            self.hass, self.cable.run(), f"{DOMAIN}_cable_{entry.entry_id}"
        )
        entry.async_on_unload(
            self.hass.bus.async_listen_once(
                EVENT_HOMEASSISTANT_STOP, self._async_on_hass_stop
            )
        )
        entry.async_on_unload(self._cancel_grace)
        entry.async_on_unload(self._cancel_hold_timer)

    async def async_stop(self) -> None:
        """Close the cable and save what was seen."""
        if self.cable is not None:
            await self.cable.stop()
        if self._cable_task is not None:
            # Let an attempt that was connecting finish and close, rather than cut it off.
            await asyncio.wait(
                {self._cable_task}, timeout=CABLE_OPTIONS.connect_timeout
            )
        await self.ledger.async_save()

    async def _async_on_hass_stop(self, _event: Event) -> None:
        await self.async_stop()

    def _async_persist_tokens(self, tokens: TokenSet) -> None:
        """Save new tokens at once so a restart never loses them; no reload follows."""
        self.hass.config_entries.async_update_entry(
            self.config_entry,
            data={**self.config_entry.data, CONF_TOKENS: tokens.as_dict()},
        )

    # --- availability ----------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """Whether entities should show values: REST synced and the cable not down for long."""
        return self.last_update_success and self.cable_available

    @callback
    def _async_on_state(self, status: ConnectionStatus) -> None:
        previous = self.connection
        self.connection = status
        if status.state is ConnectionState.CONNECTED:
            self._cancel_grace()
            # Live messages wait for the backfill, but never longer than HOLD_MAX.
            self._cancel_hold_timer()
            self._hold_unsub = async_call_later(
                self.hass, HOLD_MAX, self._async_hold_expired
            )
            if not self.cable_available:
                LOGGER.info("Connection to Circle restored")
                self.cable_available = True
            ir.async_delete_issue(
                self.hass, DOMAIN, self._issue_id(ISSUE_ORIGIN_REJECTED)
            )
        elif status.state is ConnectionState.AUTH_FAILED:
            self._cancel_grace()
            self._set_unavailable()
            if status.reason == "not_eligible":
                self._create_issue(ISSUE_NOT_ELIGIBLE)
            else:
                self.config_entry.async_start_reauth(self.hass)
        elif status.state is ConnectionState.DISCONNECTED:
            self.ledger.freeze()
            self._holding = True
            if status.reason == "origin_rejected":
                self._create_issue(ISSUE_ORIGIN_REJECTED, {"origin": self._origin})
            if self._grace_unsub is None and self.cable_available:
                self._grace_unsub = async_call_later(
                    self.hass, AVAILABILITY_GRACE, self._async_grace_expired
                )
        if previous.state != status.state:
            self.async_update_listeners()

    @property
    def _origin(self) -> str:
        return str(self.config_entry.data.get(CONF_ORIGIN) or self.community_url)

    @callback
    def _async_grace_expired(self, _now: datetime) -> None:
        self._grace_unsub = None
        if self.connection.state is not ConnectionState.CONNECTED:
            self._set_unavailable()
            self.async_update_listeners()

    def _set_unavailable(self) -> None:
        if self.cable_available:
            LOGGER.info(
                "Connection to Circle lost (%s)", self.connection.reason or "unknown"
            )
            self.cable_available = False

    @callback
    def _cancel_grace(self) -> None:
        if self._grace_unsub is not None:
            self._grace_unsub()
            self._grace_unsub = None

    @callback
    def _async_on_subscription(self, sub: Subscription) -> None:
        if sub.state is SubscriptionState.REJECTED:
            self._rejected.add(sub.channel)
            self._create_issue(
                ISSUE_SUBSCRIPTION_REJECTED,
                {"channel": ", ".join(sorted(self._rejected))},
            )
            return
        if sub.state is not SubscriptionState.CONFIRMED:
            return
        self._rejected.discard(sub.channel)
        if not self._rejected:
            ir.async_delete_issue(
                self.hass, DOMAIN, self._issue_id(ISSUE_SUBSCRIPTION_REJECTED)
            )
        if self.cable is not None and all(
            s.state is not SubscriptionState.PENDING for s in self.cable.subscriptions
        ):
            # Nothing broadcast before the confirmations reached us: re-read the truth.
            if self._resync_task is not None:
                self._resync_task.cancel()
            self._resync_task = self.config_entry.async_create_background_task(
                self.hass, self._async_resync(), f"{DOMAIN}_resync"
            )

    async def _async_resync(self) -> None:
        """Refresh until it works, honouring Retry-After, backing off up to five minutes."""
        delay = RESYNC_RETRY_INITIAL
        rereads = 0
        while True:
            self._pushed_during_resync = False
            await self.async_refresh()
            if self.last_update_success:
                if self._pushed_during_resync and rereads < MAX_REREADS:
                    # A push landed while the REST answers were on their way; they may be
                    # older than it. Read again rather than show a stale count.
                    rereads += 1
                    continue
                await self.async_backfill()
                return
            cause = self.last_exception.__cause__ if self.last_exception else None
            wait = (
                cause.retry_after if isinstance(cause, CircleRateLimitError) else delay
            )
            delay = min(delay * 2, RESYNC_RETRY_MAX)
            await asyncio.sleep(wait)

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

    # --- events ----------------------------------------------------------------------------

    @callback
    def async_add_activity_listener(self, listener: ActivityListener) -> CALLBACK_TYPE:
        """Event entities listen here: (event type, bus event type, data)."""
        self._activity_listeners.append(listener)
        return lambda: self._activity_listeners.remove(listener)

    @property
    def device_id(self) -> str | None:
        """The service device of this entry."""
        device = dr.async_get(self.hass).async_get_device(
            {(DOMAIN, self.config_entry.entry_id)}
        )
        return device.id if device else None

    @callback
    def _async_on_event(self, event: CableEvent) -> None:
        self._pushed_during_resync = True
        data = self.data
        if isinstance(event, NotificationCountEvent):
            if data is not None:
                self.async_set_updated_data(
                    replace(data, new_notifications_count=event.count)
                )
        elif isinstance(event, MessageEvent):
            self._async_on_message(event)
        elif isinstance(event, NewNotificationEvent):
            notification = event.notification
            self._fire(
                "new_notification",
                EVENT_NEW_NOTIFICATION,
                {
                    "notification_id": notification.id if notification else None,
                    "action": notification.action if notification else None,
                    "actor_name": notification.actor_name if notification else None,
                    "title": notification.notifiable_title if notification else None,
                    "space": notification.space_title if notification else None,
                    "url": notification.url if notification else None,
                },
            )
        elif isinstance(event, ChatRoomEvent):
            self._async_on_room(event, data)

    def _async_on_room(self, event: ChatRoomEvent, data: CircleData) -> None:
        uuid = event.chat_room_uuid or (event.room.uuid if event.room else None)
        if uuid is None:
            return
        unread, names = set(data.unread_rooms), dict(data.room_names)
        counts = dict(data.unread_counts)
        if event.name in ("chatRoomRead", "chatRoomDeleted"):
            unread.discard(uuid)
            if uuid in counts:
                counts[uuid] = 0
            if event.name == "chatRoomDeleted":
                names.pop(uuid, None)
                counts.pop(uuid, None)
                self.rooms.pop(uuid, None)
        elif (room := event.room) is not None:
            if room.name:
                names[uuid] = room.name
            if event.name == "chatRoomCreated":
                self.rooms[uuid] = room
                self._counted[uuid] = room.last_message_id or 0
                counts[uuid] = room.unread_messages_count
                if room.unread_messages_count > 0:
                    unread.add(uuid)
        self.async_set_updated_data(
            replace(
                data,
                unread_rooms=frozenset(unread),
                room_names=names,
                unread_counts=counts,
            )
        )

    def _async_count_message(self, message: ChatMessage) -> None:
        """Keep the unread bookkeeping in step with a new top-level message."""
        uuid = message.chat_room_uuid
        if not uuid:
            return
        data = self.data
        if self._is_own(message):
            # Writing in a room means having read it.
            if uuid in data.unread_rooms or data.unread_counts.get(uuid):
                self.async_set_updated_data(
                    replace(
                        data,
                        unread_rooms=data.unread_rooms - {uuid},
                        unread_counts={**data.unread_counts, uuid: 0},
                    )
                )
            return
        if message.parent_message_id is not None:
            return  # replies do not make a room unread
        if message.id <= self._counted.get(uuid, 0):
            return  # already in the counts read over REST
        self._counted[uuid] = message.id
        self.async_set_updated_data(
            replace(
                data,
                unread_rooms=data.unread_rooms | {uuid},
                unread_counts={
                    **data.unread_counts,
                    uuid: data.unread_counts.get(uuid, 0) + 1,
                },
            )
        )

    def _async_on_message(self, event: MessageEvent) -> None:
        message = event.message
        if message is None:
            return
        if event.name == "newMessage":
            self._async_count_message(message)
        if event.name == "newMessage":
            if not self.ledger.is_new(message):
                return  # already fired by a backfill
            self.ledger.record(message)
            if self._holding:
                # A backfill is due: fire after it, so that events keep their order.
                self._held_messages.append(message)
                return
        self._deliver(event.name, message, backfilled=False)

    def _is_own(self, message: ChatMessage) -> bool:
        return (
            self.member is not None
            and message.sender is not None
            and message.sender.community_member_id == self.member.id
        )

    def _deliver(self, name: str, message: ChatMessage, *, backfilled: bool) -> None:
        own = self._is_own(message)
        if own and self.options.get(CONF_IGNORE_OWN, True):
            return
        kind, bus = MESSAGE_EVENTS[name]
        room = self.rooms.get(message.chat_room_uuid or "")
        payload: dict[str, Any] = {
            "room_uuid": message.chat_room_uuid,
            "room_name": self.data.room_name(message.chat_room_uuid),
            "room_kind": message.chat_room_kind or (room.kind if room else None),
            "message_id": message.id,
            "sender_name": message.sender.name if message.sender else None,
            "sender_id": message.sender.community_member_id if message.sender else None,
            "sent_at": message.sent_at.isoformat() if message.sent_at else None,
            "thread_id": message.chat_thread_id,
            "parent_message_id": message.parent_message_id,
            "own": own,
            "backfilled": backfilled,
        }
        if self.options.get(CONF_INCLUDE_TEXT, True) and kind != "message_deleted":
            payload["text"] = message.body
        self._fire(kind, bus, payload)

    async def async_backfill(self) -> None:
        """Fire, once each and in order, the messages the cable missed, then the held ones."""
        hours = float(self.options.get(CONF_BACKFILL_HOURS, DEFAULT_BACKFILL_HOURS))
        rooms = list(self.rooms.values())
        missed: list[ChatMessage] = []
        if self.ledger.loaded_empty:
            # First start ever: today's history is not news.
            self.ledger.loaded_empty = False
        elif hours > 0:
            missed = await self.ledger.async_missed(
                self.api, rooms, timedelta(hours=hours)
            )
        self.ledger.adopt(rooms)
        backfilled = {m.id for m in missed if self.ledger.is_new(m)}
        for message in missed:
            if message.id in backfilled:
                self.ledger.record(message)
        self._async_release(sorted(missed, key=lambda m: m.id), backfilled)
        if backfilled:
            LOGGER.debug("Backfilled %s missed message(s)", len(backfilled))

    @callback
    def _async_release(
        self,
        missed: list[ChatMessage] | None = None,
        backfilled: set[int] | None = None,
        *,
        thaw: bool = True,
    ) -> None:
        """Fire missed and held messages in id order; after a backfill, let last_seen move."""
        self._cancel_hold_timer()
        self._holding = False
        held, self._held_messages = self._held_messages, []
        batch = {m.id: m for m in (missed or []) if m.id in (backfilled or set())}
        batch.update((m.id, m) for m in held)
        if thaw:
            self.ledger.thaw()
        for message_id in sorted(batch):
            self._deliver(
                "newMessage",
                batch[message_id],
                backfilled=message_id in (backfilled or set()),
            )

    @callback
    def _async_hold_expired(self, _now: datetime) -> None:
        self._hold_unsub = None
        if self._holding:
            # Live messages wait no longer; last_seen stays at the gap until the backfill
            # has run, so nothing missed is skipped (it will come, late, marked backfilled).
            LOGGER.debug("Backfill not done in time; releasing held messages")
            self._async_release(thaw=False)

    @callback
    def _cancel_hold_timer(self) -> None:
        if self._hold_unsub is not None:
            self._hold_unsub()
            self._hold_unsub = None

    def _fire(self, kind: str, bus_event: str, payload: dict[str, Any]) -> None:
        self.hass.bus.async_fire(
            bus_event,
            {
                "config_entry_id": self.config_entry.entry_id,
                "device_id": self.device_id,
                **payload,
            },
        )
        for listener in tuple(self._activity_listeners):
            listener(kind, bus_event, payload)
