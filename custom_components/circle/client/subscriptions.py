"""The cable's subscriptions, kept across reconnects: which channels, and what the server said.

No I/O: the socket session (`cable_socket.py`) sends the commands this book names. A room's
`Chats::RoomChannel` parameter is undocumented, so each room tries ROOM_PARAMS in turn; the one
that worked is remembered (and reported to the owner, who persists it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from .models import Channel
from .protocol import canonical_identifier, identifier

MEMBER_CHANNELS: Final = (Channel.NOTIFICATION, Channel.CHAT_ROOM, Channel.THREADS)
# The parameter naming the room of a `Chats::RoomChannel` is undocumented: try each in turn.
ROOM_PARAMS: Final = ("chat_room_id", "id", "chat_room_uuid")


class SubscriptionState(StrEnum):
    """What the server said to a subscribe command."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    UNANSWERED = "unanswered"


@dataclass(slots=True)
class Subscription:
    """One channel subscription, kept across reconnects."""

    identifier: str
    channel: str
    room_id: int | None = None
    state: SubscriptionState = SubscriptionState.PENDING
    sent_at: float = 0.0
    attempts: int = 0
    # Room channels: the parameter tried (see ROOM_PARAMS), and those this room tried before.
    param: str | None = None
    tried: tuple[str, ...] = ()


def answer_due(sub: Subscription, timeout: float) -> float | None:
    """When a sent subscribe counts as unanswered (doubling per attempt); None if answered."""
    if sub.attempts == 0 or sub.state not in (
        SubscriptionState.PENDING,
        SubscriptionState.UNANSWERED,
    ):
        return None
    return sub.sent_at + timeout * 2.0 ** min(sub.attempts - 1, 4)


