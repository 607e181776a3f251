"""Handing messages over: once each, in order, and the ledger moved in the same step.

Part of the delivery core (`delivery.py`): live messages either go out now or wait in the
core's `HoldBuffer`; read-back ones go out merged with the held ones, in id order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .delivery_io import NEW_MESSAGE, RECENT_KEYS, Deliver, LedgerChanged
from .holds import Held, room_key
from .models import ChatMessage
from .phases import Phase

if TYPE_CHECKING:
    from .delivery import DeliveryCore


class Handover:
    """Hands messages over once each; remembers what went out recently."""

    def __init__(self, core: DeliveryCore) -> None:
        """Hand over into `core`'s outbox and ledger."""
        self.core = core
        self.recent: dict[Any, None] = {}

    def remember(self, key: Any) -> bool:
        """Remember `key`; False when it was known already."""
        recent = self.recent
        if key in recent:
            return False
        recent[key] = None
        if len(recent) > RECENT_KEYS:
            self.recent = dict.fromkeys(list(recent)[len(recent) // 2 :])
        return True

    def on_message(self, now: float, name: str, message: ChatMessage) -> None:
        """Take a live message event: count it, drop a copy, hold it or hand it over."""
        core = self.core
        if name == NEW_MESSAGE:
            core.unread.count(message)
            if message.id in self.recent:
                return
            uuid = message.chat_room_uuid
            if (
                uuid
                and message.parent_message_id is None
                and core.ledger.handed_over(uuid, message.id)
            ):
                return
        elif not self.remember((name, message.id, message.edited_at)):
            return
        if core.holds.wants(room_key(message)):
            if name == NEW_MESSAGE:
                self.recent[message.id] = None  # held: a second copy is a duplicate
            released = core.holds.hold(now, name, message)
            for held in released:
                self.hand_over(held.name, held.message, backfilled=False)
            core.show_holds()
            return
        self.hand_over(name, message, backfilled=False)

    def hand_over(self, name: str, message: ChatMessage, *, backfilled: bool) -> None:
        """Deliver, then move the ledger: a message handed over is never handed again."""
        core = self.core
        core.outbox.append(Deliver(name, message, backfilled))
        if name != NEW_MESSAGE:
            return
        self.remember(message.id)
        uuid = message.chat_room_uuid
        if not uuid or message.parent_message_id is not None:
            return
        if uuid not in core.unread.rooms and uuid not in core.unread.unlisted:
            return  # dropped as one unlisted room too many: nothing kept for it
        if (
            core.phase is Phase.LIVE
            and uuid in core.synced_rooms
            and message.id <= core.unread.confirmed.get(uuid, 0)
        ):
            core.ledger.advance(uuid, message.id)
        else:
            # Beyond what REST confirmed: remembered by id, folded into the watermark once
            # a listing confirms it.
            core.ledger.record_above(uuid, message.id)
        core.outbox.append(LedgerChanged())

    def release(
        self,
        batch: list[tuple[int, int, str, ChatMessage, bool]],
        marks: Iterable[tuple[str, int]] = (),
        upto: Mapping[str, int] | None = None,
    ) -> None:
        """Hand over the backfilled and the held messages, in id order (then arrival).

        `upto`: only the held messages up to the id each room was read back to (a room
        not read: its watermark); the episode goes on.
        """
        core = self.core
        held: list[Held]
        if upto is None:
            held = core.holds.take(core.holds.waiting)
        else:
            marks_now = core.ledger.watermarks
            held = core.holds.take_upto(
                lambda room: upto.get(room, marks_now.get(room, 0)), core.holds.waiting
            )
        held_ids = {h.message.id for h in held if h.name == NEW_MESSAGE}
        items = [item for item in batch if item[0] not in held_ids]
        items.extend((h.message.id, h.seq, h.name, h.message, False) for h in held)
        items.sort(key=lambda item: (item[0], item[1]))
        ledger = core.ledger
        for message_id, _seq, name, message, backfilled in items:
            if (
                backfilled
                and message.chat_room_uuid
                and ledger.handed_over(message.chat_room_uuid, message_id)
            ) or (backfilled and message_id in self.recent):
                continue
            self.hand_over(name, message, backfilled=backfilled)
        advanced = False
        for uuid, mark in marks:
            ledger.advance(uuid, mark)
            advanced = True
        if advanced:
            core.outbox.append(LedgerChanged())
