"""What an entry learns at runtime, kept in Home Assistant's Store, never in the entry.

Two files per entry: the message ledger, and the runtime state (the member tokens with the
server that issued them, the room-channel parameter Circle accepted, the ledger marker). The
entry keeps only what the user entered, so a token renewal rewrites no config entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util.hass_dict import HassKey

from .client import TokenSet
from .client.delivery import Ledger
from .const import (
    CONF_LEDGER_STARTED,
    CONF_ROOM_PARAM,
    CONF_TOKENS,
    DOMAIN,
    LOGGER,
    ledger_store_key,
)

SAVE_DELAY = 1.0
# Keys that entry versions before 2.2 kept in the entry data.
RUNTIME_KEYS: Final = (CONF_TOKENS, CONF_ROOM_PARAM, CONF_LEDGER_STARTED)
SERVER: Final = "server_url"
_STORES: HassKey[dict[str, RuntimeStore]] = HassKey(f"{DOMAIN}_runtime")
# Tokens the user step minted, waiting for the entry it creates (by unique id).
_NEW_ENTRY_TOKENS: HassKey[dict[str, tuple[str, dict[str, Any]]]] = HassKey(
    f"{DOMAIN}_new_entry_tokens"
)


def runtime_store_key(entry_id: str) -> str:
    """Storage key of an entry's runtime state (deleted with the entry)."""
    return f"{DOMAIN}.{entry_id}.runtime"


class RuntimeBinding:
    """One session's view of the runtime store: its server, at the epoch it started in.

    Writes from a session a flow has replaced since (a newer epoch) are dropped.
    """

    def __init__(self, store: RuntimeStore, server_url: str) -> None:
        """Bind `store` to `server_url` now (what another server issued is forgotten)."""
        store.bind(server_url)
        self.store = store
        self.server_url = server_url
        self.epoch = store.epoch

    @property
    def superseded(self) -> bool:
        """A flow handed over new tokens since this session started (it is being replaced)."""
        return self.epoch != self.store.epoch

    def tokens(self) -> dict[str, Any]:
        """Return the stored tokens of this server (empty when there are none)."""
        return self.store.tokens(self.server_url) or {}

    def save_tokens(self, tokens: TokenSet) -> None:
        """Save new tokens (no config entry is written, no reload)."""
        self.store.save_tokens(self.server_url, tokens.as_dict(), self.epoch)

    def room_param(self) -> str | None:
        """Return the room-channel parameter this server accepted."""
        return self.store.room_param(self.server_url)

    def save_room_param(self, param: str) -> None:
        """Remember which room-channel parameter Circle accepted."""
        self.store.save_room_param(self.server_url, param, self.epoch)


class RuntimeStore:
    """One per entry (shared by the flows and the coordinator): tokens bound to a server.

    `epoch` grows whenever a flow hands over new tokens: a session started before that (an
    old server, an old app token) can no longer write its tokens over them.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Nothing is read until `async_load`."""
        self._store: Store[dict[str, Any]] = Store(
            hass, 1, runtime_store_key(entry_id), private=True
        )
        self.data: dict[str, Any] = {}
        self.epoch = 0
        self.loaded = False

    async def async_load(self) -> None:
        """Read the file once; a corrupt file counts as empty (the tokens are minted anew)."""
        if self.loaded:
            return
        try:
            stored = await self._store.async_load()
        except Exception:  # noqa: BLE001 - a corrupt store is a lost store
            LOGGER.debug("The Circle runtime state could not be read", exc_info=True)
            stored = None
        self.data = dict(stored) if isinstance(stored, dict) else {}
        self.loaded = True

    def adopt(
        self, server_url: str, legacy: Mapping[str, Any], *, newer: bool = False
    ) -> None:
        """Take the runtime keys an entry before 2.2 kept in its data, as issued by its server.

        Once the store holds a server it is the truth: the entry's old copies are ignored,
        unless they are `newer` (written by an older release after a rollback).
        """
        if not newer and SERVER in self.data:
            return
        if newer and not any(legacy.get(key) is not None for key in RUNTIME_KEYS):
            return
        if self.data.get(SERVER) != server_url:  # nothing of another server is kept
            self.data.update({CONF_TOKENS: None, CONF_ROOM_PARAM: None})
        self.data[SERVER] = server_url
        for key in RUNTIME_KEYS:
            if legacy.get(key) is not None:
                self.data[key] = legacy[key]

    def bind(self, server_url: str) -> None:
        """Forget what another server issued or taught (its tokens must never go here)."""
        if self.data.get(SERVER) != server_url:
            if self.data.get(CONF_TOKENS) or self.data.get(CONF_ROOM_PARAM):
                LOGGER.debug("Stored Circle tokens belong to another server; dropped")
            self.data.update(
                {SERVER: server_url, CONF_TOKENS: None, CONF_ROOM_PARAM: None}
            )
            self._schedule_save()

    def tokens(self, server_url: str) -> dict[str, Any] | None:
        """Return the stored tokens, only if this server issued them."""
        if self.data.get(SERVER) != server_url:
            return None
        tokens = self.data.get(CONF_TOKENS)
        return tokens if isinstance(tokens, dict) else None

    def save_tokens(self, server_url: str, tokens: dict[str, Any], epoch: int) -> bool:
        """Keep a renewal's tokens unless a flow has handed over newer ones since `epoch`."""
        if epoch != self.epoch or self.data.get(SERVER) != server_url:
            LOGGER.debug("Tokens of a replaced Circle session not saved")
            return False
        self.data[CONF_TOKENS] = tokens
        self._schedule_save()
        return True

    def hand_over(self, server_url: str, tokens: dict[str, Any]) -> dict[str, Any]:
        """Replace the session's tokens with a flow's; return what was stored before."""
        previous = dict(self.data)
        self.epoch += 1
        self.bind(server_url)
        self.data[CONF_TOKENS] = tokens
        self._schedule_save()
        return previous

    def room_param(self, server_url: str) -> str | None:
        """Return the room-channel parameter this server accepted."""
        if self.data.get(SERVER) != server_url:
            return None
        param = self.data.get(CONF_ROOM_PARAM)
        return param if isinstance(param, str) else None

    def save_room_param(self, server_url: str, param: str, epoch: int) -> None:
        """Remember the accepted parameter (not after a flow replaced the session)."""
        if epoch == self.epoch and self.data.get(SERVER) == server_url:
            self.data[CONF_ROOM_PARAM] = param
            self._schedule_save()

    @property
    def ledger_started(self) -> bool:
        """The message ledger was saved once: a ledger store missing later was lost."""
        return bool(self.data.get(CONF_LEDGER_STARTED))

    def mark_ledger_started(self) -> None:
        """Set the marker (once)."""
        if not self.ledger_started:
            self.data[CONF_LEDGER_STARTED] = True
            self._schedule_save()

    def _schedule_save(self) -> None:
        self._store.async_delay_save(lambda: dict(self.data), SAVE_DELAY)

    async def async_save(self) -> None:
        """Write now (migration: before the entry forgets the keys)."""
        await self._store.async_save(dict(self.data))

    async def async_remove(self) -> None:
        """Delete the file (the entry is removed)."""
        await self._store.async_remove()


