"""A notify entity per chat room: `notify.send_message` posts to that room as the member."""

from __future__ import annotations

from homeassistant.components.notify import NotifyEntity, NotifyEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .compat import NotifyEntityFeature
from .coordinator import CircleConfigEntry, CircleCoordinator
from .entity import CircleRoomEntity
from .messaging import async_check_sender, async_send, compose
from .rooms import async_add_room_entities

# Sends go out one at a time per entity, as Circle's rate limits prefer.
PARALLEL_UPDATES = 1

ROOM_NOTIFY = NotifyEntityDescription(key="notify", name=None)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CircleConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a notify entity for each room, as rooms appear."""
    async_add_room_entities(
        entry,
        async_add_entities,
        lambda coordinator, uuid: (RoomNotifyEntity(coordinator, uuid),),
    )


class RoomNotifyEntity(CircleRoomEntity, NotifyEntity):
    """The room's main entity: named after the room's device."""

    _attr_supported_features = NotifyEntityFeature.TITLE

    def __init__(self, coordinator: CircleCoordinator, uuid: str) -> None:
        """One per room."""
        super().__init__(coordinator, ROOM_NOTIFY, uuid)

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Post to the room; the title becomes the first line."""
        await async_check_sender(self.hass, self.coordinator, self._context)
        text = compose(message, title)
        await async_send(self.coordinator, self.room_uuid, text)
