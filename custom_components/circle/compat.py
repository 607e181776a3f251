"""The one place where Home Assistant releases differ for this integration.

`OptionsFlowWithReload` (Home Assistant 2025.8) reloads the entry when an options flow changes
the options, with no update listener. Older releases get the same behaviour here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.core import callback

if TYPE_CHECKING:
    OptionsFlowWithReload = OptionsFlow
else:
    try:
        from homeassistant.config_entries import OptionsFlowWithReload
    except ImportError:  # Home Assistant before 2025.8

        class OptionsFlowWithReload(OptionsFlow):
            """Reload the entry once the flow has stored changed options."""

            @callback
            def async_create_entry(
                self, *, data: Any = None, **kwargs: Any
            ) -> ConfigFlowResult:
                """Schedule the reload to run after the options are stored (not eager)."""
                result = super().async_create_entry(data=data, **kwargs)
                entry = self.config_entry
                if data is not None and dict(data) != dict(entry.options):
                    self.hass.async_create_task(
                        self.hass.config_entries.async_reload(entry.entry_id),
                        f"circle options reload {entry.entry_id}",
                        eager_start=False,
                    )
                return result


__all__ = ["OptionsFlowWithReload"]