async def async_get_runtime_store(hass: HomeAssistant, entry_id: str) -> RuntimeStore:
    """Return the entry's loaded runtime store (one instance per entry while running)."""
    stores = hass.data.setdefault(_STORES, {})
    if (store := stores.get(entry_id)) is None:
        store = stores[entry_id] = RuntimeStore(hass, entry_id)
    await store.async_load()
    return store


async def async_remove_runtime_store(
    hass: HomeAssistant, entry_id: str
) -> RuntimeStore:
    """Delete the file and forget the instance; return it (for a last revocation)."""
    store = await async_get_runtime_store(hass, entry_id)
    hass.data[_STORES].pop(entry_id, None)
    await store.async_remove()
    return store


def give_new_entry_tokens(
    hass: HomeAssistant, unique_id: str, server_url: str, tokens: dict[str, Any]
) -> None:
    """Leave the user step's tokens for the entry it creates (whose id is not known yet)."""
    hass.data.setdefault(_NEW_ENTRY_TOKENS, {})[unique_id] = (server_url, tokens)


def take_new_entry_tokens(
    hass: HomeAssistant, unique_id: str | None, server_url: str
) -> dict[str, Any] | None:
    """Return the tokens the user step left for this entry, if that server issued them."""
    pending = hass.data.get(_NEW_ENTRY_TOKENS, {}).pop(unique_id or "", None)
    if pending is None or pending[0] != server_url:
        return None
    return pending[1]


class LedgerStore:
    """Load and save the core's ledger; notice when a store that existed is gone."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        runtime: RuntimeStore | None = None,
    ) -> None:
        """One store per entry; the runtime store remembers that it was initialised."""
        self._runtime = runtime
        self._store: Store[dict[str, Any]] = Store(
            hass, 1, ledger_store_key(entry.entry_id)
        )

    async def async_load(self) -> tuple[Ledger | None, bool]:
        """Return the saved ledger (None on a first start) and whether it was lost."""
        try:
            stored = await self._store.async_load()
        except Exception:  # noqa: BLE001 - a corrupt store is a lost store
            LOGGER.debug("The Circle message ledger could not be read", exc_info=True)
            stored = None
        ledger = Ledger.from_dict(stored)
        started = self._runtime is not None and self._runtime.ledger_started
        return ledger, ledger is None and started

    def schedule_save(self, ledger: Ledger) -> None:
        """Save soon (writes are batched); mark the runtime state once the ledger exists."""
        self._store.async_delay_save(ledger.as_dict, SAVE_DELAY)
        if ledger.initialized and self._runtime is not None:
            self._runtime.mark_ledger_started()

    async def async_save(self, ledger: Ledger) -> None:
        """Save now (unload)."""
        await self._store.async_save(ledger.as_dict())

    async def async_remove(self) -> None:
        """Delete the file (the entry is removed)."""
        await self._store.async_remove()
