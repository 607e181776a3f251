"""The ledger: what was handed over, per room, persisted across restarts.

Per room, the watermark (everything up to it was handed over or deliberately skipped) and
the ids above it handed over already (the room has a gap below them). The ids are the
server's: the ledger keeps at most `MAX_LEDGER_ROOMS` rooms and `MAX_DELIVERED_ABOVE` ids a
room, and a watermark can be taken back to what a room's listing confirms (`clamp`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

LEDGER_VERSION: Final = 2
MAX_DELIVERED_ABOVE: Final = 512
MAX_LEDGER_ROOMS: Final = 4096


class Ledger:
    """Per room: the watermark and the ids above it already handed over. Persisted."""

    __slots__ = ("delivered", "initialized", "watermarks")

    def __init__(self) -> None:
        """Start empty: nothing seen yet."""
        self.initialized = False
        self.watermarks: dict[str, int] = {}
        self.delivered: dict[str, set[int]] = {}

    @classmethod
    def from_dict(cls, data: Any) -> Ledger | None:
        """Restore a saved ledger; None when the data is unusable."""
        if not isinstance(data, Mapping):
            return None
        rooms = data.get("rooms")
        if not isinstance(rooms, Mapping):
            return None
        ledger = cls()
        # Stores of the first version had no marker: they existed only once initialised.
        ledger.initialized = data.get("initialized", True) is not False
        for uuid, mark in rooms.items():
            if len(ledger.watermarks) >= MAX_LEDGER_ROOMS:
                break
            if isinstance(uuid, str) and _valid_id(mark):
                ledger.watermarks[uuid] = mark
        delivered = data.get("delivered")
        if isinstance(delivered, Mapping):
            for uuid, ids in delivered.items():
                if len(ledger.delivered) >= MAX_LEDGER_ROOMS:
                    break
                if isinstance(uuid, str) and isinstance(ids, list):
                    kept = sorted({i for i in ids if _valid_id(i)})
                    if kept:
                        ledger.delivered[uuid] = set(kept[-MAX_DELIVERED_ABOVE:])
        return ledger

    def rooms(self) -> set[str]:
        """Every room the ledger keeps something for."""
        return set(self.watermarks) | set(self.delivered)

    def as_dict(self) -> dict[str, Any]:
        """Return what to persist."""
        return {
            "version": LEDGER_VERSION,
            "initialized": self.initialized,
            "rooms": dict(self.watermarks),
            "delivered": {
                uuid: sorted(ids) for uuid, ids in self.delivered.items() if ids
            },
        }

    def handed_over(self, uuid: str, message_id: int) -> bool:
        """Whether a top-level message of this room was handed over (or skipped) before."""
        mark = self.watermarks.get(uuid)
        if mark is not None and message_id <= mark:
            return True
        ids = self.delivered.get(uuid)
        return ids is not None and message_id in ids

    def record_above(self, uuid: str, message_id: int) -> None:
        """Remember a message handed over beyond the watermark (its room has a gap)."""
        ids = self.delivered.setdefault(uuid, set())
        ids.add(message_id)
        if len(ids) > MAX_DELIVERED_ABOVE:
            # Trim in bulk to the newest half: amortised O(log n) per message.
            self.delivered[uuid] = set(sorted(ids)[len(ids) // 2 :])

    def advance(self, uuid: str, mark: int) -> None:
        """Everything up to `mark` was handed over (or deliberately skipped)."""
        if mark > self.watermarks.get(uuid, 0) or uuid not in self.watermarks:
            self.watermarks[uuid] = mark
        ids = self.delivered.get(uuid)
        if ids:
            kept = {i for i in ids if i > self.watermarks[uuid]}
            if kept:
                self.delivered[uuid] = kept
            else:
                del self.delivered[uuid]

    def clamp(self, uuid: str, ceiling: int) -> bool:
        """Take a watermark above `ceiling` back to it; True when it was above.

        A room's listing names its latest message: a watermark above it came from an id
        nobody confirmed (or a deleted message) and would silence the room.
        """
        mark = self.watermarks.get(uuid)
        if mark is None or mark <= ceiling:
            return False
        self.watermarks[uuid] = ceiling
        return True

    def fold(self, uuid: str, ceiling: int) -> bool:
        """Move the watermark to the highest id handed over up to `ceiling`.

        Only for a room read back and live since: everything up to those ids came.
        """
        ids = self.delivered.get(uuid)
        if not ids:
            return False
        top = max((i for i in ids if i <= ceiling), default=None)
        if top is None or top <= self.watermarks.get(uuid, 0):
            return False
        self.advance(uuid, top)
        return True

    def forget(self, uuid: str) -> None:
        """Drop a room that is gone."""
        self.watermarks.pop(uuid, None)
        self.delivered.pop(uuid, None)


def _valid_id(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63
