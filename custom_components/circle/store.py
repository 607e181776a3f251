"""The message ledger, persisted with Home Assistant's Store (one file per entry)."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .client.delivery import Ledger
from .const import CONF_LEDGER_STARTED, LOGGER, ledger_store_key

SAVE_DELAY = 1.0


class LedgerStore:
    """Load and save the core's ledger; notice when a store that existed is gone."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """One store per entry; the entry remembers that it was initialised."""
        self._hass = hass
        self._entry = entry
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
        return ledger, ledger is None and bool(
            self._entry.data.get(CONF_LEDGER_STARTED)
        )

    def schedule_save(self, ledger: Ledger) -> None:
        """Save soon (writes are batched); mark the entry once the ledger exists."""
        self._store.async_delay_save(ledger.as_dict, SAVE_DELAY)
        if ledger.initialized and not self._entry.data.get(CONF_LEDGER_STARTED):
            self._hass.config_entries.async_update_entry(
                self._entry, data={**self._entry.data, CONF_LEDGER_STARTED: True}
            )

    async def async_save(self, ledger: Ledger) -> None:
        """Save now (unload)."""
        await self._store.async_save(ledger.as_dict())

    async def async_remove(self) -> None:
        """Delete the file (the entry is removed)."""
        await self._store.async_remove()