class SubscriptionBook:
    """Every subscription by identifier (exact and canonical), and the room parameters."""

    def __init__(
        self,
        member_id: int,
        room_ids: Iterable[int] = (),
        room_uuids: Mapping[int, str] | None = None,
        room_param: str | None = None,
        on_room_param: Callable[[str], None] | None = None,
    ) -> None:
        """Hold the member channels, plus a room channel per room id."""
        self.room_param = room_param if room_param in ROOM_PARAMS else None
        self.room_uuids = dict(room_uuids or {})
        self.on_room_param = on_room_param
        # One dict for the life of the book: the frame path holds it as a local.
        self.subs: dict[str, Subscription] = {}
        self.canonical: dict[str, Subscription] = {}
        # Room subscriptions given up on after a timeout, in case a late confirm comes.
        self.superseded: dict[str, Subscription] = {}
        # Bumped on every change to `subs`: the frame path caches its last route.
        self.version = 0
        for channel in MEMBER_CHANNELS:
            ident = identifier(channel, community_member_id=member_id)
            self.add(Subscription(ident, channel))
        for room_id in room_ids:
            self.add(self.room_sub(room_id))

    def __len__(self) -> int:
        """How many subscriptions there are."""
        return len(self.subs)

    def add(self, sub: Subscription) -> None:
        """Keep `sub`, findable by its exact and its canonical identifier."""
        self.subs[sub.identifier] = sub
        self.version += 1
        if (canonical := canonical_identifier(sub.identifier)) is not None:
            self.canonical[canonical] = sub

    def remove(self, sub: Subscription) -> None:
        """Forget `sub`."""
        self.subs.pop(sub.identifier, None)
        self.version += 1
        self.canonical.pop(canonical_identifier(sub.identifier) or "", None)

    def lookup(self, ident: Any) -> Subscription | None:
        """Find a subscription by identifier as sent, or by its canonical form."""
        if type(ident) is not str:
            return None
        if (sub := self.subs.get(ident)) is not None:
            return sub
        canonical = canonical_identifier(ident)
        return self.canonical.get(canonical) if canonical else None

    def by_route(self, route: Any) -> Subscription | None:
        """Find by identifier, or by a member channel's name (another envelope)."""
        sub = self.lookup(route)
        if sub is None:
            subs = self.subs.values()
            sub = next(
                (s for s in subs if s.channel == route and s.room_id is None), None
            )
        return sub

    def new_connection(self) -> None:
        """Start over after a welcome: the server holds none of them, all go again.

        Each room's fallback starts over too: a parameter that went unanswered on a dying
        socket, or was refused by a server since redeployed, may work now.
        """
        self.superseded.clear()
        for sub in self.subs.values():
            sub.state = SubscriptionState.PENDING
            sub.attempts = 0
            sub.tried = ()

    def confirmed(self, sub: Subscription) -> None:
        """Remember the room parameter that was confirmed, and tell the owner."""
        if sub.param is not None and sub.param != self.room_param:
            self.room_param = sub.param
            if self.on_room_param is not None:
                self.on_room_param(sub.param)

    # --- rooms -----------------------------------------------------------------------------

    def room_candidates(self, room_id: int) -> list[str]:
        """List the room parameters to try, the one that worked before first."""
        uuids = self.room_uuids
        order = [p for p in ROOM_PARAMS if p != "chat_room_uuid" or room_id in uuids]
        if self.room_param in order:
            order.remove(self.room_param)
            order.insert(0, self.room_param)
        return order

    def room_sub(self, room_id: int, param: str | None = None) -> Subscription:
        """Build the subscription of a room with `param` (the first candidate by default)."""
        param = param or self.room_candidates(room_id)[0]
        uuid = self.room_uuids.get(room_id)
        value: int | str = uuid if param == "chat_room_uuid" and uuid else room_id
        ident = identifier(Channel.ROOM, **{param: value})
        return Subscription(ident, Channel.ROOM, room_id, param=param)

    def drop_superseded(self, room_id: int) -> list[Subscription]:
        """Forget the subscriptions of this room set aside on a timeout; return them."""
        dropped = [s for s in self.superseded.values() if s.room_id == room_id]
        for sub in dropped:
            del self.superseded[sub.identifier]
        return dropped

    def find_room(self, room_id: int) -> Subscription | None:
        """Return the subscription of this room, if any."""
        return next(
            (
                s
                for s in self.subs.values()
                if s.room_id == room_id and s.channel == Channel.ROOM
            ),
            None,
        )

    def next_room_param(self, sub: Subscription) -> str | None:
        """Name the parameter to try after `sub`'s was refused or went unanswered.

        The first candidate this room has not tried: the order changes when another room
        teaches which one works, so "the one after" could skip it.
        """
        if sub.room_id is None or sub.param is None:
            return None
        spent = (*sub.tried, sub.param)
        order = self.room_candidates(sub.room_id)
        return next((param for param in order if param not in spent), None)

    def replace_room(
        self, sub: Subscription, *, timed_out: bool = False
    ) -> Subscription | None:
        """Swap a refused room subscription for the next candidate; None when none is left.

        One that only timed out is kept aside: a late confirmation takes it back
        (`adopt_superseded`).
        """
        param = self.next_room_param(sub)
        if param is None or sub.room_id is None or sub.param is None:
            return None
        if self.subs.get(sub.identifier) is not sub:
            return None  # unfollowed or replaced meanwhile
        if timed_out:
            self.superseded[sub.identifier] = sub
        self.remove(sub)
        replacement = self.room_sub(sub.room_id, param)
        replacement.tried = (*sub.tried, sub.param)
        self.add(replacement)
        sub.state = SubscriptionState.REJECTED
        return replacement

    def adopt_superseded(
        self, ident: Any
    ) -> tuple[Subscription | None, Subscription | None]:
        """Take back a room subscription confirmed late; also return the one it displaces."""
        if type(ident) is not str:
            return None, None
        old = self.superseded.pop(ident, None)
        if old is None:
            canonical = canonical_identifier(ident)
            old = next(
                (
                    self.superseded.pop(key)
                    for key in list(self.superseded)
                    if canonical_identifier(key) == canonical
                ),
                None,
            )
        if old is None or old.room_id is None:
            return None, None
        current = self.find_room(old.room_id)
        if current is None:
            return None, None  # the room was unfollowed meanwhile
        self.add(old)
        if current is old:
            return old, None
        self.remove(current)
        current.state = SubscriptionState.REJECTED  # answered, as far as anyone cares
        return old, current
